"""The pjsua2 settings of the KPN profile: endpoint, transport, codecs, accounts.

Builds the pjsua2 config objects the engine hands to libInit, transportCreate
and Account.create (K10, K12-K14, K18-K22).  It creates nothing by itself
except those config objects; the engine owns the library.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import pjsua2 as pj

from .profile import (
    K13_CODECS,
    K14_CLOCK_RATE,
    K19_RTP_PORT_MAX,
    K19_RTP_PORT_MIN,
    K20_PTIME_MS,
    K22_DSCP,
    K22_SO_PRIORITY,
)
from .settings import LineSettings

MAX_CALLS: Final = 64  # pjsua's compiled limit (scripts/build-pjsua2); each call holds 2 sockets
MIN_KEEPALIVE: Final = 2  # seconds; see account_config
UNREGISTER_WAIT: Final = 3.0  # seconds a stop waits for the un-REGISTER (challenge + answer)
CODEC_PRIORITY: Final = dict(zip(K13_CODECS, (255, 200, 150), strict=True))  # K12, K13


def set_qos(tc: Any) -> None:
    """K22: DSCP 46 and SO_PRIORITY 5 (PJ_QOS_TYPE_VOICE would give priority 6).

    `tc`: a pjsua2 TransportConfig (SIP, or the RTP/RTCP one of an account).
    """
    tc.qosType = pj.PJ_QOS_TYPE_BEST_EFFORT
    tc.qosParams.flags = pj.PJ_QOS_PARAM_HAS_DSCP | pj.PJ_QOS_PARAM_HAS_SO_PRIO
    tc.qosParams.dscp_val = K22_DSCP
    tc.qosParams.so_prio = K22_SO_PRIORITY


def endpoint_config(log_writer: Any, log_level: int) -> Any:
    """The EpConfig for libInit: one pjsua2 thread, one RTP thread, 8 kHz, 20 ms (K14, K20).

    `log_writer`: a pj.LogWriter (the redacting one, K9); `log_level`: pjsip's, 0-6.
    """
    cfg = pj.EpConfig()
    ua = cfg.uaConfig
    ua.threadCnt = 0  # pjsua2 runs on this thread only
    ua.mainThreadOnly = True
    ua.maxCalls = MAX_CALLS
    ua.userAgent = "kpn_voip"
    ua.mwiUnsolicitedEnabled = False  # no 200 to a NOTIFY nobody subscribed to
    log = cfg.logConfig
    log.writer = log_writer
    log.level = log_level
    log.consoleLevel = log_level
    log.msgLogging = True
    log.decor = pj.PJ_LOG_HAS_TIME | pj.PJ_LOG_HAS_SENDER
    med = cfg.medConfig
    med.clockRate = K14_CLOCK_RATE  # K14
    med.sndClockRate = K14_CLOCK_RATE
    med.ptime = K20_PTIME_MS  # K20
    med.audioFramePtime = K20_PTIME_MS
    med.noVad = True  # G.711 VAD would break the 20 ms stream
    med.ecTailLen = 0
    # One media worker thread with an ioqueue of its own reads RTP (and completes
    # RTP sends) in C: sound never waits for this Python thread.  (Without it,
    # libHandleEvents here does that, and a busy moment of this thread makes the
    # jitter buffer conceal frames.)  Measured (benchmarks/bench_rtp_thread.py,
    # 60 s windows, pjmedia's own 10 ms poll): 8 recordings (6-12 s) while the loop
    # here stalled 0.05-2 s every 0.5 s lost 0-4 frames (at most 1.3 %) with it,
    # 1-45 (up to 15 %, median 2 %) without; coverage-traced sound tests on a loaded
    # machine: 1 of 12 runs without it had a hole in the sent RTP (K20), 0 of 13
    # with it.  Its idle cost was that poll (100 wake-ups a second: 0.30-0.33 % of a
    # core, 0.03 % without the thread); the kpn-voip-pjsua2 wheel polls up to 1 s
    # on the epoll ioqueue instead (packaging/pjsua2: patch 0002, config_site.h;
    # benchmarks/README.md, idle CPU).  With select's ioqueue a long poll garbled
    # recordings (a socket or read armed during a poll waits for it to end).
    med.threadCnt = 1
    med.hasIoqueue = True
    return cfg


def set_codec_priorities(ep: Any) -> None:
    """K12, K13: the three codecs of the profile, in order; every other codec off.

    K15: telephone-event (RFC 2833) is no codec here: pjmedia adds it to every
    offer by itself, and nothing in the engine sends DTMF as SIP INFO or in-band.
    """
    for codec in ep.codecEnum2():
        ep.codecSetPriority(codec.codecId, 0)  # K13: nothing but the three
    for codec in ep.codecEnum2():
        name = "/".join(codec.codecId.split("/")[:2])
        if name in CODEC_PRIORITY:
            ep.codecSetPriority(codec.codecId, CODEC_PRIORITY[name])


def sip_transport_config(port: int, bound: str) -> Any:
    """The TransportConfig of the one UDP transport (K18) on `bound`:`port` (0 = any), K22."""
    tc = pj.TransportConfig()
    tc.port = port
    tc.boundAddress = bound
    set_qos(tc)
    return tc


def account_config(
    settings: LineSettings,
    *,
    registering: bool,
    bound: str,
    proxy: str | None = None,
    transport_id: int = -1,
    removed: Sequence[str] = (),
) -> Any:
    """The AccountConfig of one of the line's two accounts (K8, K10, K19, K21, K22).

    `registering`: the account that REGISTERs; the other one never REGISTERs
    and places the calls.  Both carry the credentials for the line's realm
    only (K1: realm = domain), and pjsip answers a challenge with them only
    when the engine says so (Account.onAuthChallenge, K8: once per challenge).
    `bound`: the local address RTP binds to.  `proxy`: the proxy's address
    to route every request to (default: settings.proxy_host); the engine
    gives the address it looked up itself, so pjsip never resolves a name on
    the pjsua2 thread (issue 9 item 8); the Request-URI and To keep the
    domain (K1).  `transport_id`: the UDP transport bound to the address
    that routes to the proxy, so the Contact names that interface (-1: any).
    `removed`: Contact URIs of the line's old bindings (made from an address
    it no longer has, or by a dead engine on another port); each REGISTER of
    this config lists them with expires=0, so the registrar drops them (RFC
    3261 §10.2.2; issue 9 item 9, K7).  The engine gives a new config without
    them once a 2xx shows them gone (linepath.PathDriver.drop_removed).
    """
    cfg = pj.AccountConfig()
    # K6: the display name is local naming only: never in From or Contact.  What
    # the called party sees is KPN's (its P-Asserted-Identity, K16).
    cfg.idUri = f"<{settings.aor}>"
    # An IPv6 literal never gets here (refused at `start`): no [brackets] needed.
    host = proxy or settings.proxy_host
    cfg.sipConfig.proxies.append(f"sip:{host}:{settings.proxy_port};lr")
    cfg.sipConfig.transportId = transport_id
    reg = cfg.regConfig
    reg.retryIntervalSec = 0  # retries are ours (bounded back-off, K8)
    reg.firstRetryIntervalSec = 0
    # pjsip refreshes by itself this long before expiry (default 5 s): keep that after
    # the engine's own refresh (registration.refresh_delay), so the two never cross.
    reg.delayBeforeRefreshSec = 1
    reg.dropCallsOnFail = False
    reg.registerOnAdd = False
    reg.disableRegOnModify = True
    reg.timeoutSec = settings.register_expires  # K21
    reg.unregWaitMsec = int(UNREGISTER_WAIT * 1000)
    if registering:
        reg.registrarUri = f"sip:{settings.domain}"
        for uri in removed:
            header = pj.SipHeader()
            header.hName = "Contact"
            header.hValue = f"<{uri}>;expires=0"
            reg.headers.append(header)
    # K1: realm = domain; never "*" (any realm would get the password's digest).
    cred = pj.AuthCredInfo("digest", settings.domain, settings.username, 0, settings.password)
    cfg.sipConfig.authCreds.append(cred)
    # A MESSAGE is answered by the engine (a refusal), never with pjsua's automatic 200.
    cfg.sipConfig.autoRespondSipMessage = False
    nat = cfg.natConfig
    nat.iceEnabled = False  # K10: no STUN/ICE/TURN
    nat.turnEnabled = False
    nat.sipStunUse = pj.PJSUA_STUN_USE_DISABLED
    nat.mediaStunUse = pj.PJSUA_STUN_USE_DISABLED
    nat.sipOutboundUse = 0
    nat.contactRewriteUse = 0  # KPN fixes NAT on its side (K10): no re-REGISTER dance
    nat.viaRewriteUse = 0
    nat.sdpNatRewriteUse = 0
    # K10: CRLF keep-alive, the only keep-alive (K23: never SIP OPTIONS).  pjsua
    # floods the proxy with CRLFs when the interval is 1 s (measured: ~240 000
    # packets/s), so 1 is taken as 2.
    keepalive = (
        max(MIN_KEEPALIVE, settings.keepalive_interval) if settings.keepalive_interval else 0
    )
    nat.udpKaIntervalSec = keepalive if registering else 0
    call = cfg.callConfig
    call.prackUse = pj.PJSUA_100REL_NOT_USED
    call.timerUse = pj.PJSUA_SIP_TIMER_INACTIVE
    med = cfg.mediaConfig
    med.transportConfig.port = K19_RTP_PORT_MIN  # K19
    med.transportConfig.portRange = K19_RTP_PORT_MAX - K19_RTP_PORT_MIN - 1
    med.transportConfig.boundAddress = bound
    set_qos(med.transportConfig)  # K22 for RTP and RTCP
    return cfg
