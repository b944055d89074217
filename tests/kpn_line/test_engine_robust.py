"""Hostile input, a killed engine, start/stop cycles, secrets in logs (K9)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time

import pytest

from custom_components.kpn_voip.kpn_line.client import EngineClient, EngineDiedError, EngineError
from custom_components.kpn_voip.kpn_line.commands import Start
from custom_components.kpn_voip.kpn_line.engine import IDLE_WAIT_MS
from custom_components.kpn_voip.kpn_line.profile import K1_DOMAIN
from custom_components.kpn_voip.kpn_line.protocol import CallState, RegState
from kpn_devtools.kamailio import TEST_ACCOUNT

from .conftest import LineFactory, Untyped, engine_command, engine_port, fd_count, send_udp

pytestmark = pytest.mark.timeout(120)


def _hostile_messages(port: int) -> list[bytes]:
    aor = f"sip:{TEST_ACCOUNT.number}@{K1_DOMAIN}"
    head = (
        f"INVITE {aor} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-h{{n}}\r\n"
        f"From: <sip:x@{K1_DOMAIN}>;tag=h{{n}}\r\nTo: <{aor}>\r\nCall-ID: hostile-{{n}}\r\n"
        "CSeq: 1 INVITE\r\nContact: <sip:x@127.0.0.1:9>\r\nMax-Forwards: 70\r\n"
    )
    return [
        b"\x00\xff garbage \x01\x02" * 50,
        b"INVITE\r\n\r\n",
        b"SIP/2.0 200 OK\r\n\r\n",
        (head.format(n=1) + "Content-Length: 5000\r\n\r\nv=0\r\n").encode(),  # too short body
        (head.format(n=2) + "Content-Length: -3\r\n\r\n").encode(),
        (head.format(n=3) + "Content-Length: abc\r\n\r\n").encode(),
        (head.format(n=4) + "From: broken <<<\r\nVia: ;;;\r\n\r\n").encode(),
        (head.format(n=5) + "X-Big: " + "A" * 60000 + "\r\nContent-Length: 0\r\n\r\n").encode(),
        (
            head.format(n=6) + "Content-Type: application/sdp\r\nContent-Length: 30\r\n\r\n"
            "m=audio 99999999 RTP/AVP 8 0 9\r\n"
        ).encode(),
        ("OPTIONS sip:x SIP/2.0\r\n" + "Via: x\r\n" * 500 + "\r\n").encode(),
        b"FOO sip:x SIP/2.0\r\nCall-ID: a\r\n\r\n",
    ]


async def test_hostile_sip_neither_crashes_nor_hangs(
    kamailio, sipp, line_factory: LineFactory
) -> None:
    """Garbled, huge, wrong Content-Length, spoofed: the engine answers ping and works after."""
    line = await line_factory(kamailio.line_settings())
    port = engine_port(line)
    for data in _hostile_messages(port):  # from an address that is not the proxy
        send_udp(data, ("127.0.0.1", port), source="127.0.0.3")
    await asyncio.sleep(0.5)
    await line.client.ping()
    assert not line.calls()
    assert len(line.errors()) == 1  # reported once per address
    for data in _hostile_messages(port):  # from the proxy's address: parsed as far as it goes
        send_udp(data, ("127.0.0.1", port), source="127.0.0.1")
    await asyncio.sleep(0.5)
    await line.client.ping()
    assert line.client.running
    await line.client.hangup(None)  # whatever rang from those ends
    # it still registers (a fresh start) and still takes a call
    before = len(kamailio.register_attempts())
    await line.client._request(Start(settings=kamailio.line_settings()))
    await line.wait(
        lambda e: getattr(e, "state", None) == RegState.REGISTERED and e.time > time.time() - 2
    )
    assert len(kamailio.register_attempts()) > before
    run = sipp.call_line(kamailio, ring_seconds=0.5)
    await line.wait_call(CallState.RINGING)
    run.wait(10)
    assert not line.exits


async def test_sigkill_mid_call_detected_within_2s(
    kamailio_factory, sipp, line_factory: LineFactory
) -> None:
    """SIGKILL during a call: on_exit within 2 s, commands fail at once, stop() is quick."""
    callee = sipp.uas(answer_after=0.2)
    kam = kamailio_factory(forward_to=callee.address)
    line = await line_factory(kam.line_settings(), ping_interval=60)
    call_id = await line.client.dial("0201234567")
    await line.wait_call(CallState.ANSWERED, call_id)
    pid = line.client.pid
    assert pid is not None
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    await line.wait_exit(5)
    detected = time.monotonic() - killed
    assert line.exits, "on_exit was not called"
    assert detected < 2.0
    returncode, reason = line.exits[0]
    assert returncode == -signal.SIGKILL
    assert reason
    assert not line.client.running
    with pytest.raises(EngineDiedError):
        await line.client.ping()
    started = time.monotonic()
    await line.client.stop()
    assert time.monotonic() - started < 1.0
    assert len(line.exits) == 1


async def test_sigterm_stops_an_idle_engine_at_once(kamailio, line_factory: LineFactory) -> None:
    """SIGTERM to a registered, idle engine: it un-REGISTERs and exits 0 well before its
    longest idle wait (engine.IDLE_WAIT_MS, 5 s) is over: the signal ends the wait."""
    line = await line_factory(kamailio.line_settings(), ping_interval=0)
    pid = line.client.pid
    assert pid is not None
    assert kamailio.contacts(TEST_ACCOUNT.number)
    await asyncio.sleep(0.5)  # the engine is in its idle wait now
    sent = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    await line.wait_exit(IDLE_WAIT_MS / 1000 + 5)
    took = time.monotonic() - sent
    assert line.exits == [(0, line.exits[0][1])]
    assert took < 2.0, f"SIGTERM took {took:.2f} s"
    assert not kamailio.contacts(TEST_ACCOUNT.number)  # the binding went with it


async def test_hung_engine_detected_by_ping(kamailio, line_factory: LineFactory) -> None:
    """An engine that stops answering (SIGSTOP) is reported hung and killed."""
    line = await line_factory(kamailio.line_settings(), ping_interval=0.3, reply_timeout=0.5)
    pid = line.client.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        await line.wait_exit(5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    assert line.exits
    assert "ping" in line.exits[0][1]
    assert not line.client.running


async def test_start_stop_cycles_leak_nothing(kamailio) -> None:
    """20 start/register/stop cycles: no fd left in this process, every engine exits 0."""
    settings = kamailio.line_settings()

    async def cycle() -> int | None:
        client = EngineClient(on_event=lambda e: None, ping_interval=0)
        registered = asyncio.Event()
        client._on_event = (
            lambda e: registered.set() if getattr(e, "state", None) == RegState.REGISTERED else None
        )
        await client.start(settings)
        await asyncio.wait_for(registered.wait(), 5)
        proc = client._proc
        await client.stop()
        assert proc is not None
        return proc.returncode

    assert await cycle() == 0  # warm-up: lazily created loop resources
    before = fd_count()
    codes = [await cycle() for _ in range(20)]
    assert codes == [0] * 20
    assert fd_count() == before
    kamailio.wait_unregistered(TEST_ACCOUNT.number, timeout=3)


async def test_password_never_in_logs_events_or_errors(
    kamailio_factory, caplog: pytest.LogCaptureFixture, line_factory: LineFactory
) -> None:
    """K9 with pjsip logging at level 6: the password appears nowhere."""
    kam = kamailio_factory(auth_fail_code=401, lockout_seconds=0)
    caplog.set_level(logging.DEBUG, logger="custom_components.kpn_voip.kpn_line.client")
    password = TEST_ACCOUNT.password
    line = await line_factory(kam.line_settings(), command=engine_command(log_level=6))
    await line.client.stop()
    bad = await line_factory(
        kam.line_settings(password="Secret-Wrong-9"),
        command=engine_command(log_level=6),
        registered=False,
    )
    await bad.wait_state(RegState.AUTH_FAILED)
    with pytest.raises(EngineError) as err:
        await bad.client._request(
            Untyped(
                "start",
                settings=kam.line_settings(password="Secret-Wrong-9").to_wire() | {"number": "x"},
            )
        )
    await bad.client.stop()
    text = caplog.text
    assert "REGISTER sip:" in text  # pjsip's message log really was on
    assert "Authorization: Digest" in text
    for secret in (password, "Secret-Wrong-9"):
        assert secret not in text
        assert secret not in repr(line.events) + repr(bad.events)
        assert secret not in str(err.value)


async def test_allowed_sources_admit_invites_from_them(kamailio, line_factory: LineFactory) -> None:
    """allowed_sources (networks and host names) admit INVITEs; other addresses stay refused."""
    settings = kamailio.line_settings(allowed_sources=("127.0.0.3/32", "localhost"))
    line = await line_factory(settings)
    port = engine_port(line)
    aor = f"sip:{TEST_ACCOUNT.number}@{K1_DOMAIN}"
    for n, source in enumerate(("127.0.0.3", "127.0.0.4")):
        invite = (
            f"INVITE {aor} SIP/2.0\r\nVia: SIP/2.0/UDP {source}:9;branch=z9hG4bK-a{n}\r\n"
            f'From: "Allowed" <sip:+31612345678@{K1_DOMAIN}>;tag=a{n}\r\nTo: <{aor}>\r\n'
            f"Call-ID: allowed-{n}\r\nCSeq: 1 INVITE\r\nContact: <sip:x@{source}:9>\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        send_udp(invite.encode(), ("127.0.0.1", port), source=source)
    ringing = await line.wait_call(CallState.RINGING)
    assert (ringing.caller.number, ringing.caller.name) == ("+31612345678", "Allowed")
    await line.wait(lambda e: getattr(e, "code", None) == "rejected_source")
    assert [e.message for e in line.errors()] == [
        "INVITE from 127.0.0.4 refused (403): not the proxy"
    ]
    assert len(line.calls()) == 1
    assert await line.client.hangup(None) == 1
    await line.wait_call(CallState.ENDED, ringing.call_id)
