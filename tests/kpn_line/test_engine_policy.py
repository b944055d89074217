"""Who may ring, on the wire: the engine refuses before 180 (issue 12).

A real engine registered at the Kamailio stand-in, SIPp callers through it.
policy.py cites RFC 3261 for the codes: 486 Busy Here for do-not-disturb,
603 Decline for the block list and for anonymous callers.
"""

from __future__ import annotations

import pytest

from custom_components.kpn_voip.kpn_line.policy import CallPolicy, parse_entries
from custom_components.kpn_voip.kpn_line.protocol import CallEvent, CallState
from kpn_devtools.sipp import SippRun

from .conftest import Line, LineFactory

pytestmark = pytest.mark.timeout(90)


def _calls(line: Line, call_id: str) -> list[CallEvent]:
    return [event for event in line.calls() if event.call_id == call_id]


async def _refused(line: Line, run: SippRun, code: int, refused: str) -> CallEvent:
    """The call got `code` on the wire, never a 180, and one `ended` event with why."""
    before = {e.call_id for e in line.calls() if e.refused is not None}
    ended = await line.wait(
        lambda e: isinstance(e, CallEvent) and e.refused is not None and e.call_id not in before
    )
    assert isinstance(ended, CallEvent)
    assert run.wait(10) == 0, run.errors()
    assert run.final_code("INVITE") == code
    assert 180 not in run.responses("INVITE")
    assert ended.refused == refused
    assert ended.code == code
    assert not ended.missed
    assert ended.duration == 0
    assert [e.state for e in _calls(line, ended.call_id)] == [CallState.ENDED]
    return ended


async def test_block_list_anonymous_and_do_not_disturb(
    kamailio, sipp, line_factory: LineFactory
) -> None:
    """Blocked number and prefix: 603; anonymous (option on): 603; DND: 486; allowed rings."""
    line = await line_factory(kamailio.line_settings())
    policy = CallPolicy(
        block=parse_entries("0900*, 06 1111 1111"),
        allow=parse_entries("0622222222"),
        block_anonymous=True,
    )
    await line.client.set_call_policy(policy)

    run = sipp.call_line(kamailio, caller="+31611111111", ring_seconds=3.0)
    ended = await _refused(line, run, 603, "blocked")
    assert ended.caller.number == "+31611111111"

    run = sipp.call_line(kamailio, caller="+31900123456", ring_seconds=3.0)
    await _refused(line, run, 603, "blocked")

    run = sipp.call_line(kamailio, privacy=True, pai=[], ring_seconds=3.0)
    ended = await _refused(line, run, 603, "anonymous")
    assert ended.caller.anonymous

    await line.client.set_call_policy(CallPolicy(do_not_disturb=True, allow=policy.allow))
    run = sipp.call_line(kamailio, caller="+31633333333", ring_seconds=3.0)
    await _refused(line, run, 486, "do_not_disturb")

    # The allow list beats do-not-disturb: it rings (180) and is then cancelled.
    run = sipp.call_line(kamailio, caller="+31622222222", ring_seconds=1.0)
    ringing = await line.wait_call(CallState.RINGING)
    assert ringing.caller.number == "+31622222222"
    ended = await line.wait_call(CallState.ENDED, ringing.call_id, timeout=10)
    assert ended.missed
    assert ended.refused is None
    run.wait(10)
    assert 180 in run.responses("INVITE")

    # Do-not-disturb off: the same caller that got 486 rings again.
    await line.client.set_call_policy(CallPolicy())
    run = sipp.call_line(kamailio, caller="+31633333333", ring_seconds=1.0)
    await line.wait(
        lambda e: isinstance(e, CallEvent)
        and e.state == CallState.RINGING
        and e.caller.number == "+31633333333",
        timeout=10,
    )
    run.wait(10)
    assert 180 in run.responses("INVITE")
