"""K24: the line carries two calls at once (a call and a waiting one), so a dial while
two are up is refused `line_busy` and no INVITE goes out (on the wire, through the
stand-in to a SIPp callee), and a third incoming call is refused 486 Busy Here before it
rings.  Many dials at once used to each send an INVITE; a third and a fourth incoming
call used to ring."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from custom_components.kpn_voip.kpn_line.profile import K24_MAX_CALLS
from custom_components.kpn_voip.kpn_line.protocol import CallEvent, CallState, ErrorCode, Event
from kpn_devtools.sipp import SippRun

from .conftest import Line, LineFactory, expect_error

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
    assert len(placed) == K24_MAX_CALLS == 2
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
    # ... and a third incoming call is refused busy; the two calls up go on.
    third = sipp.call_line(kam, caller="+31633333333", ring_seconds=3.0)
    refused = await _refused_busy(line, third)
    assert refused.caller.number == "+31633333333"
    assert _states(line, ringing.call_id) == [CallState.RINGING]
    assert _states(line, dialled) == [CallState.DIALING, CallState.ALERTING]
    assert run.running
    await line.client.hangup()
    run.wait(15)


def _states(line: Line, call_id: str) -> list[CallState]:
    return [event.state for event in line.calls() if event.call_id == call_id]


def _ringing(line: Line, number: str) -> Callable[[Event], bool]:
    return lambda e: (
        isinstance(e, CallEvent) and e.state == CallState.RINGING and e.caller.number == number
    )


async def _refused_busy(line: Line, run: SippRun) -> CallEvent:
    """K24: `run`'s INVITE got 486 Busy Here and never a 180; its one `call` event is
    `ended` with `refused` busy (as the call policy's refusals, docs/calls.md)."""
    before = {e.call_id for e in line.calls() if e.refused is not None}
    ended = await line.wait(
        lambda e: isinstance(e, CallEvent) and e.refused is not None and e.call_id not in before,
        timeout=10,
    )
    assert isinstance(ended, CallEvent)
    assert run.wait(10) == 0, run.errors()
    assert run.final_code("INVITE") == 486
    assert 180 not in run.responses("INVITE")
    assert (ended.state, ended.refused, ended.code, ended.missed, ended.duration) == (
        CallState.ENDED,
        "busy",
        486,
        False,
        0,
    )
    assert _states(line, ended.call_id) == [CallState.ENDED]
    return ended


async def test_a_third_incoming_call_is_refused_busy_before_it_rings(
    kamailio, sipp, line_factory: LineFactory
) -> None:
    """K24: an answered call and a waiting one (it rings) fill the line: a third INVITE is
    refused 486 Busy Here before it rings, with one `ended` event (`refused` busy), and
    neither call up hears of it.  Once the waiting call ends a new call rings again
    (waiting); the answered call goes on to its own end."""
    line = await line_factory(kamailio.line_settings())
    first_run = sipp.call_line(
        kamailio,
        caller="+31611111111",
        ring_seconds=5.0,
        answer_expected=True,
        talk_seconds=6.0,
        play_audio=False,
    )
    first = await line.wait_call(CallState.RINGING, timeout=10)
    await line.client.answer(first.call_id)
    await line.wait_call(CallState.ANSWERED, first.call_id)
    second_run = sipp.call_line(kamailio, caller="+31622222222", ring_seconds=8.0)
    second = await line.wait(_ringing(line, "+31622222222"), timeout=10)
    assert isinstance(second, CallEvent)
    assert second.waiting  # call waiting: the second call rings
    third_run = sipp.call_line(kamailio, caller="+31633333333", ring_seconds=3.0)
    refused = await _refused_busy(line, third_run)
    assert refused.caller.number == "+31633333333"
    # The two calls up are untouched: no event for either, both still up on the wire.
    assert _states(line, first.call_id) == [CallState.RINGING, CallState.ANSWERED]
    assert _states(line, second.call_id) == [CallState.RINGING]
    assert first_run.running
    assert second_run.running
    # The waiting call ends: the line takes a call again.
    assert await line.client.hangup(second.call_id) == 1
    await line.wait_call(CallState.ENDED, second.call_id)
    assert second_run.wait(10) == 0, second_run.errors()
    assert second_run.final_code("INVITE") == 603
    fourth_run = sipp.call_line(kamailio, caller="+31644444444", ring_seconds=1.0)
    fourth = await line.wait(_ringing(line, "+31644444444"), timeout=10)
    assert isinstance(fourth, CallEvent)
    assert fourth.waiting
    ended = await line.wait_call(CallState.ENDED, fourth.call_id, timeout=10)
    assert (ended.code, ended.missed, ended.refused) == (487, True, None)
    assert fourth_run.wait(10) == 0, fourth_run.errors()
    assert 180 in fourth_run.responses("INVITE")
    # The answered call lasted until its caller's BYE.
    assert _states(line, first.call_id) == [CallState.RINGING, CallState.ANSWERED]
    first_ended = await line.wait_call(CallState.ENDED, first.call_id, timeout=15)
    assert (first_ended.code, first_ended.missed) == (200, False)
    assert first_ended.duration is not None
    assert first_ended.duration > 5.0
    assert first_run.wait(10) == 0, first_run.errors()
