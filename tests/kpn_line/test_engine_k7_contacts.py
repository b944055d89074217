"""K7 without the wire: the bindings a REGISTER's 2xx lists, and which are another device's.

RFC 3261 §10.3 step 8 (the 2xx lists every binding), §20.10 and §25.1 (the
Contact grammar).  The wire proof is test_engine_k7.py.
"""

from __future__ import annotations

from dataclasses import replace

from custom_components.kpn_voip.kpn_line.cli import other_device_notice
from custom_components.kpn_voip.kpn_line.protocol import (
    RegistrationEvent,
    RegState,
    decode,
    encode,
)
from custom_components.kpn_voip.kpn_line.registration import (
    Binding,
    RegistrationMachine,
    contact_bindings,
    other_bindings,
)

OURS = "sip:+31201234567@192.168.1.20:62641"
BOX = "sip:+31201234567@10.0.0.1:5060"


def _answer(*contacts: str) -> str:
    head = "".join(f"{line}\r\n" for line in contacts)
    return f"SIP/2.0 200 OK\r\nCSeq: 2 REGISTER\r\n{head}Content-Length: 0\r\n\r\n"


def test_k7_every_contact_of_the_answer_is_a_binding() -> None:
    """K7: several Contact headers, several contacts in one (commas inside quotes and <> are no
    separators), the compact form `m`, folded lines, an addr-spec without <>, expires."""
    answer = _answer(
        f'Contact: <{OURS}>;expires=3600;received="sip:1.2.3.4:62641, x", "Box, <hall>" <{BOX}>',
        "m: <sip:other@[2001:db8::1]:5070;transport=udp>;expires=30",
        "Contact: sip:+31201234567@10.0.0.9;expires=12,",
        " <sip:+31201234567@10.0.0.8:5080>",
    )
    assert contact_bindings(answer) == [
        Binding(OURS, 3600),
        Binding(BOX, None),
        Binding("sip:other@[2001:db8::1]:5070;transport=udp", 30),
        Binding("sip:+31201234567@10.0.0.9", 12),
        Binding("sip:+31201234567@10.0.0.8:5080", None),
    ]
    assert [b.hostport for b in contact_bindings(answer)] == [
        "192.168.1.20:62641",
        "10.0.0.1:5060",
        "[2001:db8::1]:5070",
        "10.0.0.9:5060",  # no port: 5060 (RFC 3261 §19.1.2)
        "10.0.0.8:5080",
    ]


def test_k7_removed_and_wildcard_contacts_are_no_bindings() -> None:
    """K7: `expires=0` is a binding being removed; `*` names none; other headers are not read."""
    answer = _answer(
        f"Contact: <{BOX}>;expires=0",
        "Contact: *",
        f"From: <{BOX}>;tag=1",
        f"Contact: <{OURS}>;expires=3600",
    )
    assert contact_bindings(answer) == [Binding(OURS, 3600)]
    assert contact_bindings("SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n") == []
    assert Binding("sip:[::1]").hostport == "[::1]:5060"
    assert Binding("sip:HOST.example:5070;ob").hostport == "host.example:5070"


def test_k7_other_bindings_counts_what_is_not_ours() -> None:
    """K7: ours are the transport's host:port and the Contacts being removed after a move."""
    own = {"192.168.1.20:62641"}
    assert other_bindings([Binding(OURS)], own) == 0
    assert other_bindings([Binding(OURS), Binding(BOX)], own) == 1
    assert other_bindings([Binding(OURS), Binding(BOX), Binding("sip:x@10.0.0.2")], own) == 2
    moved_from = {*own, "192.168.1.21:62641"}
    old = Binding("sip:+31201234567@192.168.1.21:62641")
    assert other_bindings([Binding(OURS), old], moved_from) == 0
    assert other_bindings([], own) == 0


def test_k7_a_registrar_that_rewrites_contacts_is_no_other_device() -> None:
    """K7: A 2xx that lists none of our Contacts (rewritten to the address it received from):
    one binding is the line's own, so a single one is never reported as another device."""
    own = {"192.168.1.20:62641"}
    rewritten = Binding("sip:+31201234567@203.0.113.5:1024")
    assert other_bindings([rewritten], own) == 0
    assert other_bindings([rewritten, Binding(BOX)], own) == 1


def test_k7_other_bindings_ride_on_the_registered_event_only() -> None:
    """K7: The machine puts the count into the 2xx's `registered` event; other answers carry 0."""
    machine = RegistrationMachine(wall=lambda t: t)
    machine.start(100.0)
    assert machine.on_challenge(cseq=1) is True
    event = machine.on_response(100.1, 200, "OK", granted=3600, other_bindings=2).event
    assert event is not None
    assert (event.state, event.other_bindings) == (RegState.REGISTERED, 2)
    machine.due(100.1 + 3300)  # the refresh
    assert machine.on_challenge(cseq=3) is True
    failed = machine.on_response(3400.2, 503, "Service Unavailable").event
    assert failed is not None
    assert (failed.state, failed.other_bindings) == (RegState.UNREACHABLE, 0)


def test_k7_other_bindings_on_the_wire() -> None:
    """K7: `other_bindings` goes over the engine protocol; an event without it decodes as 0."""
    event = RegistrationEvent(state=RegState.REGISTERED, code=200, other_bindings=1)
    line = encode(event)
    assert b'"other_bindings":1' in line
    assert decode(line) == event
    older = decode(b'{"type":"registration","state":"registered"}')
    assert isinstance(older, RegistrationEvent)
    assert older.other_bindings == 0


def test_k7_command_line_notice_when_another_device_comes_and_goes() -> None:
    """K7: kpn_line.cli tells people once when another device appears and once when it goes."""
    registered = RegistrationEvent(state=RegState.REGISTERED, code=200)
    one = replace(registered, other_bindings=1)
    notice = other_device_notice(0, one)
    assert notice is not None
    assert "1 other device(s)" in notice
    assert "Vast Bellen" in notice
    assert other_device_notice(1, replace(registered, other_bindings=2)) is None  # still there
    assert other_device_notice(1, RegistrationEvent(state=RegState.REGISTERING)) is None
    gone = other_device_notice(2, registered)
    assert gone is not None
    assert "no longer" in gone
    assert other_device_notice(0, registered) is None
