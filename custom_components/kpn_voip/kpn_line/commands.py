"""The engine's commands (client -> engine), typed, and their one decoder.

docs/engine-protocol.md is the human-readable contract.  The client builds
these dataclasses and sends them with `encode_command`; the engine turns
each input line into a `Request` with `decode_command`, which validates once
(JSON, the envelope, every field's type) and raises `CommandRejected` with
the error reply's id, code and message otherwise.
Meaning beyond the types (is the number diallable, does the call exist) is
the engine's to judge.  Pure data: no pjsua2, no asyncio, no HA.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
import ipaddress
import json
import math
from typing import Any, ClassVar, Final, TypeIs

from .policy import CallPolicy
from .protocol import ErrorCode, encode
from .settings import PORT_MAX, LineSettings

MAX_LOG_LEVEL: Final = 6  # pjsip's most verbose level
MAX_LOOPS: Final = 1000
MAX_RECORD_SECONDS: Final = 3600.0
MAX_SILENCE_SECONDS: Final = 60.0
MAX_DTMF_DIGITS: Final = 32
MAX_PREVIOUS_CONTACTS: Final = 4  # Start.previous_contacts
DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")


@dataclass(frozen=True, slots=True)
class Ping:
    """Liveness; result `{}`."""

    type: ClassVar[str] = "ping"


@dataclass(frozen=True, slots=True)
class Start:
    """Configure the line and register; result `{}`.

    `single_attempt`: one registration attempt, no retry (the login test, K8).
    `log_level`: pjsip's log level 0-6 from now on; None keeps the current one.
    `previous_contacts`: `host:port` (IPv4) of the Contacts a dead engine of
    this line registered (its `registered` events' `contact`), at most
    MAX_PREVIOUS_CONTACTS: the first REGISTER removes them and K7 does not
    count them as another device (linepath.PathDriver.take_previous).
    """

    settings: LineSettings
    single_attempt: bool = False
    log_level: int | None = None
    previous_contacts: tuple[str, ...] = ()
    type: ClassVar[str] = "start"


@dataclass(frozen=True, slots=True)
class Stop:
    """Un-REGISTER, hang up, end pjsua2 and the process; result `{}`.

    `credentials`: False while KPN's block window runs (K8): the un-REGISTER
    goes out, but a challenge to it is not answered (no credentialed request).
    """

    credentials: bool = True
    type: ClassVar[str] = "stop"


@dataclass(frozen=True, slots=True)
class Dial:
    """Place a call (K25, K26); result `{"call_id": "c<n>"}`.

    `number`: as the user typed it (the engine makes the dial string);
    `hangup_after`: the ringing limit, seconds from the dial, > 0, or None: a call
    not answered by then is cancelled; an answered call is not cut.
    """

    number: str
    hide_caller_id: bool = False
    hangup_after: float | None = None
    type: ClassVar[str] = "dial"


@dataclass(frozen=True, slots=True)
class Hangup:
    """End one call, or every call with `call_id` None; result `{"ended": n}`."""

    call_id: str | None = None
    type: ClassVar[str] = "hangup"


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer a ringing incoming call with 200; result `{}` (its audio: audio.py)."""

    call_id: str
    type: ClassVar[str] = "answer"


@dataclass(frozen=True, slots=True)
class Play:
    """Play a WAV file into an answered call; result `{}` (audio.py).

    `file`: an absolute path to a 16-bit PCM mono WAV file; `loops`: how many
    times (0 = until stopped or hung up, at most MAX_LOOPS); `then_hangup`:
    end the call after the last loop.
    """

    call_id: str
    file: str
    loops: int = 1
    then_hangup: bool = False
    type: ClassVar[str] = "play"


@dataclass(frozen=True, slots=True)
class StopPlayback:
    """Stop what plays into a call; result `{"stopped": bool}`."""

    call_id: str
    type: ClassVar[str] = "stop_playback"


@dataclass(frozen=True, slots=True)
class Record:
    """Record what the far end sends to a new WAV file; result `{}` (audio.py).

    `file`: an absolute path ending in .wav whose folder exists;
    `max_seconds`: 0 < s <= MAX_RECORD_SECONDS; `silence_seconds`: end after
    this much silence (0 < s <= MAX_SILENCE_SECONDS), or None.
    """

    call_id: str
    file: str
    max_seconds: float = 120.0
    silence_seconds: float | None = None
    type: ClassVar[str] = "record"


@dataclass(frozen=True, slots=True)
class SendDtmf:
    """Send digits (0-9, *, #, A-D) as RFC 2833 telephone-events (K15); result `{}`."""

    call_id: str
    digits: str
    type: ClassVar[str] = "send_dtmf"


@dataclass(frozen=True, slots=True)
class SetCallPolicy:
    """Which incoming calls may ring (policy.CallPolicy); result `{}`.

    Takes effect at the next INVITE; valid before `start` too (the client
    sends it between the hello and `start`, so no call slips through).
    """

    policy: CallPolicy
    type: ClassVar[str] = "set_call_policy"


type MediaCommand = Play | StopPlayback | Record | SendDtmf
type Command = Ping | Start | Stop | Dial | Hangup | Answer | SetCallPolicy | MediaCommand
MEDIA_COMMANDS: Final = (Play, StopPlayback, Record, SendDtmf)


@dataclass(frozen=True, slots=True)
class Request:
    """One decoded command line: the command and the id its reply repeats."""

    id: int
    command: Command


class CommandError(Exception):
    """A command that gets an error reply instead of a result.

    `code`: an ErrorCode; `message`: names the field or the call, quotes at
    most a short piece of the input and never a secret (K9).  The engine's
    handlers raise it for what only they can judge (no such call, not
    registered).
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        """The reply's code and message."""
        super().__init__(message)
        self.code = code
        self.message = message


class CommandRejected(CommandError):  # noqa: N818  a rejection, not a failure of ours
    """A line that is no valid command (decode_command): the error reply to send.

    `id`: the line's id as sent (None when there was none, or no JSON object).
    """

    def __init__(self, cmd_id: Any, code: ErrorCode, message: str) -> None:
        """The reply's id, code and message."""
        super().__init__(code, message)
        self.id = cmd_id


def encode_command(command: Command, cmd_id: int) -> bytes:
    """`command` as the line that goes on the wire, with `cmd_id` as its `id`.

    Every field is written (None as null); the settings and the policy with
    their `to_wire`.
    """
    wire: dict[str, Any] = {"type": command.type, "id": cmd_id}
    for item in fields(command):
        value = getattr(command, item.name)
        wire[item.name] = value.to_wire() if isinstance(value, LineSettings | CallPolicy) else value
    return encode(wire)


def decode_command(line: bytes | str) -> Request:
    """One command line -> Request; CommandRejected (with its reply) when it is none.

    Unknown fields are ignored; `single_attempt`, `hide_caller_id` and `stop`'s
    `credentials` are taken for their truth value; a `log_level` that is no
    whole number 0-6 is ignored.
    """
    try:
        data = json.loads(line)
    except ValueError:  # not JSON, or not UTF-8
        data = None
    if not isinstance(data, dict):
        raise CommandRejected(None, ErrorCode.BAD_REQUEST, "not a JSON object")
    cmd_id = data.get("id")
    kind = data.get("type")
    decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
    if not _is_int(cmd_id) or decoder is None:
        raise CommandRejected(cmd_id, ErrorCode.BAD_REQUEST, f"unknown command {str(kind)[:40]!r}")
    return Request(id=cmd_id, command=decoder(cmd_id, data))


def _is_int(value: object) -> TypeIs[int]:
    """A JSON whole number (bool is an int in Python, but true is no number)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _start(cmd_id: int, data: dict[str, Any]) -> Start:
    try:
        settings = LineSettings.from_wire(data.get("settings"))  # type: ignore[arg-type]
    except ValueError as err:
        raise CommandRejected(cmd_id, ErrorCode.BAD_REQUEST, str(err)) from None
    level = data.get("log_level")
    return Start(
        settings=settings,
        single_attempt=bool(data.get("single_attempt", False)),
        log_level=level if _is_int(level) and 0 <= level <= MAX_LOG_LEVEL else None,
        previous_contacts=_previous_contacts(cmd_id, data.get("previous_contacts")),
    )


def _previous_contacts(cmd_id: int, value: object) -> tuple[str, ...]:
    """Start.previous_contacts: a list (or null) of at most MAX_PREVIOUS_CONTACTS
    `IPv4:port` strings; CommandRejected (bad_request) otherwise."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_PREVIOUS_CONTACTS:
        raise CommandRejected(
            cmd_id,
            ErrorCode.BAD_REQUEST,
            f"previous_contacts: a list of at most {MAX_PREVIOUS_CONTACTS} host:port",
        )
    for item in value:
        host, _, port = item.rpartition(":") if isinstance(item, str) else ("", "", "")
        try:
            ipaddress.IPv4Address(host)
            valid = port.isascii() and port.isdigit() and 0 < int(port) <= PORT_MAX
        except ValueError:
            valid = False
        if not valid:
            raise CommandRejected(
                cmd_id,
                ErrorCode.BAD_REQUEST,
                f"previous_contacts: {str(item)[:40]!r} is no IPv4 host:port",
            )
    return tuple(value)


def _dial(cmd_id: int, data: dict[str, Any]) -> Dial:
    number = data.get("number")
    if not isinstance(number, str):
        raise CommandRejected(cmd_id, ErrorCode.BAD_REQUEST, "number: missing")
    hangup_after = data.get("hangup_after")
    if hangup_after is not None and (
        not isinstance(hangup_after, (int, float))
        or isinstance(hangup_after, bool)
        or not 0 < hangup_after < math.inf  # JSON's NaN and Infinity: a deadline never due
    ):
        raise CommandRejected(
            cmd_id, ErrorCode.BAD_REQUEST, "hangup_after: must be a positive number"
        )
    return Dial(
        number=number,
        hide_caller_id=bool(data.get("hide_caller_id", False)),
        hangup_after=None if hangup_after is None else float(hangup_after),
    )


def _hangup(cmd_id: int, data: dict[str, Any]) -> Hangup:
    call_id = data.get("call_id")
    if call_id is not None and not isinstance(call_id, str):
        # No call id the engine gives out is anything but text.
        raise CommandRejected(cmd_id, ErrorCode.NO_SUCH_CALL, f"no call {str(call_id)[:20]!r}")
    return Hangup(call_id=call_id)


def _answer(cmd_id: int, data: dict[str, Any]) -> Answer:
    call_id = data.get("call_id")
    if not isinstance(call_id, str):
        raise CommandRejected(
            cmd_id, ErrorCode.NO_SUCH_CALL, f"no ringing call {str(call_id)[:20]!r}"
        )
    return Answer(call_id=call_id)


def _call_id(cmd_id: int, data: dict[str, Any]) -> str:
    call_id = data.get("call_id")
    if not isinstance(call_id, str):
        raise CommandRejected(cmd_id, ErrorCode.NO_SUCH_CALL, f"no call {str(call_id)[:20]!r}")
    return call_id


def _file(cmd_id: int, data: dict[str, Any]) -> str:
    path = data.get("file")
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        raise CommandRejected(cmd_id, ErrorCode.BAD_REQUEST, "file: must be an absolute path")
    if not path.lower().endswith(".wav"):
        raise CommandRejected(cmd_id, ErrorCode.BAD_REQUEST, "file: must be a .wav file")
    return path


def _number(
    cmd_id: int, data: dict[str, Any], name: str, default: float | None, limit: float
) -> float | None:
    """A field that is a number 0 < x <= limit (or absent: `default`)."""
    value = data.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= limit:
        raise CommandRejected(
            cmd_id, ErrorCode.BAD_REQUEST, f"{name}: must be a number above 0, at most {limit:g}"
        )
    return float(value)


def _play(cmd_id: int, data: dict[str, Any]) -> Play:
    loops = data.get("loops", 1)
    if not _is_int(loops) or not 0 <= loops <= MAX_LOOPS:
        raise CommandRejected(
            cmd_id, ErrorCode.BAD_REQUEST, f"loops: must be a whole number 0-{MAX_LOOPS}"
        )
    return Play(
        call_id=_call_id(cmd_id, data),
        file=_file(cmd_id, data),
        loops=loops,
        then_hangup=bool(data.get("then_hangup", False)),
    )


def _record(cmd_id: int, data: dict[str, Any]) -> Record:
    max_seconds = _number(cmd_id, data, "max_seconds", 120.0, MAX_RECORD_SECONDS)
    assert max_seconds is not None
    return Record(
        call_id=_call_id(cmd_id, data),
        file=_file(cmd_id, data),
        max_seconds=max_seconds,
        silence_seconds=_number(cmd_id, data, "silence_seconds", None, MAX_SILENCE_SECONDS),
    )


def _send_dtmf(cmd_id: int, data: dict[str, Any]) -> SendDtmf:
    digits = data.get("digits")
    if (
        not isinstance(digits, str)
        or not 0 < len(digits) <= MAX_DTMF_DIGITS
        or not set(digits) <= DTMF_DIGITS
    ):
        raise CommandRejected(
            cmd_id,
            ErrorCode.BAD_REQUEST,
            f"digits: 1-{MAX_DTMF_DIGITS} of 0-9, *, #, A-D",
        )
    return SendDtmf(call_id=_call_id(cmd_id, data), digits=digits)


def _set_call_policy(cmd_id: int, data: dict[str, Any]) -> SetCallPolicy:
    policy = data.get("policy")
    if not isinstance(policy, dict):
        raise CommandRejected(cmd_id, ErrorCode.BAD_REQUEST, "policy: missing")
    try:
        return SetCallPolicy(policy=CallPolicy.from_wire(policy))
    except ValueError as err:
        raise CommandRejected(cmd_id, ErrorCode.BAD_REQUEST, f"policy: {err}") from None


_DECODERS: Final[dict[str, Callable[[int, dict[str, Any]], Command]]] = {
    Ping.type: lambda cmd_id, data: Ping(),
    Start.type: _start,
    Stop.type: lambda cmd_id, data: Stop(credentials=bool(data.get("credentials", True))),
    Dial.type: _dial,
    Hangup.type: _hangup,
    Answer.type: _answer,
    Play.type: _play,
    StopPlayback.type: lambda cmd_id, data: StopPlayback(call_id=_call_id(cmd_id, data)),
    Record.type: _record,
    SendDtmf.type: _send_dtmf,
    SetCallPolicy.type: _set_call_policy,
}
