"""K24: the line carries two calls at once (a call and a waiting one), so a dial while
two are up is refused `line_busy` and no INVITE goes out (on the wire, through the
stand-in to a SIPp callee).  Many dials at once used to each send an INVITE."""

from __future__ import annotations

import asyncio

import pytest

from custom_components.kpn_voip.kpn_line.engine import MAX_CALLS_FOR_DIAL
from custom_components.kpn_voip.kpn_line.protocol import CallState, ErrorCode

from .conftest import LineFactory, expect_error

pytestmark = pytest.mark.timeout(90)


async def test_a_dial_while_every_call_slot_is_taken_sends_nothing(
    kamailio_factory, sipp, line_factory: LineFactory
) -> None:
    """K24: five dials at once: two ring at the far end, three are refused line_busy without an
    INVITE.  Once a call is hung up a dial goes out again."""
    callee = sipp.uas(answer_after=None)  # rings until CANCEL
    kam = kamailio_factory(forward_to=callee.address)
    line = await line_factory(kam.line_settings())
    results = await asyncio.gather(
        *(line.client.dial("0201234567") for _ in range(5)), return_exceptions=True
    )
    placed = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(placed) == MAX_CALLS_FOR_DIAL == 2
    assert [getattr(e, "code", e) for e in refused] == [ErrorCode.LINE_BUSY] * 3
    for call_id in placed:
        await line.wait_call(CallState.ALERTING, call_id, timeout=10)
    await asyncio.sleep(1.0)  # an INVITE of a refused dial would have arrived by now
    assert len(callee.invites()) == 2
    # Refused dials leave no trace: no call event for them.
    assert {c.call_id for c in line.calls()} == set(placed)
    assert await line.client.hangup(placed[0]) == 1
    await line.wait_call(CallState.ENDED, placed[0], timeout=10)
    again = await line.client.dial("0201234567")
    await line.wait_call(CallState.ALERTING, again, timeout=10)
    await callee.async_wait_invites(3)
    await line.client.hangup()


async def test_an_incoming_call_takes_a_slot_too(
    kamailio_factory, sipp, line_factory: LineFactory
) -> None:
    """K24: a ringing incoming call and a dialled one fill the line: the next dial is
    line_busy and sends no INVITE; the incoming call keeps ringing."""
    callee = sipp.uas(answer_after=None)
    kam = kamailio_factory(forward_to=callee.address)
    line = await line_factory(kam.line_settings())
    run = sipp.call_line(kam, ring_seconds=8.0)
    ringing = await line.wait_call(CallState.RINGING, timeout=10)
    dialled = await line.client.dial("0201234567")
    await line.wait_call(CallState.ALERTING, dialled, timeout=10)
    err = await expect_error(line.client.dial("0612345678"), ErrorCode.LINE_BUSY)
    assert "2 calls" in err.message
    await asyncio.sleep(0.5)
    assert len(callee.invites()) == 1
    assert [c.state for c in line.calls() if c.call_id == ringing.call_id] == [CallState.RINGING]
    await line.client.hangup()
    run.wait(15)
