"""kpn_line.protocol: every message survives the wire; bad lines raise ProtocolError."""

from __future__ import annotations

from dataclasses import asdict
import json
import sys
from types import MappingProxyType
from typing import Any

import orjson
import pytest

from custom_components.kpn_voip.kpn_line import PROTOCOL_VERSION, protocol
from custom_components.kpn_voip.kpn_line.protocol import (
    MAX_LINE_BYTES,
    CallerId,
    CallEvent,
    CallState,
    Direction,
    EndReason,
    ErrorEvent,
    Hello,
    ProtocolError,
    RegistrationEvent,
    RegState,
    Reply,
    decode,
    encode,
    hello,
)

MESSAGES = [
    hello(),
    RegistrationEvent(state=RegState.UNREACHABLE, code=503, reason="x", next_attempt=2.0),
    CallEvent(
        call_id="c1",
        direction=Direction.INCOMING,
        state=CallState.ENDED,
        caller=CallerId(number="+31612345678", name="Jan ☎"),
        missed=True,
        duration=0.0,
    ),
    CallEvent(
        call_id="c2",
        direction=Direction.INCOMING,
        state=CallState.ENDED,
        code=487,
        end_reason=EndReason(protocol="SIP", cause=200, text="Call completed elsewhere"),
    ),
    ErrorEvent(code="rejected_source", message="INVITE from 127.0.0.3 refused"),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: m.type)
def test_events_round_trip(message: Hello | RegistrationEvent | CallEvent | ErrorEvent) -> None:
    line = encode(message)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert decode(line) == message
    assert decode(line.decode()) == message  # str or bytes


def test_call_events_carry_the_caller_as_top_level_fields() -> None:
    """The wire keeps its flat shape (docs/engine-protocol.md); the caller is one type inside."""
    caller = CallerId(number="+31612345678", national="0612345678", name="Jan", anonymous=False)
    event = CallEvent(
        call_id="c2", direction=Direction.INCOMING, state=CallState.RINGING, caller=caller
    )
    wire = json.loads(encode(event))
    assert "caller" not in wire
    assert {k: wire[k] for k in ("number", "national", "name", "anonymous")} == {
        "number": "+31612345678",
        "national": "0612345678",
        "name": "Jan",
        "anonymous": False,
    }
    assert caller.attributes() == {k: wire[k] for k in ("number", "national", "name", "anonymous")}
    assert decode(encode(wire)) == event
    bare = decode(b'{"type": "call", "call_id": "c3", "direction": "outgoing", "state": "dialing"}')
    assert isinstance(bare, CallEvent)
    assert bare.caller == CallerId()


EVERY_FIELD = CallEvent(
    call_id="c9",
    direction=Direction.OUTGOING,
    state=CallState.ENDED,
    caller=CallerId(number="+31612345678", national="0612345678", name="Jan", anonymous=False),
    code=603,
    reason="Decline",
    duration=1.5,
    missed=True,
    waiting=True,
    refused="blocked",
    end_reason=EndReason(protocol="Q.850", cause=16, text="Normal"),
    time=1764547200.25,
)


@pytest.mark.parametrize("event", [*(m for m in MESSAGES if isinstance(m, CallEvent)), EVERY_FIELD])
def test_call_wire_is_asdict_with_the_caller_flattened(codec: str, event: CallEvent) -> None:
    """The call event's wire object is written out field by field (issue 11): it must stay
    what asdict gives, same keys in the same order, the caller's fields at the end; a
    field added to CallEvent, CallerId or EndReason and not to the wire fails here."""
    expected = asdict(event)
    caller = expected.pop("caller")
    expected |= caller
    line = encode(event)
    assert list(json.loads(line).items()) == list(json.loads(json.dumps(expected)).items())


def _generic_call_event(data: dict[str, Any]) -> CallEvent:
    """A `call` line read the generic way (the class's fields that the line has), as
    decode did before its written-out `_call_event` (issue 11)."""
    call = protocol._fields(CallEvent, data)
    call["state"] = CallState(call["state"])
    call["direction"] = Direction(call["direction"])
    call["caller"] = CallerId(**protocol._fields(CallerId, data))
    far = call.get("end_reason")
    call["end_reason"] = (
        EndReason(**protocol._fields(EndReason, far)) if isinstance(far, dict) else None
    )
    return CallEvent(**call)


REQUIRED_CALL_FIELDS = ("call_id", "direction", "state", "type")


@pytest.mark.parametrize(
    "dropped",
    [
        (),
        *((key,) for key in json.loads(encode(EVERY_FIELD)) if key not in REQUIRED_CALL_FIELDS),
        tuple(key for key in json.loads(encode(EVERY_FIELD)) if key not in REQUIRED_CALL_FIELDS),
    ],
)
def test_call_decode_is_the_generic_reading(dropped: tuple[str, ...]) -> None:
    """The call event's decode is written out field by field (issue 11): with any
    optional key missing (then the field's default), or every one, it gives what the
    generic reading of the class's fields gives; a field added to CallEvent or CallerId
    and not to the decode fails the first case."""
    wire = json.loads(encode(EVERY_FIELD))
    for key in dropped:
        del wire[key]
    wire["newer_engine_field"] = 1  # ignored, as any key the class does not have
    assert decode(json.dumps(wire)) == _generic_call_event(wire)
    if not dropped:
        assert decode(json.dumps(wire)) == EVERY_FIELD


def test_end_reason_is_one_object_on_the_wire() -> None:
    """RFC 3326: `end_reason` {protocol, cause, text}; absent or not an object -> None."""
    event = CallEvent(
        call_id="c3",
        direction=Direction.INCOMING,
        state=CallState.ENDED,
        end_reason=EndReason(protocol="Q.850", cause=16),
    )
    wire = json.loads(encode(event))
    assert wire["end_reason"] == {"protocol": "Q.850", "cause": 16, "text": None}
    wire["end_reason"] = "garbage"
    decoded = decode(json.dumps(wire))
    assert isinstance(decoded, CallEvent)
    assert decoded.end_reason is None
    del wire["end_reason"]
    decoded = decode(json.dumps(wire))
    assert isinstance(decoded, CallEvent)
    assert decoded.end_reason is None


def test_replies_round_trip() -> None:
    ok = Reply(id=3, ok=True, result={"call_id": "c1"})
    wire = json.loads(encode(ok))
    assert wire == {"type": "reply", "id": 3, "ok": True, "result": {"call_id": "c1"}}
    assert decode(encode(ok)) == ok
    failed = Reply(id=4, ok=False, error_code="no_such_call", error_message="no call 'c9'")
    wire = json.loads(encode(failed))
    assert wire["error"] == {"code": "no_such_call", "message": "no call 'c9'"}
    assert "result" not in wire
    assert decode(encode(failed)) == failed


def test_hello_is_this_protocol_version() -> None:
    assert hello().protocol == PROTOCOL_VERSION


def test_unknown_fields_are_ignored() -> None:
    """A newer engine may add fields: an older client still reads the message."""
    data = json.loads(encode(MESSAGES[1])) | {"future_field": 1}
    assert decode(json.dumps(data)) == MESSAGES[1]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b"x" * (MAX_LINE_BYTES + 1), "message too long"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"type": "gossip"}', "unknown message type 'gossip'"),
        (b'{"no": "type"}', "unknown message type None"),
        (b'{"type": "registration"}', "bad registration message"),
        (b'{"type": "registration", "state": "sleeping"}', "bad registration message"),
        (
            b'{"type": "call", "call_id": "c1", "direction": "sideways", "state": "ended"}',
            "bad call",
        ),
        (b'{"type": "error", "code": "x"}', "bad error message"),
        (b'{"type": "reply", "ok": true}', "bad reply message"),
        (b'{"type": "reply", "id": "seven", "ok": true}', "bad reply message"),
    ],
)
def test_bad_lines_raise_protocol_error(line: bytes, words: str) -> None:
    """Never a KeyError/TypeError/ValueError of another kind: the client skips the line."""
    with pytest.raises(ProtocolError, match=words):
        decode(line)


@pytest.fixture(params=["orjson", "json"])
def codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways the protocol reads and writes lines: orjson (where Home Assistant is)
    and the standard library's json (the engine alone)."""
    fast = orjson if request.param == "orjson" else None
    dumps, loads = protocol.json_codec(fast)
    monkeypatch.setattr(protocol, "_dumps", dumps)
    monkeypatch.setattr(protocol, "_loads", loads)
    return str(request.param)


def test_orjson_is_the_codec_where_home_assistant_is() -> None:
    """Home Assistant's environment has orjson, so the protocol uses it (issue 11)."""
    assert protocol._loads is orjson.loads


@pytest.mark.parametrize(
    "line",
    [
        b'{"type": "hello", "protocol": 3}\n',
        b' \t{"type": "hello", "protocol": 3, "x": [1, 2.5, -3e2, null, true]}\r\n',
        '{"type": "hello", "protocol": 3, "name": "Zo\u00eb \u2603"}\n'.encode(),
        '{"type": "hello", "protocol": 3}',  # a str line too
    ],
)
def test_good_lines_decode(codec: str, line: bytes | str) -> None:
    """Both codecs read what json.loads reads, whitespace around it too."""
    assert decode(line) == Hello(protocol=3)


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"   ",
        b'{"a": 1} x',
        b'{"a": 1}{"b": 2}',
        b'{"a": "\x01"}',  # a control character in a string
        b"\xff\xfe",
        b"\x00{",
        b"{not json",
    ],
)
def test_lines_that_are_no_json_text_are_refused(codec: str, line: bytes) -> None:
    """Anything that is not one JSON text is a ProtocolError, never another error."""
    with pytest.raises(ProtocolError, match=r"^not JSON: "):
        decode(line)


def test_encode_is_compact_json(codec: str) -> None:
    """Both codecs write what json.dumps with compact separators and UTF-8 writes: a dict's
    int keys as strings, any Mapping as an object, one line."""
    wire = {"type": "x", "s": 'Zo\u00eb \u2603 "q"\n', "n": [1, 2.5, None], "e": CallState.RINGING}
    assert encode(wire) == (
        json.dumps(wire, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    )
    with pytest.raises(TypeError):
        encode({"bad": object()})
    assert encode({"after": "a failure"}) == b'{"after":"a failure"}\n'
    assert encode(MappingProxyType({"type": "x", "n": {1: "one"}})) == (
        b'{"type":"x","n":{"1":"one"}}\n'
    )
    assert decode(encode(MESSAGES[1])) == MESSAGES[1]


def test_the_engine_alone_without_orjson_uses_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Home Assistant's packages (no orjson) the standard library's json serves."""
    monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson raises ImportError
    assert protocol._fast_json() is None
    dumps, loads = protocol.json_codec(None)
    assert loads is json.loads
    assert dumps({"a": 1}) == b'{"a":1}\n'
