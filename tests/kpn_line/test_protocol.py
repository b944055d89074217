"""kpn_line.protocol: every message survives the wire; bad lines raise ProtocolError."""

from __future__ import annotations

import json
import re

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


@pytest.mark.parametrize(
    "line",
    [
        b'{"type": "hello", "protocol": 3}\n',
        b' \t{"a": [1, 2.5, -3e2, null, true, false, "\\u00e9\\n"]}\r\n',
        '{"name": "Zo\u00eb \u2603"}\n'.encode(),
        b'\xef\xbb\xbf{"bom": 1}',  # json.loads takes a UTF-8 BOM in bytes
        '{"t": "utf-16"}'.encode("utf-16"),  # and other encodings it detects
        b'{"nan": NaN, "big": 1e999}',
        b"",
        b"   ",
        b'{"a": 1} x',
        b'{"a": 1}\x0b',  # not JSON whitespace
        b'{"a": 1}{"b": 2}',
        b'{"a": "\x01"}',  # a control character in a string
        b"{not json",
        b"\xff\xfe",
        b"\x00{",
    ],
)
def test_loads_is_json_loads(line: bytes) -> None:
    """The quick decoder (issue 11) takes what json.loads takes, gives what it gives, and
    refuses what it refuses, with its error."""
    try:
        expected: object = json.loads(line)
    except ValueError as err:
        with pytest.raises(type(err), match=f"^{re.escape(str(err))}$"):
            protocol._loads(line)
        return
    assert json.dumps(protocol._loads(line)) == json.dumps(expected)  # NaN != NaN: as text


@pytest.mark.parametrize("text", ['{"a": "\u00e9"}\n', '\ufeff{"a": 1}', "[1] 2", ""])
def test_loads_of_text_is_json_loads(text: str) -> None:
    """A str line too (decode takes both)."""
    try:
        expected: object = json.loads(text)
    except ValueError as err:
        with pytest.raises(type(err), match=re.escape(str(err))):
            protocol._loads(text)
        return
    assert protocol._loads(text) == expected


def test_encode_is_compact_json() -> None:
    """The one-shot encoder (issue 11) writes what json.dumps with the same options does."""
    wire = {"type": "x", "s": 'Zo\u00eb \u2603 "q"\n', "n": [1, 2.5, None], "e": CallState.RINGING}
    assert encode(wire) == (
        json.dumps(wire, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    )
    with pytest.raises(TypeError):
        encode({"bad": object()})
    assert encode({"after": "a failure"}) == b'{"after":"a failure"}\n'


def test_encode_without_the_c_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Python without json's C encoder gets JSONEncoder.encode: the same text."""
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    encode_json = protocol._json_encoder()
    wire = {"type": "x", "s": "Zo\u00eb", "n": [1, None]}
    assert encode_json(wire) == protocol._encode_json(wire) == '{"type":"x","s":"Zoë","n":[1,null]}'
