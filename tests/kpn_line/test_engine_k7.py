"""K7 on the wire: another device registered on the line's account is seen and reported.

A registrar's 2xx to a REGISTER lists every binding of the AOR (RFC 3261
§10.3 step 8); a binding that is not the line's own is another device (a KPN
Box with Vast Bellen still on).  The engine reads it from the answers to the
REGISTERs it sends anyway (the first one, the refreshes): never an extra
REGISTER, never an extra credentialed request (K8).  The other device here is
SIPp registering with the same credentials; the stand-in keeps every binding
(keep_one_contact=False, as a generic registrar does).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import re
import signal
import socket
import time
from typing import Any

import pytest

from custom_components.kpn_voip.kpn_line import cli
from custom_components.kpn_voip.kpn_line.protocol import RegistrationEvent, RegState
from custom_components.kpn_voip.kpn_line.registration import contact_bindings
from kpn_devtools.kamailio import TEST_ACCOUNT
from kpn_devtools.ports import free_udp_port

from .conftest import LineFactory, engine_port, registrar_settings, sip_headers

pytestmark = pytest.mark.timeout(90)

GRANT = 4  # seconds the stand-in grants: the line refreshes every GRANT / 2 s
_NONCE = re.compile(r'nonce="([^"]*)"')


def _ours(cap: Any, other_port: int) -> list[tuple[float, str]]:
    """(time, text) of the REGISTERs and their answers between the line and the stand-in."""
    return [
        (packet.time, text)
        for packet, text in cap.sip()
        if other_port not in (packet.sport, packet.dport)
        and sip_headers(text, "CSeq")
        and sip_headers(text, "CSeq")[0].endswith("REGISTER")
    ]


def _from(cap: Any, hostport: str) -> list[tuple[float, str]]:
    """(time, text) of the SIP messages to or from `hostport` (127.0.0.1:port) in `cap`."""
    port = int(hostport.rsplit(":", 1)[1])
    return [(p.time, t) for p, t in cap.sip() if port in (p.sport, p.dport)]


def _registered(line: Any) -> list[RegistrationEvent]:
    return [e for e in line.registrations() if e.state == RegState.REGISTERED]


async def _wait_other_bindings(line: Any, count: int, timeout: float, *, after: int = 0) -> None:  # noqa: ASYNC109
    """K7: until a `registered` event (the `after`-th registration event or a later one)
    reports `count` other devices' bindings."""
    await line.wait(
        lambda e: isinstance(e, RegistrationEvent)
        and e.state == RegState.REGISTERED
        and e.other_bindings == count
        and line.registrations().index(e) >= after,
        timeout,
    )


async def _other_device(sipp: Any, kam: Any) -> int:
    """SIPp registers TEST_ACCOUNT (digest, one-time nonce) from a port of its own."""
    port = free_udp_port()
    run = await asyncio.to_thread(sipp.register, kam, port=port)
    assert run.final_code("REGISTER") == 200
    return port


async def test_k7_other_device_seen_in_the_first_registration(
    kamailio_factory, sipp, capture, line_factory: LineFactory
) -> None:
    """K7: a device registered before the line is in the first 2xx's Contacts: the
    `registered` event says other_bindings 1; the line sent one credentialed REGISTER (K8)."""
    kam = kamailio_factory(keep_one_contact=False)
    other_port = await _other_device(sipp, kam)
    cap = capture(bpf=f"udp port {kam.port}")
    line = await line_factory(kam.line_settings())
    event = _registered(line)[0]
    assert event.other_bindings == 1
    assert len(kam.contacts(TEST_ACCOUNT.number)) == 2
    await asyncio.to_thread(cap.wait_for, lambda _: len(_ours(cap, other_port)) >= 4, 5.0)
    ours = [text for _, text in _ours(cap, other_port)]
    requests = [t for t in ours if t.startswith("REGISTER ")]
    answers = [t for t in ours if t.startswith("SIP/2.0 ")]
    assert len(requests) == 2  # one without credentials, one with (K8)
    assert [bool(sip_headers(t, "Authorization")) for t in requests] == [False, True]
    assert [int(t.split()[1]) for t in answers] == [401, 200]
    assert len(contact_bindings(answers[-1])) == 2  # what the registrar told the line
    assert kam.nonce_reuses() == 0


async def test_k7_other_device_noticed_at_the_refresh_and_cleared_when_gone(
    kamailio_factory, sipp, capture, line_factory: LineFactory
) -> None:
    """K7: a device that registers while the line is up is reported by the next refresh's
    2xx (within GRANT / 2 s plus the exchange), and no longer once its binding expired.
    The refreshes go at their K21 pace, each with one credentialed REGISTER answering its
    own fresh nonce (K8): seeing another device sends nothing extra."""
    kam = kamailio_factory(keep_one_contact=False, expires=GRANT)
    cap = capture(bpf=f"udp port {kam.port}")
    line = await line_factory(kam.line_settings())
    assert _registered(line)[0].other_bindings == 0
    before = time.monotonic()
    other_port = await _other_device(sipp, kam)
    other_at = time.monotonic()  # SIPp has its 200
    await _wait_other_bindings(line, 1, GRANT + 2)
    noticed = time.monotonic() - other_at
    assert noticed < GRANT / 2 + 1.0, noticed  # the next refresh, not a later one
    seen = len(line.registrations())
    # SIPp does not refresh: its binding expires GRANT s after it registered.
    await _wait_other_bindings(line, 0, GRANT + GRANT / 2 + 2, after=seen)
    cleared = time.monotonic() - other_at
    # Not before the binding expired (the stand-in counts whole seconds: up to 1 s
    # early), and at the first refresh after it.
    assert time.monotonic() - before > GRANT - 1.0, cleared
    assert cleared < GRANT + GRANT / 2 + 1.0, cleared
    print(f"K7: other device noticed after {noticed:.2f} s, cleared after {cleared:.2f} s")
    registered = _registered(line)
    assert [e.other_bindings for e in registered].count(1) >= 1
    assert all(e.state == RegState.REGISTERED for e in line.registrations()[seen - 1 :])
    await asyncio.to_thread(
        cap.wait_for,
        lambda _: sum(t.startswith("SIP/2.0 200") for _, t in _ours(cap, other_port))
        >= len(registered),
        5.0,
    )
    ours = _ours(cap, other_port)
    credentialed = [
        (at, t) for at, t in ours if t.startswith("REGISTER ") and sip_headers(t, "Authorization")
    ]
    # One credentialed REGISTER per `registered` (K8), each with a nonce of its own...
    assert len(credentialed) == len(registered)
    nonces = [_NONCE.findall(sip_headers(t, "Authorization")[0])[0] for _, t in credentialed]
    assert len(set(nonces)) == len(nonces)
    assert kam.nonce_reuses() == 0
    # ... at the refresh pace only (K21: GRANT / 2), never one more because of K7.
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(credentialed)]
    assert gaps, credentialed
    assert min(gaps) > GRANT / 2 - 0.5, gaps
    assert {sip_headers(t, "Call-ID")[0] for _, t in ours} == {
        sip_headers(ours[0][1], "Call-ID")[0]
    }


async def test_k7_a_second_pjsua2_line_and_the_first_see_each_other(
    kamailio_factory, line_factory: LineFactory
) -> None:
    """K7 with a second pjsua2 as the other device: a second engine on the same account
    (its port is the line's own port, taken, so it binds another) is told by its first
    2xx; the first line by its next refresh.  Each stays `registered`."""
    kam = kamailio_factory(keep_one_contact=False, expires=GRANT)
    first = await line_factory(kam.line_settings())
    assert _registered(first)[0].other_bindings == 0
    second = await line_factory(kam.line_settings())
    assert _registered(second)[0].other_bindings == 1
    await _wait_other_bindings(first, 1, GRANT + 2)
    assert len(kam.contacts(TEST_ACCOUNT.number)) == 2
    await second.client.stop()  # its un-REGISTER removes its binding (K7)
    await _wait_other_bindings(first, 0, GRANT + 2, after=len(first.registrations()))
    assert {e.state for e in first.registrations()[1:]} <= {
        RegState.REGISTERING,
        RegState.REGISTERED,
    }
    assert kam.nonce_reuses() == 0


def test_k7_the_command_line_tool_warns_on_stderr(kamailio_factory, sipp) -> None:
    """K7 in kpn_line.cli: the `registration` line on stdout carries other_bindings, and
    a warning for people goes to stderr (never the password, K9)."""
    kam = kamailio_factory(keep_one_contact=False)
    assert sipp.register(kam, port=free_udp_port()).final_code("REGISTER") == 200
    out, err = io.StringIO(), io.StringIO()
    argv = [
        *("--number", TEST_ACCOUNT.number, "--username", TEST_ACCOUNT.username),
        # The time counts from the command's start, engine start and registration
        # included (as in test_cli.py): 2 s ended a CI run before the line registered.
        *("--proxy", f"{kam.host}:{kam.port}", "--duration", "5"),
    ]
    code = cli.main(
        argv,
        environ={cli.PASSWORD_ENV: TEST_ACCOUNT.password},
        stdin=io.StringIO(),
        stdout=out,
        stderr=err,
    )
    assert code == cli.EXIT_OK, (out.getvalue(), err.getvalue())
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    registered = [e for e in lines if e.get("state") == "registered"]
    assert [e["other_bindings"] for e in registered] == [1]
    assert "1 other device(s) registered on this line (K7)" in err.getvalue()
    assert "Vast Bellen" in err.getvalue()
    assert TEST_ACCOUNT.password not in out.getvalue() + err.getvalue()


async def _restart_on_another_port(line_factory: LineFactory, kam: Any, sock: socket.socket) -> Any:
    """A line registers, its engine is SIGKILLed (no un-REGISTER: its binding stays), a
    socket (`sock`) takes its port, and a new engine starts as the coordinator restarts one:
    with the dead engine's `leftover_contacts`.  Returns the new line, registered."""
    first = await line_factory(kam.line_settings())
    port = engine_port(first)
    assert first.client.leftover_contacts == (f"127.0.0.1:{port}",)
    assert _registered(first)[0].contact == f"127.0.0.1:{port}"
    pid = first.client.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await first.wait_exit(5.0)
    assert first.exits
    sock.bind(("127.0.0.1", port))  # the former port is still taken
    second = await line_factory(
        kam.line_settings(), previous_contacts=first.client.leftover_contacts
    )
    assert engine_port(second) != port
    return second


async def test_k7_a_restarted_engine_on_another_port_removes_its_old_binding(
    kamailio_factory, capture, line_factory: LineFactory
) -> None:
    """K7: a restarted engine whose former port is still taken binds another; the registrar
    still lists the dead engine's binding.  It is the line's own, no other device: the new
    engine's first REGISTER removes it (expires=0, RFC 3261 §10.2.2) and its `registered`
    says other_bindings 0, at once and at the refreshes, which carry the current Contact
    alone.  One credentialed REGISTER per `registered` (K8), no nonce used twice."""
    kam = kamailio_factory(keep_one_contact=False, expires=GRANT)
    cap = capture(bpf=f"udp port {kam.port}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        line = await _restart_on_another_port(line_factory, kam, taken)
        new = f"127.0.0.1:{engine_port(line)}"
        assert [e.other_bindings for e in _registered(line)] == [0]
        assert line.client.leftover_contacts == (new,)  # for the restart after this one
        assert [c.split("@", 1)[1] for c in kam.contacts(TEST_ACCOUNT.number)] == [new]
        await _wait_other_bindings(line, 0, GRANT + 2, after=1)  # a refresh: still none
        await asyncio.to_thread(
            cap.wait_for,
            lambda _: sum(t.startswith("SIP/2.0 200") for _, t in _from(cap, new)) >= 2,
            5.0,
        )
    assert all(e.other_bindings == 0 for e in _registered(line))
    registers = [t for _, t in _from(cap, new) if t.startswith("REGISTER ")]
    removals = [
        [c for c in sip_headers(t, "Contact") if c.endswith(";expires=0")] for t in registers
    ]
    # The first exchange (its REGISTER and the credentialed answer to its challenge) only.
    assert [bool(r) for r in removals[:2]] == [True, True]
    assert not any(removals[2:]), removals
    assert len(registers) >= 4, len(registers)
    assert "@127.0.0.1:" in removals[0][0]
    assert new not in removals[0][0]
    credentialed = [t for t in registers if sip_headers(t, "Authorization")]
    assert len(credentialed) == len(_registered(line))
    assert kam.nonce_reuses() == 0


async def test_k7_a_restarted_engine_on_another_port_still_sees_another_device(
    kamailio_factory, sipp, line_factory: LineFactory
) -> None:
    """K7: the same restart while another device (SIPp, same credentials) is registered:
    the dead engine's binding is removed and not counted, the other device is: the new
    engine's first `registered` says other_bindings 1 (a real K7 problem stays told)."""
    kam = kamailio_factory(keep_one_contact=False)
    await _other_device(sipp, kam)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        line = await _restart_on_another_port(line_factory, kam, taken)
        assert [e.other_bindings for e in _registered(line)] == [1]
        assert len(kam.contacts(TEST_ACCOUNT.number)) == 2  # the other device's and ours
    assert kam.nonce_reuses() == 0


async def test_k7_an_engine_that_never_registered_leaves_what_it_was_given(
    line_factory: LineFactory,
) -> None:
    """K7: an engine that dies before any 2xx may not have removed the bindings it was
    handed: its `leftover_contacts` are those, for the engine after it."""
    previous = ("127.0.0.1:61234",)
    line = await line_factory(
        registrar_settings(free_udp_port()), registered=False, previous_contacts=previous
    )
    assert line.client.leftover_contacts == previous
