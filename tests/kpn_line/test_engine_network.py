"""Network faults end to end (issue 9 items 8, 9): DNS down at boot, a dead name server,
the Contact's interface, the proxy's network, an address change.

The stand-in (Kamailio, one-time nonces) runs in a network namespace of its
own at PROXY_IP; the engine in another (kpn_devtools/netlab.py), whose
default route goes out of a second interface, so a wildcard-bound engine
would name the wrong address in its Contact.  Root only (namespaces).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import os
import re
import shutil
import time
from typing import Any

import pytest

from custom_components.kpn_voip.kpn_line.protocol import (
    CallState,
    ErrorCode,
    ErrorEvent,
    RegistrationEvent,
    RegState,
)
from kpn_devtools.kamailio import TEST_ACCOUNT, Kamailio
from kpn_devtools.netlab import LINE_IP, NEW_LINE_IP, PROXY_NAME, NetLab
import kpn_devtools.sipp

from .conftest import LineFactory, engine_command, sip_headers

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("unshare") is None,
        reason="network namespaces need root, nft and unshare",
    ),
]

NUMBER = TEST_ACCOUNT.number
KEEPALIVE = 3  # seconds (K10 setting): the route check's period


@pytest.fixture
def lab(socket_enabled: None) -> Iterator[NetLab]:
    """The two namespaces; removed afterwards."""
    with NetLab() as made:
        yield made


def _contact_host(kam: Kamailio) -> list[str]:
    return [c.split("@", 1)[1].split(":", 1)[0] for c in kam.contacts(NUMBER)]


def _credentialed(kam: Kamailio) -> list[tuple[bool, int]]:
    return [(a.with_credentials, a.code) for a in kam.register_attempts()]


async def _wait_attempts(kam: Kamailio, count: int) -> None:
    """Kamailio logs a REGISTER after answering it: wait until `count` are in its log."""
    deadline = time.monotonic() + 5
    while len(kam.register_attempts()) < count and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # a log file to poll: nothing to await


def _call_from_proxy(lab: NetLab, sipp, kam: Kamailio, monkeypatch) -> None:
    """A SIPp caller in the proxy's namespace calls the line through the stand-in."""
    monkeypatch.setattr(kpn_devtools.sipp, "orphan_guard", lambda: list(lab.proxy.prefix))
    sipp.call_line(kam, caller="+31612345678", ring_seconds=3.0)


async def test_booted_without_dns_registers_later_and_takes_calls(
    lab: NetLab, sipp, line_factory: LineFactory, monkeypatch
) -> None:
    """Item 8: the proxy's name does not resolve at boot: `unreachable`, no REGISTER; once
    it resolves the line registers by itself, its Contact names the interface that routes
    to the proxy (not the default route's), and an INVITE from the proxy rings (no 403)."""
    lab.set_dns(working=False)
    kam = lab.kamailio()
    settings = kam.line_settings(proxy_host=PROXY_NAME, keepalive_interval=KEEPALIVE)
    line = await line_factory(
        settings, registered=False, command=engine_command(lab.engine_prefix())
    )
    down = await line.wait_state(RegState.UNREACHABLE, timeout=15)
    assert down.code == 503
    assert down.reason == "the proxy's name does not resolve"
    assert kam.register_attempts() == []
    lab.set_dns(working=True)
    await line.wait_state(RegState.REGISTERED, timeout=30)
    assert _contact_host(kam) == [LINE_IP]  # not OTHER_IP (the default route's interface)
    await _wait_attempts(kam, 2)
    assert _credentialed(kam) == [(False, 401), (True, 200)]  # K8: once per challenge
    _call_from_proxy(lab, sipp, kam, monkeypatch)
    ringing = await line.wait_call(CallState.RINGING, timeout=10)
    assert ringing.caller.number == "+31612345678"
    assert not [e for e in line.errors() if e.code == ErrorCode.REJECTED_SOURCE]


@pytest.mark.slow
async def test_a_dead_name_server_never_blocks_commands(
    lab: NetLab, line_factory: LineFactory
) -> None:
    """Item 8: every look-up waits for the resolver's time-outs (~10 s); `start` is
    answered at once and a ping during the look-up too; the attempt then fails
    `unreachable` (never a blocked engine the client gives up on)."""
    lab.set_dns(working=False)
    lab.dead_name_server()
    kam = lab.kamailio()
    settings = kam.line_settings(proxy_host=PROXY_NAME)
    began = time.monotonic()
    line = await line_factory(
        settings, registered=False, command=engine_command(lab.engine_prefix())
    )
    started = time.monotonic() - began
    assert started < 4.0, started  # engine start-up included; the look-up takes ~10 s
    for _ in range(3):
        ping = time.monotonic()
        await line.client.ping()
        assert time.monotonic() - ping < 0.5
        await asyncio.sleep(1.0)
    assert not [e for e in line.registrations() if e.state == RegState.UNREACHABLE]
    down = await line.wait_state(RegState.UNREACHABLE, timeout=40)
    assert down.code == 503
    assert time.monotonic() - began > 5.0  # it did wait for the name server, off the loop
    assert kam.register_attempts() == []


async def test_invite_from_the_proxys_network_is_refused_warned_and_counted(
    lab: NetLab, line_factory: LineFactory
) -> None:
    """Item 8: an INVITE from another address of the proxy's /16 is refused 403 like any
    stranger's, but reported as `rejected_proxy_network`, one event (and count) each."""
    kam = lab.kamailio()
    line = await line_factory(kam.line_settings(), command=engine_command(lab.engine_prefix()))
    port = int(kam.contacts(NUMBER)[0].rsplit(":", 1)[1].split(";")[0])
    lab.proxy.run(["ip", "addr", "add", "10.99.0.5/24", "dev", lab.proxy_if])
    sender = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('10.99.0.5',5060))\n"
        "s.settimeout(3)\n"
        "for n in (1,2):\n"
        " s.sendto(sys.argv[n].encode(),(sys.argv[3],int(sys.argv[4])))\n"
        " while not s.recv(65535).startswith(b'SIP/2.0 403'): pass\n"
        "print('403s')\n"
    )
    invites = [_invite(i, port) for i in (1, 2)]
    done = await asyncio.to_thread(
        lab.proxy.run, ["python3", "-c", sender, *invites, LINE_IP, str(port)]
    )
    assert done.stdout.strip() == "403s"
    refused = await line.wait(
        lambda e: isinstance(e, ErrorEvent) and "(2 so far)" in e.message, timeout=5
    )
    assert refused.code == ErrorCode.REJECTED_PROXY_NETWORK
    kinds = [e.code for e in line.errors()]
    assert kinds.count(ErrorCode.REJECTED_PROXY_NETWORK) == 2
    assert ErrorCode.REJECTED_SOURCE not in kinds
    assert not line.calls()  # never a call event (K16 safety)


def _invite(n: int, port: int) -> str:
    branch = f"z9hG4bK-lab-{n}"
    return (
        f"INVITE sip:{NUMBER}@{LINE_IP}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.99.0.5:5060;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:+31612345678@ims.imscore.net>;tag=lab{n}\r\n"
        f"To: <sip:{NUMBER}@ims.imscore.net>\r\n"
        f"Call-ID: lab-{n}@10.99.0.5\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:+31612345678@10.99.0.5:5060>\r\n"
        "Content-Length: 0\r\n\r\n"
    )


async def test_address_change_re_registers_and_leaves_one_binding(
    lab: NetLab, sipp, line_factory: LineFactory, monkeypatch
) -> None:
    """Item 9: the line's address changes; within one keep-alive period (K10, + the exchange)
    it is `registering`, then `registered` from the new address; the registrar (one that
    keeps every binding unless told) holds exactly one, at the new address; one
    credentialed REGISTER per challenge (K8); calls from the proxy still ring."""
    kam = lab.kamailio(keep_one_contact=False)
    settings = kam.line_settings(keepalive_interval=KEEPALIVE)
    line = await line_factory(settings, command=engine_command(lab.engine_prefix()))
    assert _contact_host(kam) == [LINE_IP]
    # The Contact the engine assumes when a 2xx lists none (linepath.note_registration).
    assert re.fullmatch(rf"sip:{re.escape(NUMBER)}@{LINE_IP}:\d+", kam.contacts(NUMBER)[0])
    await _wait_attempts(kam, 2)
    first = len(line.registrations())
    moved = time.monotonic()
    lab.move_line_address(NEW_LINE_IP)
    again = await line.wait(
        lambda e: isinstance(e, RegistrationEvent)
        and e.state == RegState.REGISTERING
        and line.registrations().index(e) >= first,
        timeout=KEEPALIVE + 2,
    )
    assert isinstance(again, RegistrationEvent)
    assert again.reason == "local address changed"
    back = await line.wait(
        lambda e: isinstance(e, RegistrationEvent)
        and e.state == RegState.REGISTERED
        and line.registrations().index(e) > first,
        timeout=10,
    )
    took = time.monotonic() - moved
    assert took <= KEEPALIVE + 5, took
    assert isinstance(back, RegistrationEvent)
    later = line.registrations()[first:]
    assert [e.state for e in later if not e.credentials_sent] == [
        RegState.REGISTERING,
        RegState.REGISTERED,
    ]
    assert _contact_host(kam) == [NEW_LINE_IP]  # exactly one binding: the old one removed
    await _wait_attempts(kam, 4)
    assert _credentialed(kam) == [(False, 401), (True, 200)] * 2
    assert kam.nonce_reuses() == 0
    _call_from_proxy(lab, sipp, kam, monkeypatch)
    await line.wait_call(CallState.RINGING, timeout=10)


def _registers(cap: Any) -> list[str]:
    """The REGISTERs the line sent, in order, as the proxy's side of the link saw them."""
    return [text for _, text in cap.sip() if text.startswith("REGISTER ")]


def _removals(register: str) -> list[str]:
    """The Contacts of `register` that remove a binding (expires=0)."""
    return [c for c in sip_headers(register, "Contact") if c.endswith(";expires=0")]


def _current(register: str) -> list[str]:
    """The Contacts of `register` that are no removal: the binding it makes or refreshes."""
    return [c for c in sip_headers(register, "Contact") if not c.endswith(";expires=0")]


async def test_address_change_removes_the_old_binding_once(
    lab: NetLab, capture, line_factory: LineFactory
) -> None:
    """Item 9, RFC 3261 §10.2.2: after an address move, the old Contact goes with expires=0 in
    the move's exchange only (its REGISTER and the credentialed one answering its challenge);
    the refreshes after it (K21, every GRANT / 2 s here) and the un-REGISTER at `stop` (K7)
    carry the current Contact alone.  Against the one-time-nonce stand-in: one credentialed
    REGISTER per `registered` (K8), no nonce used twice.  Seen on the proxy's side of the link."""
    grant = 4
    kam = lab.kamailio(keep_one_contact=False, expires=grant)
    cap = capture(iface=lab.proxy_if, bpf="udp port 5060", netns=lab.proxy.name)
    settings = kam.line_settings(keepalive_interval=KEEPALIVE)
    line = await line_factory(settings, command=engine_command(lab.engine_prefix()))
    first = len(line.registrations())
    lab.move_line_address(NEW_LINE_IP)
    await line.wait(
        lambda e: isinstance(e, RegistrationEvent)
        and e.state == RegState.REGISTERED
        and line.registrations().index(e) > first,
        timeout=KEEPALIVE + 5,
    )
    # The move's exchange and two refreshes after it (challenge and answer each), as the
    # capture has them (read from it, never counted at the event: tcpdump may lag).
    await asyncio.to_thread(
        cap.wait_for,
        lambda _: sum(f"@{NEW_LINE_IP}:" in _current(r)[0] for r in _registers(cap)) >= 6,
        3 * grant,
    )
    await line.client.stop()
    await asyncio.to_thread(
        cap.wait_for, lambda _: _registers(cap)[-1].count("Expires: 0") == 1, 5.0
    )
    registers = _registers(cap)
    old = [r for r in registers if f"@{LINE_IP}:" in _current(r)[0]]
    new = registers[len(old) :]
    removing = [r for r in new if _removals(r)]
    assert removing == new[:2], [sip_headers(r, "Contact") for r in new]  # the move's exchange
    for register in removing:
        assert [c.split("@", 1)[1].split(":", 1)[0] for c in _removals(register)] == [LINE_IP]
        assert [bool(sip_headers(r, "Authorization")) for r in removing] == [False, True]
    later = new[2:]
    assert len(later) >= 5, len(later)  # two refreshes (challenge + answer each), un-REGISTER
    for register in new:
        assert len(_current(register)) == 1
        assert f"@{NEW_LINE_IP}:" in _current(register)[0]
    assert not [r for r in later if _removals(r)], [sip_headers(r, "Contact") for r in later]
    assert "Expires: 0" in later[-1]  # the un-REGISTER
    registered = [e for e in line.registrations() if e.state == RegState.REGISTERED]
    credentialed = [a for a in kam.register_attempts() if a.with_credentials and a.code == 200]
    assert len(credentialed) == len(registered) + 1  # + the un-REGISTER's (K8: once each)
    assert kam.nonce_reuses() == 0
    # pjsip holds an account's REGISTER headers in its registration client: dropping the
    # removal takes a new client (a new Call-ID) once; every later REGISTER keeps that
    # one (RFC 3261 §10.2: one Call-ID, rising CSeq).
    call_ids = [sip_headers(r, "Call-ID")[0] for r in new]
    assert len(set(call_ids[:2])) == len(set(call_ids[2:])) == 1, call_ids


async def test_a_vanished_address_is_never_shown_registered(
    lab: NetLab, line_factory: LineFactory
) -> None:
    """Item 9: the line's address goes away and no other reaches the proxy (the default
    route leads nowhere): within one keep-alive period (K10) the line is `registering`,
    no longer `registered`, and it stays so while nothing answers."""
    kam = lab.kamailio()
    settings = kam.line_settings(keepalive_interval=KEEPALIVE)
    line = await line_factory(settings, command=engine_command(lab.engine_prefix()))
    first = len(line.registrations())
    gone = time.monotonic()
    lab.drop_line_address()
    again = await line.wait(
        lambda e: isinstance(e, RegistrationEvent)
        and e.state == RegState.REGISTERING
        and line.registrations().index(e) >= first,
        timeout=KEEPALIVE + 2,
    )
    assert time.monotonic() - gone <= KEEPALIVE + 2
    assert isinstance(again, RegistrationEvent)
    assert again.reason == "local address changed"
    await asyncio.sleep(3.0)
    later = [e.state for e in line.registrations()[first:]]
    assert RegState.REGISTERED not in later, later
