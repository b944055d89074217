"""Two `answer` commands for one incoming call, back to back (two automations).

A real engine, the Kamailio stand-in and a pjsua2 far end calling in: the first
answer's 200 is on its way, the ACK (CONFIRMED, `answered`) still to come, when the
second answer arrives.  The second is refused as not_ringing and the call stays up:
a command's error never ends a call nobody asked to end (docs/engine-protocol.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
import queue
from typing import Any

import pjsua2 as pj
import pytest

from custom_components.kpn_voip.kpn_line.client import EngineError
from custom_components.kpn_voip.kpn_line.commands import Answer, Request
from custom_components.kpn_voip.kpn_line.engine import Engine
from custom_components.kpn_voip.kpn_line.profile import K1_DOMAIN
from custom_components.kpn_voip.kpn_line.protocol import (
    CallState,
    Direction,
    RecordingEnd,
    RecordingSavedEvent,
    Reply,
)
from kpn_devtools.farend import FarEnd
from kpn_devtools.kamailio import TEST_ACCOUNT
from kpn_devtools.sound import chirp, write_wav

from .conftest import LineFactory


class _Out:
    """The engine's output: the replies and events it wrote."""

    def __init__(self) -> None:
        self.written: list[Any] = []

    def write(self, message: Any) -> None:
        self.written.append(message)


class _RefusingCall:
    """A ringing incoming call whose answer pjsua refuses; its hang-ups are counted."""

    def __init__(self, engine: Engine) -> None:
        self.record = engine.table.new_record(Direction.INCOMING)
        self.answers = 0
        self.hangups = 0
        engine.calls[self.record.call_id] = self  # type: ignore[assignment]

    def answer(self, prm: Any) -> None:
        self.answers += 1
        raise pj.Error()

    def hangup(self, prm: Any) -> None:
        self.hangups += 1


def test_a_refused_answer_leaves_the_call_ringing() -> None:
    """pjsua refusing `answer` is `internal` for that command only: the call is not
    hung up (no 603 nobody asked for), it still rings and may be answered again."""
    out = _Out()
    engine = Engine(out, queue.SimpleQueue())  # type: ignore[arg-type]
    call = _RefusingCall(engine)
    call_id = call.record.call_id
    engine.handle(Request(id=1, command=Answer(call_id=call_id)))
    engine.handle(Request(id=2, command=Answer(call_id=call_id)))
    replies = [m for m in out.written if isinstance(m, Reply)]
    assert [(r.id, r.ok, r.error_code) for r in replies] == [
        (1, False, "internal"),
        (2, False, "internal"),  # tried again: not refused as being answered
    ]
    assert call.answers == 2
    assert call.hangups == 0
    assert not call.record.hanging_up
    assert not call.record.answering
    assert engine.calls[call_id] is call  # type: ignore[comparison-overlap]
    assert not [m for m in out.written if not isinstance(m, Reply)]  # no `ended`


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
    assert len(errors) == 1, results
    assert isinstance(errors[0], EngineError), results
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
    assert ended.duration is not None, ended
    assert ended.duration >= 2.0, ended
    await far.async_wait_event(lambda e: e["event"] == "ended")
