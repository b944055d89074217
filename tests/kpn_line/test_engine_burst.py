"""Issue 9 item 14: a burst of calls, each ended by its own cause only.

pjsua gives a finished call's id to the next call at once; the engine keeps a
finished call object until that id is free, so dropping it can never detach
or hang up the new call that now has the id (calls.release_retired).  Here
waves of callers overlap, so ids are reused while earlier calls end; the line
lets two ring at once and refuses the others busy (K24), which takes ids too.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from custom_components.kpn_voip.kpn_line.profile import K24_MAX_CALLS
from custom_components.kpn_voip.kpn_line.protocol import CallState

from .conftest import LineFactory

pytestmark = pytest.mark.timeout(120)

WAVES = 3
CALLERS_PER_WAVE = 8


async def test_burst_every_call_rings_or_is_refused_and_ends_by_its_own_cause(
    kamailio, sipp, line_factory: LineFactory
) -> None:
    """24 overlapping incoming calls: each either rings once and ends once with the
    caller's CANCEL (487, missed), or, while two calls are up, is refused busy (486,
    K24) with one `ended` event; none is ended by the engine (603/480/500), none is
    left behind, and never more than two ring at once."""
    line = await line_factory(kamailio.line_settings())
    runs = []
    for wave in range(WAVES):
        for index in range(CALLERS_PER_WAVE):
            runs.append(
                sipp.call_line(
                    kamailio,
                    caller=f"+316123{wave}{index:04d}",
                    ring_seconds=0.3 + 0.1 * index,
                    play_audio=False,
                )
            )
        await asyncio.sleep(0.5)
    # The callers' own exit codes are not the point: SIPp's caller sometimes aborts
    # when its CANCEL's 200 crosses its next step under load.  What the line
    # reported is (each call rang once and ended once by the caller's CANCEL, or
    # was refused busy).
    await asyncio.gather(*(asyncio.to_thread(run.wait, 60) for run in runs))
    total = WAVES * CALLERS_PER_WAVE
    await line.wait(
        lambda _: sum(1 for c in line.calls() if c.state == CallState.ENDED) >= total,
        timeout=10,
    )
    await asyncio.sleep(0.5)  # nothing more may follow
    ringing = [c.call_id for c in line.calls() if c.state == CallState.RINGING]
    ended = [c for c in line.calls() if c.state == CallState.ENDED]
    refused = [c.call_id for c in ended if c.refused is not None]
    assert len(ringing) == len(set(ringing))
    assert not set(ringing) & set(refused)
    assert len(ringing) + len(refused) == total
    assert Counter(c.call_id for c in ended) == Counter(ringing + refused)  # each exactly once
    assert {(c.code, c.missed) for c in ended if c.refused is None} == {(487, True)}
    assert {(c.code, c.missed, c.refused) for c in ended if c.refused is not None} <= {
        (486, False, "busy")
    }
    # The first two callers find the line free; eight at once cannot all ring (K24).
    assert len(ringing) >= K24_MAX_CALLS
    assert refused
    up = 0
    for event in line.calls():  # in the order the engine sent them
        up += {CallState.RINGING: 1, CallState.ENDED: 0 if event.refused else -1}[event.state]
        assert up <= K24_MAX_CALLS  # K24
    callers = {c.caller.number for c in line.calls()}
    assert len(callers) == total  # every caller's own call, none mixed up
    assert not line.client.running or await line.client.hangup() == 0  # none left
