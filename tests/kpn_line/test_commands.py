"""kpn_line.commands: every command survives the wire; bad lines get their error reply.

Pure: no pjsua2, no engine process.  The engine's replies to the same lines
are tested end to end in test_engine_protocol.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from custom_components.kpn_voip.kpn_line.commands import (
    Answer,
    Command,
    CommandRejected,
    Dial,
    Hangup,
    Ping,
    Request,
    SetCallPolicy,
    Start,
    Stop,
    decode_command,
    encode_command,
)
from custom_components.kpn_voip.kpn_line.policy import CallPolicy
from custom_components.kpn_voip.kpn_line.protocol import ErrorCode
from custom_components.kpn_voip.kpn_line.settings import LineSettings

SETTINGS = LineSettings(number="0201234567", username="12345678", password="Secret-1")

COMMANDS: list[Command] = [
    Ping(),
    Stop(),
    Stop(credentials=False),
    Start(settings=SETTINGS),
    Start(settings=SETTINGS, single_attempt=True, log_level=4),
    Start(settings=SETTINGS, previous_contacts=("192.168.1.20:61234", "10.0.0.2:5060")),
    Dial(number="0612345678"),
    Dial(number="+31612345678", hide_caller_id=True, hangup_after=2.5),
    Hangup(),
    Hangup(call_id="c3"),
    Answer(call_id="c1"),
    SetCallPolicy(policy=CallPolicy()),
    SetCallPolicy(
        policy=CallPolicy(
            do_not_disturb=True, block_anonymous=True, block=("+31900*",), allow=("+31612345678",)
        )
    ),
]


def _line(wire: dict[str, Any]) -> bytes:
    return json.dumps(wire).encode()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.type)
def test_commands_round_trip(command: Command) -> None:
    """What the client sends is what the engine decodes, id included."""
    line = encode_command(command, 7)
    assert json.loads(line)["type"] == command.type
    assert decode_command(line) == Request(id=7, command=command)
    assert decode_command(line.decode()) == Request(id=7, command=command)


def test_start_carries_the_settings_as_to_wire() -> None:
    wire = json.loads(encode_command(Start(settings=SETTINGS), 1))
    assert wire == {
        "type": "start",
        "id": 1,
        "settings": SETTINGS.to_wire(),
        "single_attempt": False,
        "log_level": None,
        "previous_contacts": [],
    }


def test_defaults_and_unknown_fields() -> None:
    """Absent optional fields take their defaults; fields no command has are ignored."""
    assert decode_command(b'{"type": "ping", "id": 1, "extra": [1]}') == Request(1, Ping())
    assert decode_command(b'{"type": "hangup", "id": 2}') == Request(2, Hangup(call_id=None))
    dial = decode_command(b'{"type": "dial", "id": 3, "number": "112", "hangup_after": 1}')
    assert dial.command == Dial(number="112", hangup_after=1.0)
    assert isinstance(dial.command, Dial)
    assert isinstance(dial.command.hangup_after, float)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [({}, None), ({"log_level": 0}, 0), ({"log_level": 6}, 6)]
    + [({"log_level": bad}, None) for bad in (7, -1, True, "3", 2.0, None)],
)
def test_log_level_outside_0_to_6_is_ignored(fields: dict[str, Any], expected: int | None) -> None:
    """`log_level` is pjsip's, 0-6; anything else keeps the engine's level (as documented)."""
    wire = {"type": "start", "id": 1, "settings": SETTINGS.to_wire(), **fields}
    request = decode_command(_line(wire))
    assert isinstance(request.command, Start)
    assert request.command.log_level == expected


def test_flags_are_taken_for_their_truth_value() -> None:
    wire = {"type": "start", "id": 1, "settings": SETTINGS.to_wire(), "single_attempt": 1}
    assert decode_command(_line(wire)).command == Start(settings=SETTINGS, single_attempt=True)
    dial = {"type": "dial", "id": 2, "number": "112", "hide_caller_id": 0}
    assert decode_command(_line(dial)).command == Dial(number="112", hide_caller_id=False)


@pytest.mark.parametrize(
    ("line", "reply_id", "code", "message"),
    [
        (b"not json", None, ErrorCode.BAD_REQUEST, "not a JSON object"),
        (b"[1, 2]", None, ErrorCode.BAD_REQUEST, "not a JSON object"),
        (b"\xff\xfe", None, ErrorCode.BAD_REQUEST, "not a JSON object"),
        (b'"text"', None, ErrorCode.BAD_REQUEST, "not a JSON object"),
        (b'{"type": "fly", "id": 1}', 1, ErrorCode.BAD_REQUEST, "unknown command 'fly'"),
        (b'{"id": 2}', 2, ErrorCode.BAD_REQUEST, "unknown command 'None'"),
        (b'{"type": 7, "id": 3}', 3, ErrorCode.BAD_REQUEST, "unknown command '7'"),
        (b'{"type": "ping"}', None, ErrorCode.BAD_REQUEST, "unknown command 'ping'"),
        (b'{"type": "ping", "id": "4"}', "4", ErrorCode.BAD_REQUEST, "unknown command 'ping'"),
        (b'{"type": "ping", "id": true}', True, ErrorCode.BAD_REQUEST, "unknown command 'ping'"),
        (b'{"type": "dial", "id": 5}', 5, ErrorCode.BAD_REQUEST, "number: missing"),
        (b'{"type": "dial", "id": 6, "number": 612}', 6, ErrorCode.BAD_REQUEST, "number: missing"),
        (
            b'{"type": "dial", "id": 7, "number": "1", "hangup_after": -1}',
            7,
            ErrorCode.BAD_REQUEST,
            "hangup_after: must be a positive number",
        ),
        (
            b'{"type": "dial", "id": 8, "number": "1", "hangup_after": "soon"}',
            8,
            ErrorCode.BAD_REQUEST,
            "hangup_after: must be a positive number",
        ),
        (
            b'{"type": "dial", "id": 9, "number": "1", "hangup_after": true}',
            9,
            ErrorCode.BAD_REQUEST,
            "hangup_after: must be a positive number",
        ),
        (
            b'{"type": "dial", "id": 10, "number": "1", "hangup_after": 0}',
            10,
            ErrorCode.BAD_REQUEST,
            "hangup_after: must be a positive number",
        ),
        (  # JSON as Python reads it: a deadline that would never be due
            b'{"type": "dial", "id": 11, "number": "1", "hangup_after": NaN}',
            11,
            ErrorCode.BAD_REQUEST,
            "hangup_after: must be a positive number",
        ),
        (  # JSON as Python reads it: a deadline that would never be due
            b'{"type": "dial", "id": 12, "number": "1", "hangup_after": Infinity}',
            12,
            ErrorCode.BAD_REQUEST,
            "hangup_after: must be a positive number",
        ),
        (b'{"type": "hangup", "id": 13, "call_id": 5}', 13, ErrorCode.NO_SUCH_CALL, "no call '5'"),
        (b'{"type": "answer", "id": 15}', 15, ErrorCode.NO_SUCH_CALL, "no ringing call 'None'"),
        (
            b'{"type": "answer", "id": 16, "call_id": ["c1"]}',
            16,
            ErrorCode.NO_SUCH_CALL,
            "no ringing call \"['c1']\"",
        ),
        (b'{"type": "start", "id": 17}', 17, ErrorCode.BAD_REQUEST, "settings: must be an object"),
        (b'{"type": "set_call_policy", "id": 19}', 19, ErrorCode.BAD_REQUEST, "policy: missing"),
        (
            b'{"type": "set_call_policy", "id": 20, "policy": {"block": ["nope"]}}',
            20,
            ErrorCode.BAD_REQUEST,
            "policy: block: entry 1 is not a phone number or a prefix ending in *",
        ),
        (
            b'{"type": "set_call_policy", "id": 21, "policy": {"do_not_disturb": 1}}',
            21,
            ErrorCode.BAD_REQUEST,
            "policy: do_not_disturb must be true or false",
        ),
        (
            b'{"type": "start", "id": 18, "settings": {"number": "+31201234567"}}',
            18,
            ErrorCode.BAD_REQUEST,
            "username: missing",
        ),
    ],
)
def test_bad_lines_are_rejected_with_their_reply(
    line: bytes, reply_id: Any, code: ErrorCode, message: str
) -> None:
    """The reply repeats the id as sent (None when there is none); the message names the field."""
    with pytest.raises(CommandRejected) as err:
        decode_command(line)
    assert (err.value.id, err.value.code, err.value.message) == (reply_id, code, message)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "value",
    [
        "192.168.1.20:61234",  # no list
        ["192.168.1.20:1", "192.168.1.20:2", "192.168.1.20:3", "192.168.1.20:4", "1.2.3.4:5"],
        ["192.168.1.20"],  # no port
        ["192.168.1.20:0"],
        ["192.168.1.20:65536"],
        ["192.168.1.20:\uff15\uff10\uff16\uff10"],  # digits, but not ASCII ones
        ["[2001:db8::1]:5060"],  # IPv4 only (pjsua2 is built without IPv6 media)
        ["proxy.example:5060"],  # an address, never a name
        [5060],
    ],
)
def test_previous_contacts_must_be_ipv4_host_ports(value: Any) -> None:
    """K7: `start`'s previous_contacts is null or a list of at most 4 `IPv4:port`; anything
    else is bad_request naming the field (the engine would remove what it names)."""
    wire = {"type": "start", "id": 7, "settings": SETTINGS.to_wire(), "previous_contacts": value}
    with pytest.raises(CommandRejected) as err:
        decode_command(_line(wire))
    assert (err.value.id, err.value.code) == (7, ErrorCode.BAD_REQUEST)
    assert err.value.message.startswith("previous_contacts: ")
    wire["previous_contacts"] = None
    command = decode_command(_line(wire)).command
    assert isinstance(command, Start)
    assert command.previous_contacts == ()


def test_rejections_quote_only_a_short_piece() -> None:
    with pytest.raises(CommandRejected) as err:
        decode_command(_line({"type": "x" * 5000, "id": 1}))
    assert len(err.value.message) < 80
    with pytest.raises(CommandRejected) as err:
        decode_command(_line({"type": "hangup", "id": 2, "call_id": ["c" * 5000]}))
    assert len(err.value.message) < 60


def test_bad_settings_never_echo_the_password() -> None:
    """K9: a settings error names the field, not the value."""
    wire = SETTINGS.to_wire() | {"proxy_port": "x"}
    with pytest.raises(CommandRejected) as err:
        decode_command(_line({"type": "start", "id": 1, "settings": wire}))
    assert err.value.code == ErrorCode.BAD_REQUEST
    assert "proxy_port" in err.value.message
    assert "Secret-1" not in str(err.value)
    assert "Secret-1" not in repr(Start(settings=SETTINGS))
