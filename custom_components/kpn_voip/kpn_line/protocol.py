"""The JSON-lines protocol between the engine process and its client.

docs/engine-protocol.md is the human-readable contract; this module is the
typed one both sides use.  Pure data: no pjsua2, no asyncio, no HA.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from functools import cache
import json
from types import ModuleType
from typing import Any, Final

from . import PROTOCOL_VERSION

MAX_LINE_BYTES: Final = 1 << 20  # a single message larger than this is refused


class RegState(StrEnum):
    """The line's registration state, as the integration shows it."""

    STARTING = "starting"
    REGISTERING = "registering"
    REGISTERED = "registered"
    AUTH_FAILED = "auth_failed"
    LOCKED_OUT = "locked_out"
    UNREACHABLE = "unreachable"
    STOPPED = "stopped"


# K8: the states after which the credentials must not be sent again by themselves.
# pjsip gives a request up 32 s after sending it (Timer F, RFC 3261 §17.1.2.2), so
# the outcome of credentials the engine sent is known within this many seconds.
CREDENTIALS_OUTCOME_WAIT: Final = 36.0
AUTH_FAILURE_STATES: Final = frozenset({RegState.AUTH_FAILED, RegState.LOCKED_OUT})
# The answer to a registration attempt: what a first start or a login test waits for.
REGISTRATION_OUTCOMES: Final = frozenset(
    {RegState.REGISTERED, *AUTH_FAILURE_STATES, RegState.UNREACHABLE}
)


class CallState(StrEnum):
    """A call's state in `call` events."""

    RINGING = "ringing"  # incoming, not answered
    DIALING = "dialing"  # outgoing INVITE sent
    ALERTING = "alerting"  # far end rings (180/183)
    ANSWERED = "answered"
    ENDED = "ended"


class Direction(StrEnum):
    """Which side placed a call."""

    INCOMING = "incoming"
    OUTGOING = "outgoing"


class ErrorCode(StrEnum):
    """Error codes in replies and `error` events."""

    BAD_REQUEST = "bad_request"
    INVALID_NUMBER = "invalid_number"
    NOT_STARTED = "not_started"
    NOT_REGISTERED = "not_registered"
    NO_SUCH_CALL = "no_such_call"
    # An answer of an incoming call answered (or being answered) already: the call stays up.
    NOT_RINGING = "not_ringing"
    LOCKED_OUT = "locked_out"
    REJECTED_SOURCE = "rejected_source"
    # An INVITE refused from an address of the proxy's network that the line did not
    # register through (issue 9 item 8): one event per INVITE, counted in diagnostics.
    REJECTED_PROXY_NETWORK = "rejected_proxy_network"
    NOT_ANSWERED = "not_answered"  # a media command for a call whose audio is not up
    BAD_FILE = "bad_file"  # a file to play that cannot be read, or to record that cannot be made
    NO_DTMF = "no_dtmf"  # the far end did not accept telephone-events (K15: no fallback)
    ALREADY_RECORDING = "already_recording"  # a record of a call that is being recorded
    LINE_BUSY = "line_busy"  # a dial while the line carries all the calls it can (K24)
    INTERNAL = "internal"


class ProtocolError(ValueError):
    """A line that is not a valid message of this protocol."""


@dataclass(frozen=True, slots=True)
class Hello:
    """First message of every engine."""

    protocol: int
    engine: str = "kpn_line"
    pjsua2: str | None = None
    type: str = field(default="hello", init=False)


@dataclass(frozen=True, slots=True)
class RegistrationEvent:
    """The registration state changed (or was refreshed)."""

    state: RegState
    code: int | None = None
    reason: str | None = None
    expires: int | None = None
    next_attempt: float | None = None  # epoch seconds; None after auth failure (K8)
    time: float = 0.0
    # `registering` with this set: the credentials are out, their outcome is not known
    # yet (K8: no new credentialed attempt before it is, see CREDENTIALS_OUTCOME_WAIT).
    credentials_sent: bool = False
    # `registered` only: bindings of the AOR the registrar's 2xx listed that are not the
    # line's own (RFC 3261 §10.3): another device registered on the account (K7).
    other_bindings: int = 0
    # `registered` only: `host:port` of the line's own Contact, the binding this 2xx
    # confirmed.  A client that restarts a dead engine hands it to the next one
    # (Start.previous_contacts), which removes it should it bind another port (K7).
    contact: str | None = None
    type: str = field(default="registration", init=False)


@dataclass(frozen=True, slots=True)
class CallerId:
    """The other party of a call: who calls (K16), or whom the line dialled.

    The one caller type from the engine to the entities: the engine fills it
    (callerid.parse_caller_id for an incoming call, the dial string for an
    outgoing one), a `call` event carries it, the integration keeps the last
    one.  `number`: E.164 where it could be made so, else as presented (a
    short number, a dial string); `national`: the national display form
    (0612345678); `anonymous`: the caller withheld the number (then no number
    and no name).
    """

    number: str | None = None
    national: str | None = None
    name: str | None = None
    anonymous: bool = False

    def attributes(self) -> dict[str, Any]:
        """`number`, `national`, `name`, `anonymous`: the caller attributes of the event
        entity, sensor and diagnostics (a `call` event carries the same fields on the wire).
        """
        return asdict(self)


@dataclass(frozen=True, slots=True)
class EndReason:
    """Why the far end ended a call, as its RFC 3326 `Reason` header on BYE/CANCEL says.

    `protocol`: "SIP" or "Q.850" (upper-cased as received; another token as given);
    `cause`: the status code (SIP) or Q.850 cause value, None if absent or not a
    number; `text`: the `text` parameter unquoted, None if absent.
    """

    protocol: str
    cause: int | None = None
    text: str | None = None

    @property
    def answered_elsewhere(self) -> bool:
        """RFC 3326 §2 / RFC 3261 practice: a CANCEL with `SIP;cause=200` means
        another device of the forked call answered it (not a missed call)."""
        return self.protocol == "SIP" and self.cause == 200


@dataclass(frozen=True, slots=True)
class CallEvent:
    """A call changed state; on the wire the caller's fields are top-level ones."""

    call_id: str
    direction: Direction
    state: CallState
    caller: CallerId = CallerId()
    code: int | None = None
    reason: str | None = None
    duration: float | None = None
    missed: bool = False
    waiting: bool = False  # arrived while another call was active (K24)
    refused: str | None = None  # policy.Refusal: refused before it rang (only on `ended`)
    # RFC 3326: the far end's Reason of its BYE/CANCEL (only on `ended`, when it gave one)
    end_reason: EndReason | None = None
    time: float = 0.0
    type: str = field(default="call", init=False)


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """An error that belongs to no command."""

    code: str
    message: str
    type: str = field(default="error", init=False)


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to one command."""

    id: int
    ok: bool
    result: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None


class PlaybackEnd(StrEnum):
    """Why a playback ended (`playback_finished`)."""

    FINISHED = "finished"  # played to the end (every loop)
    STOPPED = "stopped"  # stop_playback
    REPLACED = "replaced"  # a new play on the same call
    ENDED = "ended"  # the call ended
    # The engine died while it played: never sent by the engine, told by its client's
    # user (Home Assistant), which knew the playback was on.
    CUT_OFF = "cut_off"
    # The sound never played: Home Assistant could not make it (text-to-speech or its
    # conversion failed while a dialled call rang).  Never sent by the engine either.
    FAILED = "failed"


class RecordingEnd(StrEnum):
    """Why a recording ended (`recording_saved`)."""

    MAX_LENGTH = "max_length"
    SILENCE = "silence"
    ENDED = "ended"  # the call ended
    # The engine died while it recorded: never sent by the engine; its client's user
    # (Home Assistant) completed the file's header (wavfile.complete_header).
    CUT_OFF = "cut_off"


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """One digit the far end sent as an RFC 2833 telephone-event (K15)."""

    call_id: str
    digit: str
    time: float = 0.0
    type: str = field(default="dtmf", init=False)


@dataclass(frozen=True, slots=True)
class PlaybackFinishedEvent:
    """A `play` ended; `file` as given to it."""

    call_id: str
    file: str
    reason: PlaybackEnd
    time: float = 0.0
    type: str = field(default="playback_finished", init=False)


@dataclass(frozen=True, slots=True)
class RecordingSavedEvent:
    """A `record` ended and its WAV file is complete; `duration` in seconds."""

    call_id: str
    file: str
    duration: float
    reason: RecordingEnd
    time: float = 0.0
    type: str = field(default="recording_saved", init=False)


type MediaEvent = DtmfEvent | PlaybackFinishedEvent | RecordingSavedEvent
type Event = RegistrationEvent | CallEvent | ErrorEvent | MediaEvent
type Message = Hello | Event | Reply


def encode(message: Message | Mapping[str, Any]) -> bytes:
    """One message as one line of bytes, rendered as it goes on the wire.

    A typed message: its fields, except that a `call` event's caller comes as
    top-level fields (CallerId's) and a reply carries `result` when ok, else
    `error` {code, message}.  A mapping (a command, commands.encode_command)
    goes as it is.
    """
    wire: Mapping[str, Any]
    match message:
        case Reply(id=cmd_id, ok=True, result=result):
            wire = {"type": "reply", "id": cmd_id, "ok": True, "result": result}
        case Reply(id=cmd_id, error_code=code, error_message=text):
            error = {"code": code, "message": text}
            wire = {"type": "reply", "id": cmd_id, "ok": False, "error": error}
        case CallEvent():
            wire = _call_wire(message)
        case dict():
            wire = message
        case Mapping():
            wire = dict(message)
        case _:  # every other message is its fields
            wire = asdict(message)
    return _dumps(wire)


type JsonCodec = tuple[Callable[[dict[str, Any]], bytes], Callable[[bytes | str], Any]]


def json_codec(fast: ModuleType | None) -> JsonCodec:
    """(dumps, loads) for lines: compact UTF-8 JSON with a newline, and its reader.

    `fast` is orjson, Home Assistant core's own JSON library (so it is there
    wherever Home Assistant runs the engine): its C code reads and writes a line
    in a third of the standard library's time, which counts on the cold CPU of
    an incoming call (issue 11).  None (the engine run alone, without Home
    Assistant's packages, as tests/wheels/test_aarch64.py does): the standard
    library's json, the same text.  Either raises TypeError for what JSON cannot
    hold and ValueError for a line that is no JSON text.
    """
    if fast is not None:
        options = fast.OPT_NON_STR_KEYS | fast.OPT_APPEND_NEWLINE  # int keys as json.dumps
        return (lambda wire: fast.dumps(wire, option=options)), fast.loads
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
    return (lambda wire: encoder.encode(wire).encode() + b"\n"), json.loads


def _fast_json() -> ModuleType | None:
    try:
        import orjson
    except ImportError:
        return None
    return orjson


_dumps, _loads = json_codec(_fast_json())


def _call_wire(event: CallEvent) -> dict[str, Any]:
    """A `call` event as its wire object: its fields, the caller's at the top level.

    What asdict would give (same keys, same order: tests/kpn_line/test_protocol.py),
    written out: this is the hot path of an incoming call, on a cold CPU (issue 11),
    where a loop over the fields cost twice as much.
    """
    far = event.end_reason
    caller = event.caller
    return {
        "call_id": event.call_id,
        "direction": event.direction,
        "state": event.state,
        "code": event.code,
        "reason": event.reason,
        "duration": event.duration,
        "missed": event.missed,
        "waiting": event.waiting,
        "refused": event.refused,
        "end_reason": None
        if far is None
        else {"protocol": far.protocol, "cause": far.cause, "text": far.text},
        "time": event.time,
        "type": event.type,
        "number": caller.number,
        "national": caller.national,
        "name": caller.name,
        "anonymous": caller.anonymous,
    }


@cache
def _init_names(cls: type) -> tuple[str, ...]:
    """The fields a message dataclass's constructor takes (all but `type`)."""
    return tuple(f.name for f in fields(cls) if f.init)


def _fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments of `cls` that `data` has; its other keys are ignored (a
    newer engine's fields).  A loop over the class's few fields, not over the line's keys:
    the call event's decode is on the hot path of an incoming call (issue 11)."""
    return {name: data[name] for name in _init_names(cls) if name in data}


_CALL_STATES: Final = {state.value: state for state in CallState}
_DIRECTIONS: Final = {direction.value: direction for direction in Direction}


def _call_event(data: dict[str, Any]) -> CallEvent:
    """A `call` line's object as its CallEvent; KeyError for a missing call_id, direction
    or state or an unknown state or direction (decode makes it a ProtocolError).

    Written out field by field, the fields' defaults as CallEvent's and CallerId's
    (tests/kpn_line/test_protocol.py holds it to the generic `_fields` reading): the
    `ringing` line's decode is on the hot path of an incoming call, on a cold CPU
    (issue 11), where the two `_fields` passes and the dict of arguments cost more.
    """
    far = data.get("end_reason")
    return CallEvent(
        call_id=data["call_id"],
        direction=_DIRECTIONS[data["direction"]],
        state=_CALL_STATES[data["state"]],
        caller=CallerId(
            number=data.get("number"),
            national=data.get("national"),
            name=data.get("name"),
            anonymous=data.get("anonymous", False),
        ),
        code=data.get("code"),
        reason=data.get("reason"),
        duration=data.get("duration"),
        missed=data.get("missed", False),
        waiting=data.get("waiting", False),
        refused=data.get("refused"),
        end_reason=EndReason(**_fields(EndReason, far)) if isinstance(far, dict) else None,
        time=data.get("time", 0.0),
    )


def decode(line: bytes | str) -> Message:
    """Parse one line from the engine; raise ProtocolError if it is not one."""
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError("message too long")
    try:
        data = _loads(line)
    except (ValueError, UnicodeDecodeError) as err:
        raise ProtocolError(f"not JSON: {err}") from None
    if not isinstance(data, dict):
        raise ProtocolError("not a JSON object")
    kind = data.get("type")
    try:
        match kind:
            case "hello":
                return Hello(**_fields(Hello, data))
            case "registration":
                reg = _fields(RegistrationEvent, data)
                reg["state"] = RegState(reg["state"])
                return RegistrationEvent(**reg)
            case "call":
                return _call_event(data)
            case "error":
                return ErrorEvent(**_fields(ErrorEvent, data))
            case "dtmf":
                return DtmfEvent(**_fields(DtmfEvent, data))
            case "playback_finished":
                played = _fields(PlaybackFinishedEvent, data)
                played["reason"] = PlaybackEnd(played["reason"])
                return PlaybackFinishedEvent(**played)
            case "recording_saved":
                saved = _fields(RecordingSavedEvent, data)
                saved["reason"] = RecordingEnd(saved["reason"])
                return RecordingSavedEvent(**saved)
            case "reply":
                error = data.get("error") or {}
                return Reply(
                    id=int(data["id"]),
                    ok=bool(data["ok"]),
                    result=data.get("result") or {},
                    error_code=error.get("code"),
                    error_message=error.get("message"),
                )
    except (KeyError, TypeError, ValueError) as err:
        raise ProtocolError(f"bad {kind} message: {err!r}") from None
    raise ProtocolError(f"unknown message type {kind!r}")


def hello() -> Hello:
    """This side's hello."""
    return Hello(protocol=PROTOCOL_VERSION)
