"""KPN "Vast Bellen" SIP profile, K1..K26 (the key: docs/kpn-profile.md).

Every value the engine and the integration use because KPN requires it is
named here once, with the requirement id it comes from.  Requirements that
are behaviour rather than a value are named here as flags so that code and
tests can cite them.
"""

from __future__ import annotations

from typing import Final

# Account data (K1-K6)
K1_DOMAIN: Final = "ims.imscore.net"  # domain = registrar = realm
K1_REALM: Final = K1_DOMAIN
K2_PROXY_HOST: Final = "voip1-ext.kpn.net"
K2_PROXY_PORT: Final = 5060
K3_COUNTRY_CODE: Final = "31"  # numbers are stored as +31..., without the national 0
K3_NATIONAL_PREFIX: Final = "0"
K4_USERNAME_SUFFIX: Final = "@" + K1_DOMAIN
K5_PASSWORD_MIN_LENGTH: Final = 1  # chosen freely in KPN's servicetool
K6_DISPLAY_NAME_MAX_LENGTH: Final = 64  # local naming only

# Platform behaviour (K7-K11)
K7_ONE_REGISTRATION_PER_LINE: Final = True
K8_LOCKOUT_SECONDS: Final = 15 * 60  # wrong credentials block the account ~15 min
K8_AUTH_FAILURE_CODES: Final = frozenset({401, 403, 407})
K9_REDACTED: Final = "**REDACTED**"
K10_USE_STUN: Final = False  # KPN does NAT traversal; only keep the binding alive
K10_KEEPALIVE_SECONDS: Final = 15  # CRLF keep-alive on UDP
K11_INTERNET_VOIP_VLAN: Final = 6  # informational: router side
K11_IPTV_VLAN: Final = 4

# SIP settings (K12-K26)
K12_MANDATORY_CODEC: Final = "PCMA/8000"
K13_CODECS: Final = ("PCMA/8000", "PCMU/8000", "G722/16000")  # offer order
K14_CLOCK_RATE: Final = 8000
K15_DTMF: Final = "telephone-event"  # RFC 2833 only
K16_CLIP: Final = True
K17_FAX_REJECT_CODE: Final = 488  # T.38 re-INVITE declined cleanly
K18_TRANSPORT: Final = "udp"
K19_RTP_PORT_MIN: Final = 16384
K19_RTP_PORT_MAX: Final = 32767
K20_PTIME_MS: Final = 20
K21_REGISTER_EXPIRES: Final = 3600
K22_DSCP: Final = 46  # EF; IP TOS byte 0xB8
K22_TOS_BYTE: Final = K22_DSCP << 2
K22_SO_PRIORITY: Final = 5  # 802.1p PCP on a VLAN egress-qos-map
K23_SEND_OPTIONS: Final = False
K24_CALL_WAITING: Final = True
K24_MAX_CALLS: Final = 2  # calls up at once (a call and a waiting one); no more is promised
K25_STRIP_CHARS: Final = " -.()/\t"  # the only rewriting of a dialled number
K26_HIDE_CALLER_ID_PREFIX: Final = "*31*"
