"""RFC 3326: a call the line ends itself says why, in a Reason header (on the wire).

The line's BYE and CANCEL (and its final response to a ringing call it declines,
RFC 6432) carry `Reason: Q.850;cause=N;text="..."`, seen by a SIPp peer through
the stand-in: 16 "Normal call clearing" for a hang-up, 19 "No answer from user (user
alerted)" for the ringing limit (`hangup_after`: an answered call is never cut by
it), 21 "Call rejected" for a ringing
incoming call hung up, SIP 488 for a call without media.  Every cause the call
table picks (also stuck calls and a failed answer) is in test_calls_reason.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from custom_components.kpn_voip.kpn_line.protocol import CallState
from custom_components.kpn_voip.kpn_line.reason import (
    NO_MEDIA_SESSION,
    parse_reason_value,
    reason_value,
)
from kpn_devtools.sipp import SipMessage, SippRun

from .conftest import LineFactory

pytestmark = pytest.mark.timeout(90)

HANGUP = 'Q.850;cause=16;text="Normal call clearing"'
NO_ANSWER = 'Q.850;cause=19;text="No answer from user (user alerted)"'
REJECTED = 'Q.850;cause=21;text="Call rejected"'
NO_ANSWER_TEXT = "No answer from user (user alerted)"


def _reasons(run: SippRun, method: str) -> list[list[str]]:
    """The Reason header values of each `method` request the SIPp peer received."""
    return [m.header("Reason") for m in run.received(method)]


def _count(method: str, n: int) -> Callable[[list[SipMessage]], bool]:
    """`n` or more `method` requests received."""
    return (
        lambda msgs: len([m for m in msgs if m.method == method and m.direction == "received"]) >= n
    )


async def test_a_dialled_call_ended_by_the_line_carries_a_reason(
    kamailio_factory, sipp, line_factory: LineFactory
) -> None:
    """A ringing dialled call ended by the hangup action, then one nobody answers within
    hangup_after (the ringing limit): each CANCEL carries its Reason (RFC 3326), 16 and
    19, and the limited call's `ended` says it was not answered."""
    callee = sipp.uas(answer_after=None)  # rings until CANCEL
    kam = kamailio_factory(forward_to=callee.address)
    line = await line_factory(kam.line_settings())
    call_id = await line.client.dial("0201234567")
    await line.wait_call(CallState.ALERTING, call_id, timeout=10)
    await line.client.hangup(call_id)
    await line.wait_call(CallState.ENDED, call_id, timeout=10)
    await callee.async_wait_for(_count("CANCEL", 1), 10)
    limited = await line.client.dial("0201234567", hangup_after=1.0)
    await line.wait_call(CallState.ALERTING, limited, timeout=10)
    ended = await line.wait_call(CallState.ENDED, limited, timeout=10)
    await callee.async_wait_for(_count("CANCEL", 2), 10)
    assert _reasons(callee, "CANCEL") == [[HANGUP], [NO_ANSWER]]
    assert (ended.code, ended.reason, ended.duration) == (487, NO_ANSWER_TEXT, 0.0)


async def test_hangup_after_never_cuts_an_answered_call(
    kamailio_factory, sipp, line_factory: LineFactory
) -> None:
    """README: `hangup_after` "ends the call if nobody answers within" it.  A far end that
    answers at once is still talking well after the limit; only the hangup action ends
    the call, its BYE with 16 (it used to be cut at hangup_after from the dial)."""
    callee = sipp.uas(answer_after=0.2)
    kam = kamailio_factory(forward_to=callee.address)
    line = await line_factory(kam.line_settings())
    limit = 1.0
    call_id = await line.client.dial("0201234567", hangup_after=limit)
    await line.wait_call(CallState.ANSWERED, call_id, timeout=10)
    await asyncio.sleep(limit + 1.5)
    assert [c for c in line.calls() if c.call_id == call_id and c.state == CallState.ENDED] == []
    assert callee.received("BYE") == []
    assert await line.client.hangup(call_id) == 1
    ended = await line.wait_call(CallState.ENDED, call_id, timeout=10)
    assert ended.duration is not None
    assert ended.duration > limit
    await callee.async_wait_for(_count("BYE", 1), 10)
    assert _reasons(callee, "BYE") == [[HANGUP]]


async def test_declined_incoming_call_carries_a_reason(
    kamailio, sipp, line_factory: LineFactory
) -> None:
    """A ringing incoming call hung up: 603 Decline with Reason Q.850 21 (RFC 6432)."""
    line = await line_factory(kamailio.line_settings())
    run = sipp.call_line(kamailio, ring_seconds=5.0)
    ringing = await line.wait_call(CallState.RINGING, timeout=10)
    await line.client.hangup(ringing.call_id)
    await line.wait_call(CallState.ENDED, ringing.call_id)
    run.wait(10)
    declined: list[SipMessage] = [m for m in run.received() if m.code == 603]
    assert declined, run.responses("INVITE")
    assert declined[0].header("Reason") == [REJECTED]


async def test_bye_of_a_call_without_media_carries_a_reason(
    kamailio_factory, sipp, line_factory: LineFactory
) -> None:
    """An answer without a common codec (G.729): pjsua's own BYE says SIP 488 "Unable to
    create media session", the reason the engine's BYE gives a call whose audio failed
    (test_calls_nomedia.py), and the call's `ended` event (issue 9 item 12)."""
    callee = sipp.uas(answer_after=0.2, codec=(18, "G729/8000"))
    kam = kamailio_factory(forward_to=callee.address)
    line = await line_factory(kam.line_settings())
    call_id = await line.client.dial("0201234567", hangup_after=30)
    await line.wait_call(CallState.ENDED, call_id, timeout=10)
    await callee.async_wait_for(_count("BYE", 1), 10)
    [values] = _reasons(callee, "BYE")
    assert [reason_value(r) for v in values for r in parse_reason_value(v)] == [
        reason_value(NO_MEDIA_SESSION)
    ]
