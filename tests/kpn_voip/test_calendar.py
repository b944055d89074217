"""The call calendar: one event per call (issue 12)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from homeassistant.components.calendar import DOMAIN as CALENDAR_DOMAIN
from homeassistant.const import STATE_OFF, Platform
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.translation import async_get_translations
import pytest
from pytest_homeassistant_custom_component.common import snapshot_platform
from syrupy.assertion import SnapshotAssertion

from custom_components.kpn_voip.calendar import summary_key
from custom_components.kpn_voip.calls import translated
from custom_components.kpn_voip.const import DOMAIN
from custom_components.kpn_voip.kpn_line.protocol import CallState, Direction, EndReason

from .conftest import Line, call_event

CALENDAR = "calendar.thuis_calls"
T0 = 1764100800.0  # 2025-11-25 20:00:00 UTC


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the calendar platform."""
    return [Platform.CALENDAR]


async def _calls(line: Line) -> None:
    out: dict[str, Any] = {"direction": Direction.OUTGOING, "name": None}
    await line.emit(
        call_event(CallState.RINGING, call_id="a", at=T0),
        call_event(CallState.ANSWERED, call_id="a", at=T0 + 5),
        call_event(CallState.ENDED, call_id="a", duration=55, at=T0 + 60),
        call_event(
            CallState.ENDED,
            call_id="m",
            number=None,
            national=None,
            name=None,
            anonymous=True,
            missed=True,
            duration=0,
            at=T0 + 3600,
        ),
        replace(
            call_event(
                CallState.ENDED,
                call_id="o",
                duration=0,
                at=T0 + 7200,
                number="+31201234567",
                national="0201234567",
                **out,
            ),
            code=486,
        ),
        replace(
            call_event(CallState.ENDED, call_id="r", name=None, duration=0, at=T0 + 7300),
            code=603,
            refused="blocked",
        ),
    )


async def test_calendar_entity(
    line: Line, entity_registry: er.EntityRegistry, snapshot: SnapshotAssertion
) -> None:
    """The entity shows the newest call (snapshot); it is off: calls are past."""
    await _calls(line)
    await snapshot_platform(line.hass, entity_registry, snapshot, line.entry.entry_id)
    assert line.state(CALENDAR) == STATE_OFF


async def test_get_events(line: Line, snapshot: SnapshotAssertion) -> None:
    """calendar.get_events hands a range of calls, with a summary in the user's language."""
    await _calls(line)
    response = await line.hass.services.async_call(
        CALENDAR_DOMAIN,
        "get_events",
        {
            "entity_id": CALENDAR,
            "start_date_time": "2025-11-25T19:00:00+00:00",
            "end_date_time": "2025-11-25T23:00:00+00:00",
        },
        blocking=True,
        return_response=True,
    )
    events = response[CALENDAR]["events"]  # type: ignore[index]
    assert [event["summary"] for event in events] == [
        "Call from Jan (0612345678)",
        "Missed call from Hidden number",
        "0201234567 was busy",
        "Refused call from 0612345678",
    ]
    assert events == snapshot
    # A range with only the first call.
    response = await line.hass.services.async_call(
        CALENDAR_DOMAIN,
        "get_events",
        {
            "entity_id": CALENDAR,
            "start_date_time": "2025-11-25T19:00:00+00:00",
            "end_date_time": "2025-11-25T20:30:00+00:00",
        },
        blocking=True,
        return_response=True,
    )
    assert len(response[CALENDAR]["events"]) == 1  # type: ignore[index]


async def test_empty_and_engine_down(line: Line) -> None:
    """No calls yet: off without attributes; it stays available while the engine is down."""
    state = line.hass.states.get(CALENDAR)
    assert state is not None
    assert state.state == STATE_OFF
    assert "message" not in state.attributes
    await line.die()
    assert line.state(CALENDAR) == STATE_OFF


@pytest.mark.parametrize(
    ("language", "summary"),
    [("en", "Call from Jan answered elsewhere"), ("nl", "Oproep van Jan elders beantwoord")],
)
async def test_answered_elsewhere_summary(line: Line, language: str, summary: str) -> None:
    """RFC 3326: a call another device answered is its own outcome, not a missed call."""
    elsewhere = EndReason("SIP", 200, "Call completed elsewhere")
    await line.emit(
        call_event(CallState.RINGING, call_id="e", at=T0),
        call_event(CallState.ENDED, call_id="e", duration=0, at=T0 + 2, end_reason=elsewhere),
    )
    record = line.coordinator.calls.history[-1]
    assert summary_key(record) == "incoming_answered_elsewhere"
    texts = await async_get_translations(line.hass, language, "entity", [DOMAIN])
    assert translated(texts, summary_key(record), caller="Jan") == summary
