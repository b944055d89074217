"""The line engine: pjsua2 in a process of its own (`python -m kpn_line.engine`).

Protocol: docs/engine-protocol.md (JSON lines on stdin/stdout).  Layout:

* a reader thread reads stdin and queues commands; it never touches pjsua2;
* the main thread owns pjsua2 (threadCnt=0, mainThreadOnly): libHandleEvents
  in a loop that also runs the queued commands and our timers.  A queued
  command wakes it at once with a CRLF (a SIP keep-alive, ignored by pjsip)
  sent to its own UDP port;
* stdout is written under a lock and by nothing else: the process's fd 1 is
  pointed at stderr before pjsua2 starts, so a stray C printf cannot break
  the protocol; logs go to stderr, through a redacting writer (K9).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
import contextlib
from dataclasses import dataclass, field
import gc
import ipaddress
import json
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
from typing import IO, Any, Final

import pjsua2 as pj

from . import registration
from .callerid import parse_caller_id
from .numbers import InvalidNumberError, dial_string
from .profile import (
    K8_LOCKOUT_SECONDS,
    K13_CODECS,
    K14_CLOCK_RATE,
    K17_FAX_REJECT_CODE,
    K19_RTP_PORT_MAX,
    K19_RTP_PORT_MIN,
    K20_PTIME_MS,
    K22_DSCP,
    K22_SO_PRIORITY,
)
from .protocol import (
    MAX_LINE_BYTES,
    CallEvent,
    CallState,
    Direction,
    ErrorCode,
    ErrorEvent,
    Event,
    RegState,
    Reply,
    encode,
    event_to_wire,
    hello,
    reply_to_wire,
)
from .registration import Action, Challenge, RegistrationMachine
from .settings import LineSettings


class _Log:
    """A small stderr logger, redacted (K9).

    Not the logging package: it costs ~2.7 MB of resident memory in this process.
    """

    def __init__(self) -> None:
        self.redact: Callable[[str], str] = str

    def _write(self, level: str, msg: str, args: tuple[Any, ...], trace: str = "") -> None:
        text = (msg % args if args else msg) + trace
        line = f"{time.strftime('%H:%M:%S')} {level} kpn_line.engine: {self.redact(text)}\n"
        with contextlib.suppress(Exception):
            sys.stderr.write(line)
            sys.stderr.flush()

    def info(self, msg: str, *args: Any) -> None:
        self._write("INFO", msg, args)

    def warning(self, msg: str, *args: Any) -> None:
        self._write("WARNING", msg, args)

    def exception(self, msg: str, *args: Any) -> None:
        import traceback

        self._write("ERROR", msg, args, "\n" + traceback.format_exc().rstrip())


_LOGGER = _Log()

MAX_CALLS: Final = 64  # pjsua's compiled limit (scripts/build-pjsua2); each call holds 2 sockets
MAX_RING_SECONDS: Final = 300.0  # an incoming call ringing longer is stuck: end it
MAX_SETUP_SECONDS: Final = 180.0  # an outgoing call unanswered this long is stuck
MIN_KEEPALIVE: Final = 2  # seconds; see _account_config
IDLE_WAIT_MS: Final = 1000  # longest libHandleEvents wait; pjsip timers and commands end it sooner
UNREGISTER_WAIT: Final = 1.5  # seconds a stop waits for the un-REGISTER's answer
ANY_ADDRESS: Final = "0.0.0.0"  # noqa: S104  only when the proxy name does not resolve
WAKE: Final = b"\r\n\r\n"  # a SIP keep-alive: pjsip drops it silently
CODEC_PRIORITY: Final = dict(zip(K13_CODECS, (255, 200, 150), strict=True))  # K12, K13
_SDP_PTIME = f"a=ptime:{K20_PTIME_MS}"
_CALL_ID = re.compile(r"c[1-9][0-9]{0,17}")
_SESSION_TERMINATED = "PJSIP_ESESSIONTERMINATED"
_RESPONSE_PARAM = re.compile(r'(response\s*=\s*)"[^"]*"', re.IGNORECASE)


class CommandError(Exception):
    """A command failed; becomes an error reply."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        """Code (protocol ErrorCode) and a message without secrets (K9)."""
        super().__init__(message)
        self.code = code
        self.message = message


class Output:
    """The protocol channel: one JSON object per line, written under a lock."""

    def __init__(self, stream: IO[bytes]) -> None:
        """`stream`: the original stdout."""
        self._stream = stream
        self._lock = threading.Lock()
        self.closed = False

    def write(self, obj: dict[str, Any]) -> None:
        """Write one message; a closed pipe (client gone) is ignored."""
        data = encode(obj)
        with self._lock:
            if self.closed:
                return
            try:
                self._stream.write(data)
                self._stream.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.closed = True


class Redactor:
    """Removes secrets from log text (K9)."""

    def __init__(self) -> None:
        """No secret known yet."""
        self._secrets: list[str] = []

    def add(self, secret: str) -> None:
        """Never show `secret` (and its URL-escaped form) again."""
        from urllib.parse import quote

        for form in {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}:
            if form and form not in self._secrets:
                self._secrets.append(form)
        self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """`text` without any known secret and without digest responses."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "**REDACTED**")
        if "esponse" in text:
            text = _RESPONSE_PARAM.sub(r'\1"**REDACTED**"', text)
        return text


class PjLogWriter(pj.LogWriter):  # type: ignore[misc]
    """pjsip's log, through the redactor, to our logger (stderr) (K9)."""

    def __init__(self, redact: Redactor) -> None:
        """Keep the redactor."""
        super().__init__()
        self._redact = redact

    def write(self, entry: Any) -> None:
        """One pjsip log entry."""
        with contextlib.suppress(Exception):
            msg = self._redact(str(entry.msg).rstrip("\n"))
            sys.stderr.write(f"pjsip[{entry.level}] {msg}\n")
            sys.stderr.flush()


@dataclass
class CallRecord:
    """What the engine knows about one call (tracked by object, never by pjsua id)."""

    call_id: str
    direction: Direction
    number: str | None = None
    national: str | None = None
    name: str | None = None
    anonymous: bool = False
    waiting: bool = False
    created: float = field(default_factory=time.monotonic)
    answered_at: float | None = None
    alerted: bool = False
    hangup_at: float | None = None  # monotonic deadline of hangup_after
    hanging_up: bool = False
    ended: bool = False


class LineCall(pj.Call):  # type: ignore[misc]
    """A pjsua2 call reporting to the engine."""

    def __init__(self, engine: Engine, account: Any, record: CallRecord, call_id: int = -1) -> None:
        """Bind to `account`; `call_id` is pjsua's id for an incoming call."""
        if call_id >= 0:
            super().__init__(account, call_id)
        else:
            super().__init__(account)
        self.engine = engine
        self.record = record

    def onCallState(self, prm: Any) -> None:  # noqa: N802  pjsua2 API
        """State changes become call events."""
        self.engine.guard(self.engine.on_call_state, self)

    def onCallSdpCreated(self, prm: Any) -> None:  # noqa: N802
        """K20: pjsua sets ptime 20 but never writes a=ptime; add it to our SDP."""
        self.engine.guard(add_ptime, prm)

    def onCallRxOffer(self, prm: Any) -> None:  # noqa: N802
        """K17: decline a T.38 (fax) offer cleanly."""
        self.engine.guard(reject_fax, prm)

    def onCallRxReinvite(self, prm: Any) -> None:  # noqa: N802
        """K17: decline a T.38 re-INVITE cleanly (488)."""
        self.engine.guard(reject_fax, prm)


def add_ptime(prm: Any) -> None:
    """Add a=ptime:20 to every audio section of the SDP pjsua created (K20)."""
    sdp = str(prm.sdp.wholeSdp)
    new = add_ptime_to_sdp(sdp)
    if new != sdp:
        prm.sdp.wholeSdp = new


def add_ptime_to_sdp(sdp: str) -> str:
    """`sdp` with a=ptime:20 at the end of each m=audio section that lacks one."""
    lines = sdp.replace("\r\n", "\n").rstrip("\n").split("\n")
    out: list[str] = []
    in_audio = has_ptime = False
    for line in [*lines, "m=end"]:
        if line.startswith("m="):
            if in_audio and not has_ptime:
                out.append(_SDP_PTIME)
            in_audio = line.startswith("m=audio")
            has_ptime = False
        elif in_audio and line.startswith("a=ptime:"):
            has_ptime = True
        out.append(line)
    return "\r\n".join(out[:-1]) + "\r\n"


def reject_fax(prm: Any) -> None:
    """K17: an offer with an image (T.38) stream is answered 488."""
    if "m=image" in str(prm.offer.wholeSdp):
        _LOGGER.info("declining a T.38 (fax) offer with %s (K17)", K17_FAX_REJECT_CODE)
        prm.statusCode = K17_FAX_REJECT_CODE


class LineAccount(pj.Account):  # type: ignore[misc]
    """A pjsua2 account reporting to the engine."""

    def __init__(self, engine: Engine, *, registering: bool) -> None:
        """`registering`: the account that REGISTERs (no credentials, see registration.py)."""
        super().__init__()
        self.engine = engine
        self.registering = registering

    def onRegState(self, prm: Any) -> None:  # noqa: N802
        """A REGISTER was answered (or failed locally)."""
        if self.registering:
            self.engine.guard(self.engine.on_reg_state, prm)

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
        """An INVITE arrived."""
        self.engine.guard(self.engine.on_incoming_call, self, prm)


def _source_host(address: str) -> str:
    """The host of pjsip's "1.2.3.4:5060" / "[::1]:5060"."""
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 or "]" in address else address
    return host.strip("[]")


def _resolve(host: str) -> set[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_UDP)
    except OSError:
        return set()
    return {str(info[4][0]) for info in infos}


def _first_address(host: str) -> str | None:
    addresses = sorted(_resolve(host), key=lambda a: ":" in a)  # IPv4 first
    return addresses[0] if addresses else None


def _local_address_towards(host: str, port: int) -> str:
    """The local IP the system would use to reach host:port (connect() sends nothing)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))
        return str(sock.getsockname()[0])


def _fingerprint(settings: LineSettings) -> str:
    return registration.sha256_hex(f"{settings.username}\0{settings.password}".encode())


class Engine:
    """Owns pjsua2; everything here runs on the main thread."""

    def __init__(self, out: Output, commands: queue.SimpleQueue[dict[str, Any] | None]) -> None:
        """Nothing of pjsua2 exists until `start`."""
        self.out = out
        self.commands = commands
        self.redact = Redactor()
        self.log_level = 1
        self.ep: Any = None  # the Endpoint once libCreate ran
        self.endpoint: Any = None  # the Endpoint singleton (exists from the start)
        self.bound = ANY_ADDRESS
        self.proxy_ip: str | None = None
        self.log_writer: PjLogWriter | None = None
        self.settings: LineSettings | None = None
        self.machine: RegistrationMachine | None = None
        self.reg_acc: LineAccount | None = None
        self.call_acc: LineAccount | None = None
        self.reg_cfg: Any = None
        self.calls: dict[str, LineCall] = {}
        self.retired: list[Any] = []  # pjsua2 objects to drop outside their callbacks
        self.rejected_sources: set[str] = set()
        self.allowed_hosts: set[str] = set()
        self.allowed_nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.failed_logins: dict[str, float] = {}  # credential fingerprint -> until (K8)
        self.challenge: Challenge | None = None
        self.min_expires: int | None = None
        self.pending: list[Callable[[], None]] = []  # work to run outside pjsua callbacks
        self.wake_target: tuple[str, int] | None = None
        self.local_port: int | None = None
        self.unregistering = False
        self.done = False
        self.last_call_number = 0

    # -- helpers -----------------------------------------------------------------

    def _new_call_id(self) -> str:
        self.last_call_number += 1
        return f"c{self.last_call_number}"

    def guard(self, func: Callable[..., None], *args: Any) -> None:
        """Run a callback body; an exception is logged, never lost in pjsua2 (K9-safe)."""
        try:
            func(*args)
        except Exception:
            _LOGGER.exception("error in a pjsua2 callback")

    def emit(self, event: Event) -> None:
        """Send an event to the client."""
        self.out.write(event_to_wire(event))

    def reply(self, cmd_id: Any, result: dict[str, Any] | None = None) -> None:
        """Success reply."""
        self.out.write(reply_to_wire(Reply(id=cmd_id, ok=True, result=result or {})))

    def reply_error(self, cmd_id: Any, code: str, message: str) -> None:
        """Error reply (thread-safe: the reader thread refuses bad lines with it)."""
        error = Reply(id=cmd_id, ok=False, error_code=code, error_message=self.redact(message))
        self.out.write(reply_to_wire(error))

    # -- main loop ---------------------------------------------------------------

    def run(self) -> None:
        """Serve commands until `stop` (or stdin closes)."""
        while not self.done:
            if self.ep is None:
                try:
                    cmd = self.commands.get(timeout=0.5)
                except queue.Empty:
                    continue
                self.handle(cmd)
                continue
            self.ep.libHandleEvents(self._wait_ms())
            self.retired.clear()
            while not self.done:
                try:
                    cmd = self.commands.get_nowait()
                except queue.Empty:
                    break
                self.handle(cmd)
            if not self.done:
                self.tick()

    def _wait_ms(self) -> int:
        if self.pending:
            return 0
        now = time.time()
        wait = IDLE_WAIT_MS / 1000
        machine = self.machine
        if machine is not None and machine.next_attempt is not None:
            wait = min(wait, machine.next_attempt - now)
        mono = time.monotonic()
        for call in self.calls.values():
            if call.record.hangup_at is not None:
                wait = min(wait, call.record.hangup_at - mono)
        return max(0, int(wait * 1000))

    def tick(self) -> None:
        """Timers: deferred work, registration refresh/retry, call deadlines."""
        while self.pending:
            job = self.pending.pop(0)
            self.guard(job)
        if self.machine is not None:
            self.apply(self.machine.due(time.time()))
        mono = time.monotonic()
        for call in list(self.calls.values()):
            rec = call.record
            if rec.hanging_up:
                continue
            if rec.hangup_at is not None and mono >= rec.hangup_at:
                self.hangup_call(call)
            elif rec.answered_at is None:
                limit = (
                    MAX_RING_SECONDS if rec.direction == Direction.INCOMING else MAX_SETUP_SECONDS
                )
                if mono - rec.created > limit:
                    _LOGGER.warning("call %s stuck before answer: ending it", rec.call_id)
                    self.hangup_call(call, 480 if rec.direction == Direction.INCOMING else 0)

    # -- commands ---------------------------------------------------------------

    def handle(self, cmd: dict[str, Any] | None) -> None:
        """Run one command; every command gets exactly one reply."""
        if cmd is None:  # stdin closed: the client is gone
            _LOGGER.info("stdin closed: stopping")
            self.shutdown()
            return
        cmd_id = cmd.get("id")
        kind = cmd.get("type")
        handler = (
            {
                "ping": self.cmd_ping,
                "start": self.cmd_start,
                "stop": self.cmd_stop,
                "dial": self.cmd_dial,
                "hangup": self.cmd_hangup,
                "answer": self.cmd_answer,
            }.get(kind)
            if isinstance(kind, str)
            else None
        )
        if not isinstance(cmd_id, int) or isinstance(cmd_id, bool) or handler is None:
            self.reply_error(cmd_id, ErrorCode.BAD_REQUEST, f"unknown command {str(kind)[:40]!r}")
            return
        try:
            result = handler(cmd)
        except CommandError as err:
            self.reply_error(cmd_id, err.code, err.message)
        except Exception as err:
            _LOGGER.exception("command %s failed", kind)
            detail = str(err.reason) if isinstance(err, pj.Error) else type(err).__name__
            self.reply_error(cmd_id, ErrorCode.INTERNAL, detail[:200])
        else:
            if kind == "stop":
                self.reply(cmd_id, result)
                self.done = True
            else:
                self.reply(cmd_id, result)

    def cmd_ping(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Liveness."""
        return {}

    def cmd_start(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Configure the line and register."""
        try:
            settings = LineSettings.from_wire(cmd.get("settings"))  # type: ignore[arg-type]
        except ValueError as err:
            raise CommandError(ErrorCode.BAD_REQUEST, str(err)) from None
        self.redact.add(settings.password)  # K9: before anything could log it
        level = cmd.get("log_level")
        if isinstance(level, int) and not isinstance(level, bool) and 0 <= level <= 6:
            self.log_level = level
        fingerprint = _fingerprint(settings)
        until = self.failed_logins.get(fingerprint)
        if until is not None and time.time() < until:
            # K8: these credentials failed less than 15 minutes ago: never again by ourselves.
            raise CommandError(
                ErrorCode.LOCKED_OUT, "these credentials failed recently; not sending them (K8)"
            )
        proxy_ip = _first_address(settings.proxy_host)
        if proxy_ip is not None and ":" in proxy_ip:
            # pjsua2 is built without IPv6 media; KPN's proxy (K2) has IPv4 addresses.
            raise CommandError(ErrorCode.BAD_REQUEST, "proxy_host: IPv6 is not supported")
        if self.ep is not None and settings.local_port != (self.settings or settings).local_port:
            raise CommandError(ErrorCode.BAD_REQUEST, "local_port: restart the engine to change")
        single = bool(cmd.get("single_attempt", False))
        if self.ep is None:
            self.init_lib(settings)
        else:
            self.teardown_line(unregister=True)
        self.settings = settings
        self.setup_line(settings, single_attempt=single)
        return {}

    def cmd_stop(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Unregister, hang up, end pjsua2."""
        self.shutdown()
        return {}

    def cmd_dial(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Place a call (K25, K26)."""
        number = cmd.get("number")
        if not isinstance(number, str):
            raise CommandError(ErrorCode.BAD_REQUEST, "number: missing")
        hangup_after = cmd.get("hangup_after")
        if hangup_after is not None and (
            not isinstance(hangup_after, (int, float))
            or isinstance(hangup_after, bool)
            or hangup_after <= 0
        ):
            raise CommandError(ErrorCode.BAD_REQUEST, "hangup_after: must be a positive number")
        try:
            dialled = dial_string(number, hide_caller_id=bool(cmd.get("hide_caller_id", False)))
        except InvalidNumberError as err:
            raise CommandError(ErrorCode.INVALID_NUMBER, str(err)) from None
        machine, settings = self.machine, self.settings
        if machine is None or settings is None or self.call_acc is None:
            raise CommandError(ErrorCode.NOT_STARTED, "the line is not started")
        if machine.state in (RegState.AUTH_FAILED, RegState.LOCKED_OUT):
            raise CommandError(ErrorCode.LOCKED_OUT, "the line is locked out (K8)")
        if machine.state != RegState.REGISTERED:
            raise CommandError(ErrorCode.NOT_REGISTERED, "the line is not registered")
        user = dialled.replace("#", "%23")
        uri = f"sip:{user}@{settings.domain}"
        record = CallRecord(call_id=self._new_call_id(), direction=Direction.OUTGOING)
        record.number = dialled
        if hangup_after is not None:
            record.hangup_at = time.monotonic() + float(hangup_after)
        call = LineCall(self, self.call_acc, record)
        prm = pj.CallOpParam(True)
        self._media_opt(prm.opt)
        try:
            call.makeCall(uri, prm)
        except pj.Error as err:
            _LOGGER.warning("makeCall failed: %s", err.info())
            self.retired.append(call)
            raise CommandError(ErrorCode.INTERNAL, "the call could not be placed") from None
        self.calls[record.call_id] = call
        self.emit_call(record, CallState.DIALING)
        return {"call_id": record.call_id}

    def cmd_hangup(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """End one call, or every call."""
        call_id = cmd.get("call_id")
        if call_id is None:
            targets = list(self.calls.values())
        elif isinstance(call_id, str) and call_id in self.calls:
            targets = [self.calls[call_id]]
        elif self._was_issued(call_id):
            targets = []  # it ended just before (the far end hung up first): nothing to do
        else:
            raise CommandError(ErrorCode.NO_SUCH_CALL, f"no call {str(call_id)[:20]!r}")
        for call in targets:
            if not call.record.hanging_up:  # a second hang-up of a call that is ending: no-op
                self.hangup_call(call)
        return {"ended": len(targets)}

    def _was_issued(self, call_id: Any) -> bool:
        """True for a call id this engine gave out ("c<n>"), ended or not."""
        if not isinstance(call_id, str) or not _CALL_ID.fullmatch(call_id):
            return False
        return int(call_id[1:]) <= self.last_call_number

    def cmd_answer(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Answer a ringing incoming call (reserved; no audio device behind it)."""
        call_id = cmd.get("call_id")
        call = self.calls.get(call_id) if isinstance(call_id, str) else None
        if call is None or call.record.direction != Direction.INCOMING:
            raise CommandError(ErrorCode.NO_SUCH_CALL, f"no ringing call {str(call_id)[:20]!r}")
        prm = pj.CallOpParam(True)
        prm.statusCode = 200
        self._media_opt(prm.opt)
        try:
            call.answer(prm)
        except pj.Error:
            self.hangup_call(call)
            raise CommandError(ErrorCode.INTERNAL, "the call could not be answered") from None
        return {}

    # -- pjsua2 set-up -----------------------------------------------------------------

    @staticmethod
    def _media_opt(opt: Any) -> None:
        opt.audioCount = 1
        opt.videoCount = 0
        opt.textCount = 0  # pjsua2 2.17 offers m=text (T.140) by default

    @staticmethod
    def _qos(tc: Any) -> None:
        """K22: DSCP 46 and SO_PRIORITY 5 (PJ_QOS_TYPE_VOICE would give priority 6)."""
        tc.qosType = pj.PJ_QOS_TYPE_BEST_EFFORT
        tc.qosParams.flags = pj.PJ_QOS_PARAM_HAS_DSCP | pj.PJ_QOS_PARAM_HAS_SO_PRIO
        tc.qosParams.dscp_val = K22_DSCP
        tc.qosParams.so_prio = K22_SO_PRIORITY

    def init_lib(self, settings: LineSettings) -> None:
        """libCreate/libInit/transport/libStart: once per process."""
        ep = self.endpoint if self.endpoint is not None else pj.Endpoint()
        self.endpoint = ep
        ep.libCreate()
        cfg = pj.EpConfig()
        ua = cfg.uaConfig
        ua.threadCnt = 0  # pjsua2 runs on this thread only
        ua.mainThreadOnly = True
        ua.maxCalls = MAX_CALLS
        ua.userAgent = "kpn_voip"
        log = cfg.logConfig
        self.log_writer = PjLogWriter(self.redact)
        log.writer = self.log_writer
        log.level = self.log_level
        log.consoleLevel = self.log_level
        log.msgLogging = True
        log.decor = pj.PJ_LOG_HAS_TIME | pj.PJ_LOG_HAS_SENDER
        med = cfg.medConfig
        med.clockRate = K14_CLOCK_RATE  # K14
        med.sndClockRate = K14_CLOCK_RATE
        med.ptime = K20_PTIME_MS  # K20
        med.audioFramePtime = K20_PTIME_MS
        med.noVad = True  # G.711 VAD would break the 20 ms stream
        med.ecTailLen = 0
        # No media worker thread with an ioqueue of its own (it costs ~0.25 % CPU idle):
        # RTP is read by this thread's libHandleEvents like SIP.
        med.threadCnt = 0
        med.hasIoqueue = False
        ep.libInit(cfg)
        self.ep = ep
        ep.audDevManager().setNullDev()  # no sound card needed
        for codec in ep.codecEnum2():
            ep.codecSetPriority(codec.codecId, 0)  # K13: nothing but the three
        for codec in ep.codecEnum2():
            name = "/".join(codec.codecId.split("/")[:2])
            if name in CODEC_PRIORITY:
                ep.codecSetPriority(codec.codecId, CODEC_PRIORITY[name])
        proxy_ip = self.proxy_ip = _first_address(settings.proxy_host)
        bound = ANY_ADDRESS
        if proxy_ip is not None:
            with contextlib.suppress(OSError):
                bound = _local_address_towards(proxy_ip, settings.proxy_port)
        tc = pj.TransportConfig()
        tc.port = settings.local_port
        tc.boundAddress = bound
        self._qos(tc)
        # K18: UDP only.  pjsip moves big requests to TCP when a TCP transport exists.
        tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
        ep.libStart()
        info = ep.transportGetInfo(tid)
        self.local_port = int(str(info.localName).rsplit(":", 1)[1])
        self.bound = bound
        self.wake_target = (bound, self.local_port)
        _LOGGER.info("SIP on udp %s:%s", bound, self.local_port)

    def _account_config(self, settings: LineSettings, *, registering: bool) -> Any:
        cfg = pj.AccountConfig()
        name = settings.display_name
        cfg.idUri = f'"{name}" <{settings.aor}>' if name else f"<{settings.aor}>"
        # An IPv6 literal never gets here (refused at `start`): no [brackets] needed.
        cfg.sipConfig.proxies.append(f"sip:{settings.proxy_host}:{settings.proxy_port};lr")
        reg = cfg.regConfig
        reg.retryIntervalSec = 0  # retries are ours (bounded back-off, K8)
        reg.firstRetryIntervalSec = 0
        reg.dropCallsOnFail = False
        reg.registerOnAdd = False
        reg.disableRegOnModify = True
        reg.timeoutSec = settings.register_expires  # K21
        reg.unregWaitMsec = int(UNREGISTER_WAIT * 1000)
        if registering:
            reg.registrarUri = f"sip:{settings.domain}"
        else:
            # Calls only (digest for the 407 on INVITE); never REGISTERs.
            cred = pj.AuthCredInfo("digest", "*", settings.username, 0, settings.password)
            cfg.sipConfig.authCreds.append(cred)
        nat = cfg.natConfig
        nat.iceEnabled = False  # K10: no STUN/ICE/TURN
        nat.turnEnabled = False
        nat.sipStunUse = pj.PJSUA_STUN_USE_DISABLED
        nat.mediaStunUse = pj.PJSUA_STUN_USE_DISABLED
        nat.sipOutboundUse = 0
        nat.contactRewriteUse = 0  # KPN fixes NAT on its side (K10): no re-REGISTER dance
        nat.viaRewriteUse = 0
        nat.sdpNatRewriteUse = 0
        # K10: CRLF keep-alive.  pjsua floods the proxy with CRLFs when the interval is
        # 1 s (measured: ~240 000 packets/s), so 1 is taken as 2.
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
        med.transportConfig.boundAddress = self.bound
        self._qos(med.transportConfig)  # K22 for RTP and RTCP
        return cfg

    def setup_line(self, settings: LineSettings, *, single_attempt: bool) -> None:
        """Accounts and the registration machine for `settings`."""
        self.allowed_hosts = _resolve(settings.proxy_host)
        if self.proxy_ip is not None:
            self.allowed_hosts.add(self.proxy_ip)
        self.allowed_nets = []
        for source in settings.allowed_sources:
            try:
                self.allowed_nets.append(ipaddress.ip_network(source, strict=False))
            except ValueError:
                self.allowed_hosts |= _resolve(source)
        self.rejected_sources.clear()
        machine = RegistrationMachine(
            expires=settings.register_expires, single_attempt=single_attempt
        )
        self.machine = machine
        self.emit(machine.starting(time.time()))
        self.reg_cfg = self._account_config(settings, registering=True)
        self.reg_acc = LineAccount(self, registering=True)
        self.reg_acc.create(self.reg_cfg)
        self.call_acc = LineAccount(self, registering=False)
        self.call_acc.create(self._account_config(settings, registering=False))
        self.apply(machine.start(time.time()))

    # -- registration ----------------------------------------------------------------

    def apply(self, step: Any) -> None:
        """Carry out a registration Step: send what it says, report its event."""
        if step.event is not None:
            self.emit(step.event)
            if step.event.state in (RegState.AUTH_FAILED, RegState.LOCKED_OUT) and self.settings:
                # K8: remember, so a `start` with the same credentials is refused.
                self.failed_logins[_fingerprint(self.settings)] = time.time() + K8_LOCKOUT_SECONDS
        if step.action == Action.REGISTER:
            self.pending.append(lambda: self.send_register(authenticated=False))
        elif step.action == Action.AUTHENTICATE:
            self.pending.append(lambda: self.send_register(authenticated=True))

    def send_register(self, *, authenticated: bool) -> None:
        """One REGISTER; with credentials only as the answer to a fresh challenge (K8)."""
        acc, cfg, settings, machine = self.reg_acc, self.reg_cfg, self.settings, self.machine
        if acc is None or cfg is None or settings is None or machine is None:
            return
        headers = pj.SipHeaderVector()
        if authenticated:
            challenge = self.challenge
            if challenge is None:
                return
            header = pj.SipHeader()
            header.hName = challenge.answer_header
            header.hValue = registration.digest_authorization(
                challenge,
                username=settings.username,
                password=settings.password,
                method="REGISTER",
                uri=f"sip:{settings.domain}",
            )
            headers.append(header)
            self.challenge = None
        cfg.regConfig.headers = headers
        cfg.regConfig.timeoutSec = machine.expires
        try:
            acc.modify(cfg)  # disableRegOnModify: modify itself sends nothing
            acc.setRegistration(True)
        except pj.Error as err:
            _LOGGER.warning("REGISTER could not be sent: %s", err.info())
            self.apply(machine.on_response(time.time(), 503, "Local error"))

    def on_reg_state(self, prm: Any) -> None:
        """The answer to our REGISTER (or un-REGISTER)."""
        code = int(prm.code)
        reason = str(prm.reason)
        if self.unregistering or self.machine is None:
            self.unregistering = False
            return
        msg = ""
        with contextlib.suppress(Exception):
            msg = str(prm.rdata.wholeMsg)
        if code == 0:
            code, reason = 503, reason or "Network error"
        challenge = None
        if code in (401, 407) and msg:
            settings = self.settings
            challenge = registration.choose_challenge(
                registration.parse_challenges(msg), settings.domain if settings else None
            )
        self.challenge = challenge
        min_expires = registration.parse_min_expires(msg) if code == 423 and msg else None
        expiration = int(prm.expiration) if 200 <= code < 300 else None
        _LOGGER.info("REGISTER answered %s %s", code, reason)
        self.apply(
            self.machine.on_response(
                time.time(),
                code,
                reason,
                challenge=challenge is not None,
                min_expires=min_expires,
                granted=expiration,
            )
        )

    # -- calls ---------------------------------------------------------------------

    def source_allowed(self, host: str) -> bool:
        """K16/K24 safety: INVITEs only from the proxy (and configured sources)."""
        if host in self.allowed_hosts:
            return True
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self.allowed_nets)

    def on_incoming_call(self, account: LineAccount, prm: Any) -> None:
        """Ring (180) and report; never answer by ourselves."""
        record = CallRecord(call_id=self._new_call_id(), direction=Direction.INCOMING)
        call = LineCall(self, account, record, int(prm.callId))
        host = _source_host(str(prm.rdata.srcAddress))
        if not self.source_allowed(host):
            if host not in self.rejected_sources:
                self.rejected_sources.add(host)
                self.emit(
                    ErrorEvent(
                        code=ErrorCode.REJECTED_SOURCE,
                        message=f"INVITE from {host[:64]} refused (403): not the proxy",
                    )
                )
                _LOGGER.warning("INVITE from %s refused: not the proxy", host[:64])
            record.ended = True  # no call event ever (K16 safety)
            self._answer(call, 403)
            self.retired.append(call)
            return
        caller = parse_caller_id(str(prm.rdata.wholeMsg))
        record.number = caller.number
        record.national = caller.national
        record.name = caller.name
        record.anonymous = caller.anonymous
        record.waiting = any(not c.record.ended for c in self.calls.values())  # K24
        self.calls[record.call_id] = call
        if not self._answer(call, 180):
            return
        self.emit_call(record, CallState.RINGING)

    def _answer(self, call: LineCall, code: int) -> bool:
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        self._media_opt(prm.opt)
        try:
            call.answer(prm)
        except pj.Error as err:
            # A call whose answer failed stays EARLY for ever and blocks a slot.
            _LOGGER.warning("answer %s failed: %s", code, err.info())
            self.hangup_call(call, 500)
            return False
        return True

    def hangup_call(self, call: LineCall, code: int = 0) -> None:
        """End a call; if even that fails, forget it (pjsua ends it on its own timers)."""
        record = call.record
        record.hanging_up = True
        prm = pj.CallOpParam(True)
        if code:
            prm.statusCode = code
        elif record.direction == Direction.INCOMING and record.answered_at is None:
            prm.statusCode = 603  # declined
        try:
            call.hangup(prm)
        except pj.Error as err:
            if _SESSION_TERMINATED in str(err.reason):
                # It ended at this very moment by the other side (a CANCEL or an error
                # crossing our hang-up): nothing to end.  Report it with its own cause
                # now, in case pjsua's DISCONNECTED callback for it is still to come.
                self.finish_call(call, *self._end_cause(call))
                return
            _LOGGER.warning("hangup failed: %s", err.info())
            self.finish_call(call, 500, "Local error")

    @staticmethod
    def _end_cause(call: LineCall) -> tuple[int, str]:
        """The SIP code and reason a call ended with, as pjsua knows them."""
        try:
            info = call.getInfo()
        except pj.Error:
            return 0, "Session terminated"
        return int(info.lastStatusCode), str(info.lastReason)

    def on_call_state(self, call: LineCall) -> None:
        """pjsua's call state -> our call events."""
        record = call.record
        if record.ended:
            return
        info = call.getInfo()
        state = info.state
        if state == pj.PJSIP_INV_STATE_EARLY and record.direction == Direction.OUTGOING:
            if not record.alerted and int(info.lastStatusCode) in (180, 183):
                record.alerted = True
                self.emit_call(record, CallState.ALERTING)
        elif state == pj.PJSIP_INV_STATE_CONFIRMED and record.answered_at is None:
            record.answered_at = time.monotonic()
            self.emit_call(record, CallState.ANSWERED)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.finish_call(call, int(info.lastStatusCode), str(info.lastReason))

    def finish_call(self, call: LineCall, code: int, reason: str) -> None:
        """Report `ended` once and let go of the call object (outside this callback)."""
        record = call.record
        if record.ended:
            return
        record.ended = True
        duration = 0.0 if record.answered_at is None else time.monotonic() - record.answered_at
        missed = record.direction == Direction.INCOMING and record.answered_at is None
        self.calls.pop(record.call_id, None)
        self.retired.append(call)
        self.emit_call(
            record, CallState.ENDED, code=code, reason=reason, duration=duration, missed=missed
        )

    def emit_call(
        self,
        record: CallRecord,
        state: CallState,
        *,
        code: int | None = None,
        reason: str | None = None,
        duration: float | None = None,
        missed: bool = False,
    ) -> None:
        """One call event."""
        self.emit(
            CallEvent(
                call_id=record.call_id,
                direction=record.direction,
                state=state,
                number=record.number,
                national=record.national,
                name=record.name,
                anonymous=record.anonymous,
                code=code,
                reason=reason,
                duration=duration,
                missed=missed,
                waiting=record.waiting,
                time=time.time(),
            )
        )

    # -- shutdown ---------------------------------------------------------------------

    def _pump(self, seconds: float, until: Callable[[], bool]) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until():
            self.ep.libHandleEvents(20)
            while self.pending:
                self.guard(self.pending.pop(0))

    def teardown_line(self, *, unregister: bool) -> None:
        """Hang up, un-REGISTER (if registered), delete the accounts."""
        for call in list(self.calls.values()):
            self.hangup_call(call)
        if self.calls and self.ep is not None:
            self._pump(1.0, lambda: not self.calls)
        machine = self.machine
        if machine is not None:
            registered = machine.state == RegState.REGISTERED
            self.emit(machine.stop(time.time()))
            self.pending.clear()
            if unregister and registered and self.reg_acc is not None and self.ep is not None:
                # Uses the Authorization of the last REGISTER; never retried (K8).
                self.unregistering = True
                try:
                    self.reg_acc.setRegistration(False)
                except pj.Error:
                    self.unregistering = False
                self._pump(UNREGISTER_WAIT, lambda: not self.unregistering)
        for acc in (self.reg_acc, self.call_acc):
            if acc is not None:
                with contextlib.suppress(Exception):
                    acc.shutdown()
        self.reg_acc = self.call_acc = None
        self.calls.clear()
        self.retired.clear()
        self.machine = None
        gc.collect()

    def shutdown(self) -> None:
        """End everything; pjsua2 objects go before libDestroy."""
        if self.done:
            return
        if self.ep is not None:
            self.teardown_line(unregister=True)
            gc.collect()
            with contextlib.suppress(Exception):
                self.ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
            # The log writer lives until pjsua2 is gone: pjsip logs while it shuts down.
            self.ep = None
            self.endpoint = None
            self.log_writer = None
            gc.collect()
        self.done = True


# -- process -----------------------------------------------------------------------


def _lines(fd: int) -> Iterator[bytes | None]:
    """Lines from a raw fd (no buffered reader: its lock would block interpreter exit).

    Yields None for a line longer than MAX_LINE_BYTES (skipped whole).
    """
    buf = b""
    skipping = False
    while True:
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:
            continue
        except OSError:
            return
        if not chunk:
            return
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > MAX_LINE_BYTES:
                    buf = b""
                    if not skipping:
                        skipping = True
                        yield None
                break
            line, buf = buf[:nl], buf[nl + 1 :]
            if skipping:
                skipping = False
                continue
            yield None if len(line) > MAX_LINE_BYTES else line


def _reader(fd: int, commands: queue.SimpleQueue[dict[str, Any] | None], engine: Engine) -> None:
    """Read command lines (never touches pjsua2); wake the pjsua2 thread per command."""
    wake = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # SIP is IPv4 only (see start)

    def kick() -> None:
        target = engine.wake_target
        if target is not None:
            with contextlib.suppress(OSError):
                wake.sendto(WAKE, target)

    try:
        for line in _lines(fd):
            if line is None:
                engine.reply_error(None, ErrorCode.BAD_REQUEST, "line too long")
                continue
            if not line.strip():
                continue
            try:
                cmd = json.loads(line)
            except ValueError:
                cmd = None
            if not isinstance(cmd, dict):
                engine.reply_error(None, ErrorCode.BAD_REQUEST, "not a JSON object")
                continue
            commands.put(cmd)
            kick()
    finally:
        commands.put(None)
        kick()
        wake.close()


USAGE: Final = "usage: python -m kpn_line.engine [--log-level 0-6]"


def _parse_args(argv: list[str]) -> int | None:
    """`--log-level N` (pjsip's, 0-6) is the only option (argparse costs memory here)."""
    if not argv:
        return None
    if len(argv) == 2 and argv[0] == "--log-level" and argv[1].isdigit():
        return min(6, int(argv[1]))
    if len(argv) == 1 and argv[0].startswith("--log-level=") and argv[0][12:].isdigit():
        return min(6, int(argv[0][12:]))
    sys.stderr.write(USAGE + "\n")
    raise SystemExit(0 if argv[0] in ("-h", "--help") else 2)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the engine on this process's stdin/stdout."""
    log_level = _parse_args(sys.argv[1:] if argv is None else list(argv))
    # The protocol gets the real stdout; fd 1 becomes stderr, so nothing else
    # (a C printf of pjlib) can ever write into the protocol stream.
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    out = Output(os.fdopen(proto_fd, "wb", buffering=0))
    commands: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
    engine = Engine(out, commands)
    _LOGGER.redact = engine.redact
    if log_level is not None:
        engine.log_level = log_level
    # Ctrl-C in a terminal reaches the whole process group: the client stops
    # us with `stop`; SIGTERM is treated like stdin closing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: commands.put(None))
    endpoint = pj.Endpoint()  # the singleton; libCreate happens at `start`
    engine.endpoint = endpoint
    out.write(event_to_wire(hello()) | {"pjsua2": _pjsua2_version(endpoint)})
    reader = threading.Thread(
        target=_reader, args=(sys.stdin.fileno(), commands, engine), daemon=True, name="stdin"
    )
    reader.start()
    try:
        engine.run()
    finally:
        engine.shutdown()
    _LOGGER.info("engine stopped")
    return 0


def _pjsua2_version(endpoint: Any) -> str | None:
    with contextlib.suppress(Exception):
        return str(endpoint.libVersion().full)
    return None


if __name__ == "__main__":
    sys.exit(main())
