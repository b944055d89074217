"""Registration on the wire, against the Kamailio stand-in and SIPp registrars.

K1-K4, K7-K10, K18, K21, K23.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from custom_components.kpn_voip.kpn_line.client import EngineError
from custom_components.kpn_voip.kpn_line.commands import Start
from custom_components.kpn_voip.kpn_line.profile import K1_DOMAIN, K21_REGISTER_EXPIRES
from custom_components.kpn_voip.kpn_line.protocol import RegState
from kpn_devtools.kamailio import TEST_ACCOUNT

from .conftest import LineFactory, engine_sockets, registrar_settings, sip_headers

pytestmark = pytest.mark.timeout(90)

AOR = f"sip:{TEST_ACCOUNT.number}@{K1_DOMAIN}"


async def test_register_headers_on_the_wire(kamailio, capture, line_factory: LineFactory) -> None:
    """K1, K3, K4, K18, K21: From/To = the AOR, Expires 3600, digest user = SIP user name, UDP.
    K6: the display name is local naming only: nowhere in the REGISTERs."""
    cap = capture(bpf=f"udp port {kamailio.port}")
    line = await line_factory(kamailio.line_settings(display_name="Thuis"))
    event = await line.wait_state(RegState.REGISTERED)
    assert event.code == 200
    assert event.expires == K21_REGISTER_EXPIRES
    assert event.next_attempt is not None
    assert (
        event.next_attempt > time.time() + K21_REGISTER_EXPIRES / 2 - 5
    )  # refreshed before expiry
    assert kamailio.contacts(TEST_ACCOUNT.number)
    registers = []
    for packet, text in cap.wait_for(lambda p: len(p) >= 4) and cap.sip():
        if text.startswith("REGISTER "):
            registers.append((packet, text))
    assert len(registers) == 2  # one without, exactly one with credentials (K8)
    first, second = registers[0][1], registers[1][1]
    assert first.startswith(f"REGISTER sip:{K1_DOMAIN} SIP/2.0")
    for text in (first, second):
        assert AOR in sip_headers(text, "From")[0]
        assert sip_headers(text, "From")[0].startswith(f"<{AOR}>")  # K6: no display name
        assert "Thuis" not in text
        assert f"<{AOR}>" in sip_headers(text, "To")[0]
        assert sip_headers(text, "Expires") == [str(K21_REGISTER_EXPIRES)]
        assert "UDP" in sip_headers(text, "Via")[0]
        assert (
            not sip_headers(text, "Supported")
            or "outbound" not in sip_headers(text, "Supported")[0]
        )
    assert not sip_headers(first, "Authorization")
    auth = sip_headers(second, "Authorization")
    assert len(auth) == 1
    assert f'username="{TEST_ACCOUNT.username}"' in auth[0]
    assert f'realm="{K1_DOMAIN}"' in auth[0]
    assert f'uri="sip:{K1_DOMAIN}"' in auth[0]
    assert TEST_ACCOUNT.password not in second  # K9
    attempts = kamailio.register_attempts()
    assert [(a.with_credentials, a.code) for a in attempts] == [(False, 401), (True, 200)]
    sockets = engine_sockets(line)  # K18: UDP only, no TCP transport at all
    assert sockets["udp"]
    assert sockets["tcp"] == sockets["tcp6"] == []


async def test_crlf_keepalive_and_no_options(kamailio, capture, line_factory: LineFactory) -> None:
    """K10: CRLF keep-alives keep the NAT binding; K23: never SIP OPTIONS."""
    cap = capture(bpf=f"udp port {kamailio.port}")
    # 1 s is taken as 2 s: pjsua floods the proxy with CRLFs at 1 s
    await line_factory(kamailio.line_settings(keepalive_interval=1))
    await asyncio.sleep(4.6)
    to_proxy = [p for p in cap.packets() if p.dport == kamailio.port]
    keepalives = [p for p in to_proxy if p.payload in (b"\r\n\r\n", b"\r\n")]
    # pjsua sends a little before each interval is over (measured: 1 s early)
    assert 2 <= len(keepalives) <= 5, len(keepalives)
    gaps = [b.time - a.time for a, b in itertools.pairwise(keepalives)]
    assert all(0.8 < gap < 2.5 for gap in gaps), gaps
    texts = [p.payload.decode(errors="replace") for p in to_proxy]
    assert not [t for t in texts if t.startswith("OPTIONS")]
    # nothing goes to a STUN server or anywhere else (K10)
    assert {p.dst for p in to_proxy} == {"127.0.0.1"}


async def test_unregister_on_stop(kamailio, line_factory: LineFactory) -> None:
    """A clean stop removes the registration (K7: the line is free for another device)."""
    line = await line_factory(kamailio.line_settings())
    assert kamailio.contacts(TEST_ACCOUNT.number)
    await line.client.stop()
    kamailio.wait_unregistered(TEST_ACCOUNT.number, timeout=3)
    assert line.registrations()[-1].state == RegState.STOPPED


@pytest.mark.parametrize("fail_code", [403, 401])
async def test_wrong_password_exactly_one_credentialed_register(
    kamailio_factory, line_factory: LineFactory, fail_code: int
) -> None:
    """K8: after a failed credentialed REGISTER nothing is sent again (403 or a new 401)."""
    kam = kamailio_factory(auth_fail_code=fail_code)
    settings = kam.line_settings(password="wrong-password")
    line = await line_factory(settings, registered=False)
    event = await line.wait_state(RegState.AUTH_FAILED)
    assert event.code == fail_code
    assert event.next_attempt is None
    await asyncio.sleep(2.0)
    attempts = kam.register_attempts()
    assert [a.with_credentials for a in attempts] == [False, True], attempts
    # the same credentials again (a restart of the line) are refused without a REGISTER
    with pytest.raises(EngineError) as err:
        await line.client._request(Start(settings=settings))
    assert err.value.code == "locked_out"
    await asyncio.sleep(0.3)
    assert len(kam.register_attempts()) == 2


async def test_fresh_401_registrar_gets_one_credentialed_register(
    sipp, line_factory: LineFactory
) -> None:
    """K8 against a registrar that answers every REGISTER with a fresh challenge.

    pjsua on its own re-sends up to three credentialed REGISTERs here.
    """
    registrar = sipp.registrar("always_401")
    settings = registrar_settings(registrar.port)
    line = await line_factory(settings, registered=False)
    await line.wait_state(RegState.AUTH_FAILED)
    await asyncio.sleep(2.0)
    registers = registrar.received("REGISTER")
    assert len(registers) == 2, [m.text[:60] for m in registers]
    with_creds = [m for m in registers if m.header("Authorization")]
    assert len(with_creds) == 1
    assert TEST_ACCOUNT.password not in with_creds[0].text


async def test_locked_account_reports_locked_out(kamailio, sipp, line_factory: LineFactory) -> None:
    """K8: a platform that refuses even the first REGISTER (403) is a locked line, not retried."""
    run = sipp.register(kamailio, password="wrong-password")  # another device locks the line
    assert run.final_code("REGISTER") == 403
    before = len(kamailio.register_attempts())
    line = await line_factory(kamailio.line_settings(), registered=False)
    event = await line.wait_state(RegState.LOCKED_OUT)
    assert event.code == 403
    assert event.next_attempt is None
    await asyncio.sleep(1.0)
    mine = kamailio.register_attempts()[before:]
    assert [a.with_credentials for a in mine] == [False]


async def test_423_honoured_once_with_min_expires(sipp, line_factory: LineFactory) -> None:
    """K21 + 423: the next REGISTER asks for the Min-Expires the registrar named."""
    registrar = sipp.registrar("423_then_200", min_expires=7200)
    settings = registrar_settings(registrar.port)
    line = await line_factory(settings, registered=False)
    await line.wait(
        lambda e: getattr(e, "state", None) in (RegState.REGISTERED, RegState.UNREACHABLE)
    )
    registers = registrar.received("REGISTER")
    assert registers[0].header("Expires") == ["3600"]
    assert registers[1].header("Expires") == ["7200"]
    assert not [m for m in registers if m.header("Authorization")]


async def test_503_backs_off_with_jitter_and_retries(sipp, line_factory: LineFactory) -> None:
    """Network-type failures: unreachable with next_attempt, then a retry (bounded back-off)."""
    registrar = sipp.registrar("503_then_200")
    settings = registrar_settings(registrar.port)
    line = await line_factory(settings, registered=False)
    event = await line.wait_state(RegState.UNREACHABLE)
    assert event.code == 503
    assert event.next_attempt is not None
    delay = event.next_attempt - event.time
    assert 1.5 <= delay <= 2.5  # first back-off step: 2 s +-20 %
    await asyncio.sleep(delay + 1.0)
    registers = registrar.received("REGISTER")
    assert len(registers) >= 2
    assert not [m for m in registers if m.header("Authorization")]


@pytest.mark.slow
async def test_recovers_after_registrar_restart(
    kamailio_factory, line_factory: LineFactory
) -> None:
    """The stand-in loses every registration on restart; the line registers again by itself.

    The stand-in grants 20 s, so the refresh (at half the grant) comes after 10 s and the
    next one only after the checks below.
    """
    kam = kamailio_factory(expires=20, lockout_seconds=0)
    line = await line_factory(kam.line_settings(register_expires=60))
    assert line.registrations()[-1].expires == 20
    kam.restart()
    assert not kam.contacts(TEST_ACCOUNT.number)
    await asyncio.to_thread(kam.wait_registered, TEST_ACCOUNT.number, 20)
    assert line.client.running
    # the refresh (K21) repeated both steps: a fresh challenge, then one credentialed REGISTER.
    # Kamailio writes its log line after saving the contact: give the line a moment to land.
    deadline = time.monotonic() + 5
    while len(kam.register_attempts()) < 4 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # polling Kamailio's log file: nothing to wait on
    pattern = [(a.with_credentials, a.code) for a in kam.register_attempts()]
    assert pattern == [(False, 401), (True, 200)] * 2


async def test_probe_login(kamailio_factory) -> None:
    """The config flow's login test: one attempt, a terminal state, engine gone afterwards."""
    from custom_components.kpn_voip.kpn_line.client import probe_login

    kam = kamailio_factory()
    ok = await probe_login(kam.line_settings())
    assert ok.state == RegState.REGISTERED
    kam.wait_unregistered(TEST_ACCOUNT.number, timeout=3)
    bad = await probe_login(kam.line_settings(password="wrong-password"))
    assert bad.state == RegState.AUTH_FAILED
    creds = [a for a in kam.register_attempts() if a.with_credentials]
    assert [a.code for a in creds] == [200, 200, 403]  # register, unregister, the wrong one
    down = await probe_login(kam.line_settings(proxy_port=9), timeout=3)
    assert down.state == RegState.UNREACHABLE
