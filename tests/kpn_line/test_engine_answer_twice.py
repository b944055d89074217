"""Two `answer` commands for one incoming call, back to back (two automations).

A real engine, the Kamailio stand-in and a pjsua2 far end calling in: the first
answer's 200 is on its way, the ACK (CONFIRMED, `answered`) still to come, when the
second answer arrives.  The second is refused as not_ringing and the call stays up:
a command's error never ends a call nobody asked to end (docs/engine-protocol.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from custom_components.kpn_voip.kpn_line.client import EngineError
from custom_components.kpn_voip.kpn_line.profile import K1_DOMAIN
from custom_components.kpn_voip.kpn_line.protocol import (
    CallState,
    RecordingEnd,
    RecordingSavedEvent,
)
from kpn_devtools.farend import FarEnd
from kpn_devtools.kamailio import TEST_ACCOUNT
from kpn_devtools.sound import chirp, write_wav

from .conftest import LineFactory

pytestmark = [pytest.mark.timeout(120), pytest.mark.serial]


async def test_second_answer_right_after_the_first_is_not_ringing(
    kamailio, line_factory: LineFactory, far_ends: list[FarEnd], tmp_path: Path
) -> None:
    """Both commands are written before the engine reads the first: one answers
    (the far end is CONFIRMED once, one `answered` event), the other gets not_ringing;
    then sound flows both ways for 2 s and neither side ends the call (no BYE, no
    603), until the line hangs up: an answered call, not a missed one."""
    line = await line_factory(kamailio.line_settings())
    far = FarEnd(
        call=f"sip:{TEST_ACCOUNT.number}@{K1_DOMAIN}",
        proxy=f"{kamailio.host}:{kamailio.port}",
        play=write_wav(tmp_path / "far.wav", chirp(6.0)),
    )
    far_ends.append(far)
    ringing = await line.wait_call(CallState.RINGING, timeout=10)
    call_id = ringing.call_id
    client = line.client
    results = await asyncio.gather(
        client.answer(call_id), client.answer(call_id), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert results.count(None) == 1, results  # one answer went out
    assert len(errors) == 1 and isinstance(errors[0], EngineError), results
    assert errors[0].code == "not_ringing", errors[0]
    await line.wait_call(CallState.ANSWERED, call_id)
    await far.async_wait_event(lambda e: e["event"] == "media")
    # The call is up: what the far end sends is recorded for the full 2 s (RTP flows).
    heard = tmp_path / "heard.wav"
    await client.record(call_id, str(heard), max_seconds=2.0)
    saved = await line.wait(lambda e: isinstance(e, RecordingSavedEvent), timeout=6)
    assert isinstance(saved, RecordingSavedEvent)
    assert saved.reason == RecordingEnd.MAX_LENGTH
    assert saved.duration >= 1.8, saved
    assert not [e for e in far.events if e["event"] == "ended"], far.events  # no BYE, no 603
    assert [e for e in far.events if e["event"] == "state"] == [
        {"event": "state", "state": "confirmed"}
    ]
    # A third answer of the answered call: the same refusal, and still no end.
    with pytest.raises(EngineError) as third:
        await client.answer(call_id)
    assert third.value.code == "not_ringing"
    states = [e.state for e in line.calls() if e.call_id == call_id]
    assert states == [CallState.RINGING, CallState.ANSWERED], states
    await client.hangup(call_id)
    ended = await line.wait_call(CallState.ENDED, call_id)
    assert not ended.missed, ended
    assert ended.duration is not None and ended.duration >= 2.0, ended
    await far.async_wait_event(lambda e: e["event"] == "ended")
