"""The KPN stand-in (Kamailio) behaves like KPN's platform (K1, K7, K8, K21)."""

from __future__ import annotations

from collections.abc import Callable
import time

import pytest

from kpn_devtools.capture import Capture
from kpn_devtools.kamailio import TEST_ACCOUNT, Account, Kamailio, RegisterAttempt
from kpn_devtools.sipp import Sipp, SippRun

pytestmark = pytest.mark.peers

NUMBER = TEST_ACCOUNT.number


def _codes(attempts: list[RegisterAttempt]) -> list[tuple[bool, int]]:
    return [(a.with_credentials, a.code) for a in attempts]


def test_register_with_digest_auth_is_accepted_and_logged(kamailio: Kamailio, sipp: Sipp) -> None:
    run = sipp.register(kamailio)
    assert run.responses("REGISTER") == [401, 200], run.errors()
    challenge = next(m for m in run.messages() if m.code == 401)
    assert 'realm="ims.imscore.net"' in challenge.header("WWW-Authenticate")[0]  # K1
    ok = next(m for m in run.messages() if m.code == 200)
    assert "expires=3600" in ok.header("Contact")[0]  # K21
    attempts = kamailio.register_attempts()
    assert _codes(attempts) == [(False, 401), (True, 200)]
    assert attempts[1].username == TEST_ACCOUNT.username
    assert attempts[0].username == attempts[0].number == NUMBER
    assert kamailio.register_attempts(TEST_ACCOUNT.username) == attempts[1:]
    assert abs(attempts[1].time - time.time()) < 30
    contact = kamailio.wait_registered(NUMBER)
    assert contact.startswith(f"sip:{NUMBER}@127.0.0.1:{run.port}")
    assert TEST_ACCOUNT.password not in kamailio.log_text()  # K9


def test_short_expires_is_raised_to_3600(kamailio: Kamailio, sipp: Sipp) -> None:
    run = sipp.register(kamailio, expires=300)
    ok = next(m for m in run.messages() if m.code == 200)
    assert "expires=3600" in ok.header("Contact")[0]  # K21


def test_wrong_password_is_403_then_locked_out(
    kamailio_factory: Callable[..., Kamailio], sipp: Sipp
) -> None:
    kam = kamailio_factory(lockout_seconds=3)
    bad = sipp.register(kam, password="wrong-password")
    assert bad.final_code("REGISTER") == 403
    started = time.monotonic()
    # K8: during the lockout even the right password is refused, without a challenge.
    locked = sipp.register(kam)
    assert locked.responses("REGISTER") == [403]
    assert kam.contacts(NUMBER) == []
    time.sleep(max(0.0, 3.2 - (time.monotonic() - started)))
    good = sipp.register(kam)
    assert good.final_code("REGISTER") == 200
    assert _codes(kam.register_attempts(NUMBER)) == [
        (False, 401), (True, 403), (False, 403), (False, 401), (True, 200),
    ]  # fmt: skip


def test_lockout_off_and_401_for_a_wrong_password(
    kamailio_factory: Callable[..., Kamailio], sipp: Sipp
) -> None:
    kam = kamailio_factory(lockout_seconds=0, auth_fail_code=401)
    bad = sipp.register(kam, password="wrong-password")
    assert bad.responses("REGISTER") == [401, 401]
    assert sipp.register(kam).final_code("REGISTER") == 200


def test_unknown_user_is_refused(kamailio: Kamailio, sipp: Sipp) -> None:
    stranger = Account(number=NUMBER, username="99999999@ims.imscore.net", password="x")
    assert sipp.register(kamailio, stranger).final_code("REGISTER") == 403


def test_second_registration_takes_the_line(kamailio: Kamailio, sipp: Sipp) -> None:
    first = sipp.register(kamailio)
    assert kamailio.wait_registered(NUMBER).split(":")[2].startswith(str(first.port))
    second = sipp.register(kamailio)
    assert second.final_code("REGISTER") == 200
    contacts = kamailio.contacts(NUMBER)
    assert len(contacts) == 1  # K7
    assert f"127.0.0.1:{second.port}" in contacts[0]


def test_restart_keeps_port_and_forgets_registrations(kamailio: Kamailio, sipp: Sipp) -> None:
    sipp.register(kamailio)
    port = kamailio.port
    kamailio.restart()
    assert kamailio.port == port
    assert kamailio.contacts(NUMBER) == []
    assert sipp.register(kamailio).final_code("REGISTER") == 200


def test_call_into_the_line_reaches_the_registered_phone(kamailio: Kamailio, sipp: Sipp) -> None:
    line = sipp.line(kamailio, answer_after=None)
    pai = ["sip:+31612345678@ims.imscore.net;user=phone", "tel:+31612345678"]
    call = sipp.call_line(kamailio, pai=pai, name="Jan", ring_seconds=1.0)
    assert call.wait(20) == 0, call.errors()
    assert call.responses("INVITE")[-1] == 487  # rang, then cancelled
    [invite] = line.invites()
    first_via = invite.split("\nVia: ", 1)[1].split("\n", 1)[0]
    assert f"127.0.0.1:{kamailio.port}" in first_via  # from the proxy itself
    assert "Record-Route: <sip:127.0.0.1:" in invite
    assert '"Jan" <sip:+31612345678@ims.imscore.net;user=phone>' in invite
    assert "P-Asserted-Identity: <sip:+31612345678@ims.imscore.net;user=phone>" in invite
    assert "P-Asserted-Identity: <tel:+31612345678>" in invite
    assert [m.method for m in line.received() if m.method] == ["INVITE", "CANCEL", "ACK"]


def _media_ports(run: SippRun) -> range:
    """The RTP ports a SIPp run may use (its -min_rtp_port .. -max_rtp_port)."""
    args = list(run.args)
    low = int(args[args.index("-min_rtp_port") + 1])
    high = int(args[args.index("-max_rtp_port") + 1])
    return range(low, high + 1)


def test_anonymous_call_answered_and_hung_up(
    kamailio: Kamailio, sipp: Sipp, capture: Callable[..., Capture]
) -> None:
    line = sipp.line(kamailio, answer_after=0.2)
    cap = capture(bpf="udp")
    call = sipp.call_line(kamailio, privacy=True, answer_expected=True, talk_seconds=0.5)
    assert call.wait(20) == 0, call.errors()
    assert call.answered
    # The caller played G.711 a-law RTP (payload type 8) and the callee echoed it.
    # Only these two SIPps' media ports: the loopback capture also sees the RTP of
    # whatever else runs on this machine (another test's engine on 16384 failed it).
    ours = {port for run in (line, call) for port in _media_ports(run)}
    rtp = [
        p
        for p in cap.packets()
        if len(p.payload) >= 12 and p.payload[1] & 0x7F == 8 and {p.sport, p.dport} <= ours
    ]
    assert len({(p.sport, p.dport) for p in rtp}) == 2, "RTP in both directions"
    [invite] = line.invites()
    assert "Privacy: id" in invite
    assert '"Anonymous" <sip:anonymous@anonymous.invalid>' in invite
    assert [m.method for m in line.received() if m.method] == ["INVITE", "ACK", "BYE"]


def test_call_to_an_unregistered_line_fails(kamailio: Kamailio, sipp: Sipp) -> None:
    call = sipp.call_line(kamailio, ring_seconds=1.0)
    call.wait(20)
    assert call.final_code() == 480


def test_call_from_the_line_is_challenged_and_forwarded(
    kamailio_factory: Callable[..., Kamailio], sipp: Sipp
) -> None:
    callee = sipp.uas(answer_after=0.1)
    kam = kamailio_factory(forward_to=callee.address)
    call = sipp.call_out(kam, "*31*0612345678", talk_seconds=0.2)
    assert call.wait(20) == 0, call.errors()
    assert call.responses("INVITE")[0:1] == [407]
    assert call.answered
    [invite] = callee.wait_invites(1)
    assert invite.startswith("INVITE sip:*31*0612345678@ims.imscore.net SIP/2.0")  # K25, K26
    assert "Proxy-Authorization" not in invite


def test_call_from_the_line_with_a_wrong_password_is_refused(
    kamailio_factory: Callable[..., Kamailio], sipp: Sipp
) -> None:
    callee = sipp.uas()
    kam = kamailio_factory(forward_to=callee.address)
    call = sipp.call_out(kam, "0612345678", password="wrong-password")
    call.wait(20)
    assert call.final_code() == 403
    assert callee.invites() == []


def test_garbage_does_not_disturb_the_stand_in(kamailio: Kamailio, sipp: Sipp) -> None:
    sipp.send_raw(kamailio.host, kamailio.port, b"\x00\xffNOT SIP AT ALL\r\n\r\n")
    sipp.send_raw(kamailio.host, kamailio.port, b"INVITE sip:x SIP/2.0\r\nVia: broken\r\n\r\n")
    reply = sipp.send_raw(
        kamailio.host,
        kamailio.port,
        b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bK1\r\n"
        b"From: <sip:a@b>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: x1\r\nCSeq: 1 OPTIONS\r\n"
        b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        wait_reply=2.0,
    )
    assert reply is not None
    assert reply.startswith(b"SIP/2.0 200")
    assert kamailio.running
    assert sipp.register(kamailio).final_code("REGISTER") == 200


async def test_async_helpers_do_not_block(kamailio: Kamailio, sipp: Sipp) -> None:
    line = sipp.line(kamailio, answer_after=None)
    contact = await kamailio.async_wait_registered(NUMBER, timeout=5)
    assert f":{line.port}" in contact
    call = sipp.call_line(kamailio, ring_seconds=0.5)
    [invite] = await line.async_wait_invites(1)
    assert invite.startswith("INVITE sip:+31201234567@127.0.0.1:")
    assert await call.async_wait(20) == 0, call.errors()


def test_line_settings_point_at_the_stand_in(kamailio: Kamailio) -> None:
    settings = kamailio.line_settings(display_name="Home")
    assert (settings.proxy_host, settings.proxy_port) == ("127.0.0.1", kamailio.port)
    assert (settings.number, settings.username) == (NUMBER, TEST_ACCOUNT.username)
    assert settings.password == TEST_ACCOUNT.password
    assert settings.display_name == "Home"


def test_unregister_removes_the_contact(kamailio: Kamailio, sipp: Sipp) -> None:
    first = sipp.register(kamailio)
    kamailio.wait_registered(NUMBER)
    gone = sipp.register(kamailio, port=first.port, expires=0)
    assert gone.final_code("REGISTER") == 200
    kamailio.wait_unregistered(NUMBER, timeout=2)


def test_one_worker_serves_alone(kamailio_factory: Callable[..., Kamailio], sipp: Sipp) -> None:
    """workers=1: one UDP receiver (its log lines never interleave), and it serves."""
    kam = kamailio_factory(workers=1)
    processes = kam.rpc("core.psx")
    receivers = [p for p in processes if p["DSC"].startswith("udp receiver")]
    assert len(receivers) == 1, processes
    run = sipp.register(kam)
    assert run.responses("REGISTER") == [401, 200], run.errors()
    assert _codes(kam.register_attempts()) == [(False, 401), (True, 200)]
    with pytest.raises(ValueError, match="workers"):
        Kamailio(workers=0)
