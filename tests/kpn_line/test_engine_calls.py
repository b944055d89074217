"""Calls on the wire: into the line via the stand-in, out of it to a SIPp callee.

K12-K17, K19, K20, K24-K26.
"""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from custom_components.kpn_voip.kpn_line.commands import Answer
from custom_components.kpn_voip.kpn_line.engine import EARLY_REFUSED
from custom_components.kpn_voip.kpn_line.profile import (
    K1_DOMAIN,
    K19_RTP_PORT_MAX,
    K19_RTP_PORT_MIN,
)
from custom_components.kpn_voip.kpn_line.protocol import (
    CallEvent,
    CallState,
    Direction,
    EndReason,
    RegState,
)
from kpn_devtools.kamailio import TEST_ACCOUNT
from kpn_devtools.sipp import SipMessage, SippUas

from .conftest import T38_REINVITE_UAS, LineFactory, expect_error, sip_body, sip_headers

pytestmark = pytest.mark.timeout(90)


def _received(msgs: list[SipMessage], method: str) -> int:
    return sum(1 for m in msgs if m.direction == "received" and m.method == method)


async def test_incoming_call_rings_with_caller_id_then_missed(
    kamailio, sipp, line_factory: LineFactory
) -> None:
    """K16: number and name from P-Asserted-Identity (sip: and tel:), 180 only.

    The caller's CANCEL makes it a missed call.
    """
    line = await line_factory(kamailio.line_settings())
    run = sipp.call_line(
        kamailio,
        caller="+31612345678",
        name="Jan Jansen",
        pai=['"Jan Jansen" <sip:+31612345678@ims.imscore.net;user=phone>', "<tel:+31612345678>"],
        ring_seconds=1.5,
    )
    ringing = await line.wait_call(CallState.RINGING)
    assert ringing.direction == Direction.INCOMING
    assert ringing.caller.number == "+31612345678"
    assert ringing.caller.national == "0612345678"
    assert ringing.caller.name == "Jan Jansen"
    assert not ringing.caller.anonymous
    assert not ringing.waiting
    ended = await line.wait_call(CallState.ENDED, ringing.call_id, timeout=10)
    assert ended.missed
    assert ended.code == 487
    assert ended.duration == 0
    run.wait(10)
    codes = run.responses("INVITE")
    assert 180 in codes
    assert 200 not in codes  # never answered by itself


async def test_an_invite_pjsua_refuses_by_itself_ends_after_ringing(
    kamailio, sipp, line_factory: LineFactory
) -> None:
    """Issue 11: an INVITE rings as it arrives (engine.ring_early), before pjsua's work.
    One that pjsua then answers by itself (here 420 Bad Extension, RFC 3261 §8.2.2.3:
    a Require it lacks) is never left ringing: `ended`, missed, no 180; the line
    takes the next call as usual."""
    line = await line_factory(kamailio.line_settings())
    run = sipp.call_line(
        kamailio, ring_seconds=1.0, extra_headers=["Require: kpn-no-such-extension"]
    )
    ringing = await line.wait_call(CallState.RINGING)
    ended = await line.wait_call(CallState.ENDED, ringing.call_id)
    assert ended.reason == EARLY_REFUSED
    assert ended.missed
    assert ended.duration == 0
    run.wait(10)
    codes = run.responses("INVITE")
    assert 420 in codes
    assert 180 not in codes
    again = sipp.call_line(kamailio, caller="+31612345679", ring_seconds=1.0)
    second = await line.wait(
        lambda e: isinstance(e, CallEvent)
        and e.state == CallState.RINGING
        and e.caller.number == "+31612345679"
    )
    assert isinstance(second, CallEvent)
    assert second.call_id != ringing.call_id
    assert not second.waiting  # the refused INVITE left no call behind
    await line.wait_call(CallState.ENDED, second.call_id, timeout=10)
    again.wait(10)
    assert 180 in again.responses("INVITE")


async def test_anonymous_call(kamailio, sipp, line_factory: LineFactory) -> None:
    """K16: Privacy: id and anonymous@anonymous.invalid -> anonymous, no number."""
    line = await line_factory(kamailio.line_settings())
    run = sipp.call_line(kamailio, privacy=True, pai=[], ring_seconds=1.0)
    ringing = await line.wait_call(CallState.RINGING)
    assert ringing.caller.anonymous
    assert ringing.caller.number is None
    await line.wait_call(CallState.ENDED, ringing.call_id, timeout=10)
    run.wait(10)


async def test_call_waiting_second_call_reported_first_untouched(
    kamailio, sipp, line_factory: LineFactory
) -> None:
    """K24: a second call while one rings gets its own event with waiting=true."""
    line = await line_factory(kamailio.line_settings())
    first = sipp.call_line(kamailio, caller="+31611111111", ring_seconds=4.0)
    one = await line.wait_call(CallState.RINGING)
    second = sipp.call_line(kamailio, caller="+31622222222", ring_seconds=1.0)
    two = await line.wait(
        lambda e: getattr(e, "state", None) == CallState.RINGING and e.call_id != one.call_id
    )
    assert two.waiting
    assert two.caller.number == "+31622222222"
    await line.wait_call(CallState.ENDED, two.call_id, timeout=10)
    # the first call still rings: no ended event for it yet
    assert not [e for e in line.calls() if e.call_id == one.call_id and e.state == CallState.ENDED]
    await line.wait_call(CallState.ENDED, one.call_id, timeout=10)
    first.wait(10)
    second.wait(10)
    assert 180 in first.responses("INVITE")


async def test_invite_from_other_source_refused(kamailio, sipp, line_factory: LineFactory) -> None:
    """INVITEs that do not come from the proxy: 403, one error event per address, no call event."""
    from .conftest import engine_port

    line = await line_factory(kamailio.line_settings())
    port = engine_port(line)
    received: list[bytes] = []
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.2", 0))
        sock.settimeout(2.0)
        for n in range(2):
            invite = _raw_invite(f"spoof-{n}", sock.getsockname())
            sock.sendto(invite, ("127.0.0.1", port))
            while True:
                data = sock.recv(65536)
                received.append(data)
                if not data.startswith(b"SIP/2.0 1"):
                    break
    finals = [d.split(b"\r\n", 1)[0] for d in received if not d.startswith(b"SIP/2.0 1")]
    assert finals == [b"SIP/2.0 403 Forbidden"] * 2
    await asyncio.sleep(0.3)
    assert not line.calls()
    errors = line.errors()
    assert len(errors) == 1
    assert "127.0.0.2" in errors[0].message
    await line.client.ping()


def _raw_invite(call_id: str, source: tuple[str, int], extra: str = "", body: str | None = None):
    host, port = source
    sdp = (
        body
        if body is not None
        else (
            "v=0\r\no=x 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
            "m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
        )
    )
    msg = (
        f"INVITE sip:{TEST_ACCOUNT.number}@{K1_DOMAIN} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-{call_id};rport\r\n"
        f"From: <sip:+31699999999@{K1_DOMAIN}>;tag={call_id}\r\n"
        f"To: <sip:{TEST_ACCOUNT.number}@{K1_DOMAIN}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:spoof@{host}:{port}>\r\nMax-Forwards: 70\r\n{extra}"
        f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
    )
    return msg.encode()


@pytest.fixture
def callee(sipp) -> SippUas:
    """A SIPp callee that rings and answers after 0.3 s."""
    return sipp.uas(answer_after=0.3)


async def test_outgoing_call_invite_and_sdp(
    kamailio_factory, callee: SippUas, line_factory: LineFactory
) -> None:
    """K12-K15, K19, K20, K25: R-URI as dialled; offer PCMA, PCMU, G722 + telephone-event only;
    a=ptime:20; no m=text; RTP port in 16384-32767; events dialing/alerting/answered/ended.
    K6: the line's display name is local only: not in the INVITE's From or Contact."""
    kam = kamailio_factory(forward_to=callee.address)
    line = await line_factory(kam.line_settings(display_name="Thuis"))
    call_id = await line.client.dial("020-123 (45).67", hangup_after=10)
    dialing = await line.wait_call(CallState.DIALING, call_id)
    # The other party in the README's forms (issue 12), not the dial string.
    assert dialing.caller.number == "+31201234567"
    assert dialing.caller.national == "0201234567"
    await line.wait_call(CallState.ALERTING, call_id)
    await line.wait_call(CallState.ANSWERED, call_id)
    await asyncio.sleep(1.5)  # answered within hangup_after (a ringing limit): not cut
    await line.client.hangup(call_id)
    ended = await line.wait_call(CallState.ENDED, call_id, timeout=10)
    assert ended.duration is not None
    assert 0.5 < ended.duration < 3
    assert not ended.missed
    invite = callee.wait_invites(1)[0]
    assert invite.startswith(f"INVITE sip:0201234567@{K1_DOMAIN} SIP/2.0")  # K25
    assert TEST_ACCOUNT.password not in invite
    assert "Thuis" not in invite  # K6
    assert sip_headers(invite, "From")[0].startswith(f"<sip:{TEST_ACCOUNT.number}@")
    body = sip_body(invite)
    media = [ln for ln in body.splitlines() if ln.startswith("m=")]
    assert len(media) == 1, media  # no m=text (K12-K15), no video
    m = re.fullmatch(r"m=audio (\d+) RTP/AVP 8 0 9 (\d+)", media[0].strip())
    assert m, media
    assert K19_RTP_PORT_MIN <= int(m.group(1)) <= K19_RTP_PORT_MAX
    te = m.group(2)
    assert f"a=rtpmap:{te} telephone-event/8000" in body
    assert "a=ptime:20" in body  # K20
    assert "a=rtpmap:8 PCMA/8000" in body
    for codec in ("opus", "speex", "GSM", "iLBC", "L16", "AMR"):
        assert codec not in body
    # 100rel is never required (pjsip still lists it as supported: a capability), timer off
    assert "100rel" not in ",".join(sip_headers(invite, "Require"))
    assert "timer" not in ",".join(sip_headers(invite, "Supported"))
    assert not sip_headers(invite, "Session-Expires")


async def test_hidden_caller_id_and_short_numbers(
    kamailio_factory, callee: SippUas, line_factory: LineFactory
) -> None:
    """K26: *31* in front; K25: 112 and local numbers go out as typed; bad numbers refused."""
    kam = kamailio_factory(forward_to=callee.address)
    line = await line_factory(kam.line_settings())
    first = await line.client.dial("06 1234 5678", hide_caller_id=True)
    await line.wait_call(CallState.ALERTING, first)
    await line.client.hangup(first)
    await line.wait_call(CallState.ENDED, first)
    second = await line.client.dial("112")
    await line.wait_call(CallState.ALERTING, second)
    assert await line.client.hangup(None) == 1
    await line.wait_call(CallState.ENDED, second)
    invites = callee.wait_invites(2)
    assert invites[0].startswith(f"INVITE sip:*31*0612345678@{K1_DOMAIN} SIP/2.0")
    assert invites[1].startswith(f"INVITE sip:112@{K1_DOMAIN} SIP/2.0")
    await expect_error(line.client.dial("call me"), "invalid_number")
    await expect_error(line.client.dial("020\n1234567"), "invalid_number")  # two lines
    await asyncio.sleep(0.5)
    assert len(callee.invites()) == 2  # the refused dials sent no INVITE
    await expect_error(line.client.hangup("c999"), "no_such_call")


async def test_t38_reinvite_declined_with_488(
    kamailio_factory, sipp, tmp_path, line_factory: LineFactory
) -> None:
    """K17: a T.38 re-INVITE on an established call is declined (488); the call goes on."""
    scenario = tmp_path / "uas_t38.xml"
    scenario.write_text(T38_REINVITE_UAS)
    uas: SippUas = sipp._run(
        SippUas, "uas_t38", ["-sf", str(scenario), "-m", "1", *sipp._media_args()]
    )
    await asyncio.sleep(0.3)
    kam = kamailio_factory(forward_to=uas.address)
    line = await line_factory(kam.line_settings())
    call_id = await line.client.dial("0201234567")
    await line.wait_call(CallState.ANSWERED, call_id)
    await asyncio.to_thread(uas.wait_for, lambda msgs: any(m.code == 488 for m in msgs), 5.0)
    await asyncio.sleep(0.3)
    assert not [e for e in line.calls() if e.state == CallState.ENDED]  # still up
    await line.client.hangup(call_id)
    ended = await line.wait_call(CallState.ENDED, call_id)
    assert ended.code == 200
    rc = uas.wait(10)
    assert rc == 0, "\n".join(m.text[:300] for m in uas.messages()) + uas.errors()


async def test_hangups_racing_each_other_and_the_caller_are_quiet(
    kamailio, sipp, caplog: pytest.LogCaptureFixture, line_factory: LineFactory
) -> None:
    """Hang-ups of a call already ending are no-ops: one ended event, no warning, no error.

    Ten hang-ups of one ringing call at once, and hang-ups of calls whose callers
    CANCEL at about the same moment (docs/engine-protocol.md: `hangup`).
    """
    caplog.set_level(logging.DEBUG, logger="custom_components.kpn_voip.kpn_line.client")
    line = await line_factory(kamailio.line_settings())
    run = sipp.call_line(kamailio, ring_seconds=5.0)
    ringing = await line.wait_call(CallState.RINGING)
    results = await asyncio.gather(*(line.client.hangup(ringing.call_id) for _ in range(10)))
    ended = await line.wait_call(CallState.ENDED, ringing.call_id)
    assert (ended.code, ended.missed) == (603, True)
    assert results[0] == 1
    assert set(results[1:]) <= {0, 1}, results  # 1 while it is ending, 0 once it is gone
    assert await line.client.hangup(ringing.call_id) == 0  # ended: a no-op, not an error
    await expect_error(line.client.hangup("c2"), "no_such_call")  # never was a call
    run.wait(10)
    assert 603 in run.responses("INVITE")
    seen = {ringing.call_id}
    for offset in (-0.02, 0.0, 0.02):  # around the moment the caller CANCELs
        run = sipp.call_line(kamailio, ring_seconds=0.4)
        ringing = await line.wait(
            lambda e: getattr(e, "state", None) == CallState.RINGING and e.call_id not in seen
        )
        seen.add(ringing.call_id)
        await asyncio.sleep(0.4 + offset)
        assert await line.client.hangup(ringing.call_id) in (0, 1)
        ended = await line.wait_call(CallState.ENDED, ringing.call_id)
        assert ended.code in (487, 603)
        run.wait(10)
    await asyncio.sleep(0.2)
    ends = [e.call_id for e in line.calls() if e.state == CallState.ENDED]
    assert len(ends) == len(set(ends)) == 4  # one ended event per call
    assert "hangup failed" not in caplog.text
    assert not line.errors()


async def test_answer_command_answers_a_ringing_call(
    kamailio, sipp, line_factory: LineFactory
) -> None:
    """`answer` (reserved, no audio device): 200 to the caller; the caller's BYE ends it."""
    line = await line_factory(kamailio.line_settings())
    run = sipp.call_line(
        kamailio, ring_seconds=5.0, answer_expected=True, talk_seconds=0.5, play_audio=False
    )
    ringing = await line.wait_call(CallState.RINGING)
    await expect_error(line.client._request(Answer(call_id="c99")), "no_such_call")
    assert await line.client._request(Answer(call_id=ringing.call_id)) == {}
    await line.wait_call(CallState.ANSWERED, ringing.call_id)
    ended = await line.wait_call(CallState.ENDED, ringing.call_id)
    assert (ended.code, ended.missed) == (200, False)
    assert ended.duration is not None
    assert ended.duration > 0.3
    assert run.wait(10) == 0, run.errors()


async def test_cancel_with_reason_answered_elsewhere_is_not_missed(
    kamailio, sipp, line_factory: LineFactory
) -> None:
    """RFC 3326: a CANCEL with `Reason: SIP;cause=200` (another device answered the
    forked call) ends the call with that reason and not as a missed call."""
    line = await line_factory(kamailio.line_settings())
    run = sipp.call_line(
        kamailio,
        ring_seconds=1.0,
        play_audio=False,
        end_headers=['Reason: SIP;cause=200;text="Call completed elsewhere"'],
    )
    ringing = await line.wait_call(CallState.RINGING)
    ended = await line.wait_call(CallState.ENDED, ringing.call_id, timeout=10)
    assert ended.end_reason == EndReason("SIP", 200, "Call completed elsewhere")
    assert (ended.code, ended.missed) == (487, False)
    assert run.wait(10) == 0, run.errors()


async def test_cancel_with_q850_reason_is_still_missed(
    kamailio, sipp, line_factory: LineFactory
) -> None:
    """RFC 3326: a CANCEL with a Q.850 cause (16, the caller hung up) is carried, and the
    call stays a missed call."""
    line = await line_factory(kamailio.line_settings())
    run = sipp.call_line(
        kamailio, ring_seconds=1.0, play_audio=False, end_headers=["Reason: Q.850;cause=16"]
    )
    ringing = await line.wait_call(CallState.RINGING)
    ended = await line.wait_call(CallState.ENDED, ringing.call_id, timeout=10)
    assert ended.end_reason == EndReason("Q.850", 16, None)
    assert (ended.code, ended.missed) == (487, True)
    assert run.wait(10) == 0, run.errors()


async def test_bye_reason_is_in_the_end_event(kamailio, sipp, line_factory: LineFactory) -> None:
    """RFC 3326: the Reason of the caller's BYE after talking ends up in `ended`."""
    line = await line_factory(kamailio.line_settings())
    run = sipp.call_line(
        kamailio,
        ring_seconds=5.0,
        answer_expected=True,
        talk_seconds=0.5,
        play_audio=False,
        end_headers=['Reason: Q.850;cause=16;text="Normal call clearing"'],
    )
    ringing = await line.wait_call(CallState.RINGING)
    assert await line.client._request(Answer(call_id=ringing.call_id)) == {}
    ended = await line.wait_call(CallState.ENDED, ringing.call_id, timeout=10)
    assert ended.end_reason == EndReason("Q.850", 16, "Normal call clearing")
    assert not ended.missed
    assert run.wait(10) == 0, run.errors()


async def test_stop_during_a_ringing_call_declines_it(
    kamailio, sipp, line_factory: LineFactory
) -> None:
    """`stop` with a call ringing: 603 to the caller, ended and stopped events, exit 0."""
    line = await line_factory(kamailio.line_settings())
    run = sipp.call_line(kamailio, ring_seconds=5.0)
    ringing = await line.wait_call(CallState.RINGING)
    proc = line.client._proc
    await line.client.stop()
    assert proc is not None
    assert proc.returncode == 0
    ended = await line.wait_call(CallState.ENDED, ringing.call_id)
    assert (ended.code, ended.missed) == (603, True)
    assert line.registrations()[-1].state == RegState.STOPPED
    run.wait(10)
    assert 603 in run.responses("INVITE")
    kamailio.wait_unregistered(TEST_ACCOUNT.number, timeout=3)


async def test_answer_without_a_common_codec_ends_the_call(
    kamailio_factory, sipp, line_factory: LineFactory
) -> None:
    """Issue 9 item 12: the callee answers with a codec the line never offered (G.729):
    the call cannot have media, so it ends at once with a reason (ACK, then BYE to the
    callee), never stays up without media."""
    callee = sipp.uas(answer_after=0.2, codec=(18, "G729/8000"))
    kam = kamailio_factory(forward_to=callee.address)
    line = await line_factory(kam.line_settings())
    call_id = await line.client.dial("0201234567", hangup_after=30)
    ended = await line.wait_call(CallState.ENDED, call_id, timeout=10)
    # pjsua ends it itself: 488 (RFC 3261 §21.4.26) with the reason why.
    assert (ended.code, ended.reason) == (488, "Unable to create media session")
    assert ended.duration is not None
    assert ended.duration < 1
    await callee.async_wait_for(lambda msgs: _received(msgs, "BYE") == 1, 10)
    assert callee.received("ACK")  # the 200 was acknowledged, then the BYE ended it
