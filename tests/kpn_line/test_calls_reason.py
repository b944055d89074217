"""RFC 3326: the Reason the line puts on a call it ends itself, by cause (no network).

The wire test (test_engine_hangup_reason.py) shows the header on BYE, CANCEL and
603; here every cause the call table picks: the ringing limit (`hangup_after`),
calls stuck before an answer, an answer that failed, a call without media (issue 9
item 12), a playback with then_hangup.
"""

from __future__ import annotations

import time
from typing import Any

import pjsua2 as pj
import pytest

from custom_components.kpn_voip.kpn_line import reason
from custom_components.kpn_voip.kpn_line.calls import MAX_RING_SECONDS, CallTable
from custom_components.kpn_voip.kpn_line.protocol import Direction, EndReason, Event


class FakeCall:
    """A call whose hang-ups (status code, Reason values) are kept."""

    def __init__(self, table: CallTable, direction: Direction) -> None:
        self.record = table.new_record(direction)
        self.hangups: list[tuple[int, list[str]]] = []
        table.calls[self.record.call_id] = self  # type: ignore[assignment]

    def hangup(self, prm: Any) -> None:
        reasons = [h.hValue for h in prm.txOption.headers if h.hName == "Reason"]
        self.hangups.append((int(prm.statusCode), reasons))

    def answer(self, prm: Any) -> None:
        raise pj.Error()


def _table() -> CallTable:
    events: list[Event] = []
    return CallTable(events.append, [])


@pytest.mark.parametrize(
    ("cause", "value"),
    [
        (reason.NORMAL_CLEARING, 'Q.850;cause=16;text="Normal call clearing"'),
        (reason.NO_USER_RESPONDING, 'Q.850;cause=18;text="No user responding"'),
        (reason.NO_ANSWER, 'Q.850;cause=19;text="No answer from user (user alerted)"'),
        (reason.CALL_REJECTED, 'Q.850;cause=21;text="Call rejected"'),
        (reason.TEMPORARY_FAILURE, 'Q.850;cause=41;text="Temporary failure"'),
        (reason.NO_MEDIA_SESSION, 'SIP;cause=488;text="Unable to create media session"'),
        (EndReason("SIP", 200, 'a "quoted" \\ text'), r'SIP;cause=200;text="a \"quoted\" \\ text"'),
        (EndReason("Q.850"), "Q.850"),
    ],
)
def test_reason_value_is_what_the_parser_reads_back(cause: EndReason, value: str) -> None:
    """The header value written is RFC 3326 syntax: the parser of received ones agrees."""
    assert reason.reason_value(cause) == value
    assert reason.parse_reason_value(value) == [cause]


def test_hangup_after_is_a_ringing_limit() -> None:
    """hangup_after before the answer: CANCEL with 19 (it rang) or 18 (it never did);
    an answered call is not cut (README: "ends the call if nobody answers")."""
    table = _table()
    alerted = FakeCall(table, Direction.OUTGOING)
    alerted.record.alerted = True
    silent = FakeCall(table, Direction.OUTGOING)
    talking = FakeCall(table, Direction.OUTGOING)
    talking.record.answered_at = time.monotonic()
    for call in (alerted, silent, talking):
        call.record.hangup_at = time.monotonic() - 0.1
    table.tick()
    assert alerted.hangups == [(0, [reason.reason_value(reason.NO_ANSWER)])]
    assert silent.hangups == [(0, [reason.reason_value(reason.NO_USER_RESPONDING)])]
    assert talking.hangups == []
    assert table.next_deadline() is None  # nothing left to wake up for
    assert [alerted.record.no_answer, silent.record.no_answer, talking.record.no_answer] == [
        reason.NO_ANSWER,
        reason.NO_USER_RESPONDING,
        None,
    ]


def test_calls_stuck_before_an_answer() -> None:
    """An incoming call ringing too long: 480 with 19 (RFC 3398: 480 <-> 19); an outgoing
    one that never rang: CANCEL with 18."""
    table = _table()
    ringing = FakeCall(table, Direction.INCOMING)
    dialling = FakeCall(table, Direction.OUTGOING)
    for call in (ringing, dialling):
        call.record.created = time.monotonic() - 1000 - MAX_RING_SECONDS
    table.tick()
    assert ringing.hangups == [(480, [reason.reason_value(reason.NO_ANSWER)])]
    assert dialling.hangups == [(0, [reason.reason_value(reason.NO_USER_RESPONDING)])]


def test_hangup_defaults_and_a_failed_answer() -> None:
    """A ringing incoming call hung up: 603 with 21; an answered one: 16; an answer that
    failed: 500 with 41."""
    table = _table()
    ringing = FakeCall(table, Direction.INCOMING)
    answered = FakeCall(table, Direction.INCOMING)
    answered.record.answered_at = time.monotonic()
    failing = FakeCall(table, Direction.INCOMING)
    table.hangup(ringing)  # type: ignore[arg-type]
    table.hangup(answered)  # type: ignore[arg-type]
    assert not table.answer(failing, 180)  # type: ignore[arg-type]
    assert ringing.hangups == [(603, [reason.reason_value(reason.CALL_REJECTED)])]
    assert answered.hangups == [(0, [reason.reason_value(reason.NORMAL_CLEARING)])]
    assert failing.hangups == [(500, [reason.reason_value(reason.TEMPORARY_FAILURE)])]
