"""Issue 9 item 12: a call whose audio cannot be set up is ended with a reason.

pjsua itself ends a call whose answer has no common codec (the wire test
test_engine_calls.py::test_answer_without_a_common_codec_ends_the_call); these
cover the engine's own part: an audio stream pjsua reports as failed, or audio
that cannot be hooked up, ends the call (BYE) and its `ended` says 488.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pjsua2 as pj
import pytest

from custom_components.kpn_voip.kpn_line.calls import NO_MEDIA, CallTable
from custom_components.kpn_voip.kpn_line.protocol import CallEvent, CallState, Direction, Event


class FakeCall:
    """A call answered a moment ago; its audio is `status`, hooking it up may fail."""

    def __init__(self, table: CallTable, status: int, *, hookup_fails: bool) -> None:
        self.record = table.new_record(Direction.INCOMING)
        self.record.answered_at = self.record.created
        self.status = status
        self.hookup_fails = hookup_fails
        self.hangups: list[int] = []
        self.reasons: list[list[str]] = []  # each hang-up's Reason values (RFC 3326)
        self.state = pj.PJSIP_INV_STATE_CONFIRMED

    def getInfo(self) -> Any:
        audio = SimpleNamespace(type=pj.PJMEDIA_TYPE_AUDIO, status=self.status)
        return SimpleNamespace(
            media=[audio],
            state=self.state,
            lastStatusCode=200,
            lastReason="Normal call clearing",
        )

    def getAudioMedia(self, index: int) -> Any:
        if self.hookup_fails:
            raise pj.Error()
        return SimpleNamespace(index=index)

    def hangup(self, prm: Any) -> None:
        self.hangups.append(int(prm.statusCode))
        self.reasons.append([h.hValue for h in prm.txOption.headers if h.hName == "Reason"])


@pytest.mark.parametrize(
    ("status", "hookup_fails"),
    [(pj.PJSUA_CALL_MEDIA_ERROR, False), (pj.PJSUA_CALL_MEDIA_ACTIVE, True)],
    ids=["stream_failed", "hookup_failed"],
)
def test_a_call_without_media_is_ended_with_a_reason(status: int, hookup_fails: bool) -> None:
    events: list[Event] = []
    table = CallTable(events.append, [])
    call = FakeCall(table, status, hookup_fails=hookup_fails)
    table.calls[call.record.call_id] = call  # type: ignore[assignment]
    table.on_media_state(call)  # type: ignore[arg-type]
    assert call.hangups == [488]  # a BYE for the answered call
    # RFC 3326: as pjsua's own BYE for an answer without a common codec says
    assert call.reasons == [['SIP;cause=488;text="Unable to create media session"']]
    assert call.record.hanging_up
    table.on_media_state(call)  # type: ignore[arg-type]  another update: no second hang-up
    assert call.hangups == [488]
    call.state = pj.PJSIP_INV_STATE_DISCONNECTED  # pjsua: the BYE got its 200
    table.on_call_state(call)  # type: ignore[arg-type]
    ended = [e for e in events if isinstance(e, CallEvent) and e.state is CallState.ENDED]
    assert [(e.code, e.reason, e.missed) for e in ended] == [(*NO_MEDIA, False)]
    assert NO_MEDIA == (488, "Unable to create media session")


def test_a_call_with_media_stays_up() -> None:
    events: list[Event] = []
    table = CallTable(events.append, [])
    call = FakeCall(table, pj.PJSUA_CALL_MEDIA_ACTIVE, hookup_fails=False)
    table.calls[call.record.call_id] = call  # type: ignore[assignment]
    table.audio.media[call.record.call_id] = object()  # already hooked up: no new transmit
    table.on_media_state(call)  # type: ignore[arg-type]
    assert call.hangups == []
    assert not call.record.no_media
    assert events == []
