"""RFC 3326: a call the line ends itself says why, in a Reason header (on the wire).

The line's BYE and CANCEL (and its final response to a ringing call it declines,
RFC 6432) carry `Reason: Q.850;cause=N;text="..."`, seen by a SIPp peer through
the stand-in: 16 "Normal call clearing" for a hang-up and a call's maximum length
(`hangup_after` after the answer), 19 "No answer from user (user alerted)" for a
ringing limit (`hangup_after` before the answer), 21 "Call rejected" for a ringing
incoming call hung up, SIP 488 for a call without media.  Every cause the call
table picks (also stuck calls and a failed answer) is in test_calls_reason.py.
"""

from __future__ import annotations

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


def _reasons(run: SippRun, method: str) -> list[list[str]]:
    """The Reason header values of each `method` request the SIPp peer received."""
    return [m.header("Reason") for m in run.received(method)]


def _count(method: str, n: int) -> Callable[[list[SipMessage]], bool]:
    """`n` or more `method` requests received."""
    return (
        lambda msgs: len([m for m in msgs if m.method == method and m.direction == "received"]) >= n
    )


@pytest.mark.parametrize(
    ("answer_after", "state", "method", "limit", "reasons"),
    [
        # Rings until CANCEL: the hangup action's CANCEL says 16, the ringing limit's
        # (hangup_after before an answer) says 19.
        (None, CallState.ALERTING, "CANCEL", 1.0, [[HANGUP], [NO_ANSWER]]),
        # Answered: the hangup action's BYE and the BYE at the call's maximum length
        # (hangup_after after the answer) say 16.
        (0.2, CallState.ANSWERED, "BYE", 1.5, [[HANGUP], [HANGUP]]),
    ],
    ids=["cancel_of_a_ringing_call", "bye_of_an_answered_call"],
)
async def test_a_dialled_call_ended_by_the_line_carries_a_reason(
    kamailio_factory,
    sipp,
    line_factory: LineFactory,
    answer_after: float | None,
    state: CallState,
    method: str,
    limit: float,
    reasons: list[list[str]],
) -> None:
    """A dialled call ended by the hangup action, then one ended by hangup_after: the
    CANCEL or BYE of each carries its Reason (RFC 3326)."""
    callee = sipp.uas(answer_after=answer_after)
    kam = kamailio_factory(forward_to=callee.address)
    line = await line_factory(kam.line_settings())
    call_id = await line.client.dial("0201234567")
    await line.wait_call(state, call_id, timeout=10)
    await line.client.hangup(call_id)
    await line.wait_call(CallState.ENDED, call_id, timeout=10)
    await callee.async_wait_for(_count(method, 1), 10)
    limited = await line.client.dial("0201234567", hangup_after=limit)
    await line.wait_call(state, limited, timeout=10)
    await line.wait_call(CallState.ENDED, limited, timeout=10)
    await callee.async_wait_for(_count(method, 2), 10)
    assert _reasons(callee, method) == reasons


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
