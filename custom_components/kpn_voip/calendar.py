"""The call history as a calendar: one event per call.

Why a calendar (docs/calls.md): calls are things that happened at a time and
lasted a while, which is what a calendar event is.  HA's calendar panel and
card show them on a timeline, `calendar.get_events` hands a range of them to
scripts, and calendar triggers can start automations; the list lives in the
integration's Store, not in a state attribute (HA keeps attributes small).
A sensor or the event entity can hold only the latest call; a to-do list is
for things to do (users could tick and edit calls); the logbook is not a
platform an integration can fill.
"""

from __future__ import annotations

from datetime import datetime
from typing import override

from homeassistant.components.calendar import (
    CalendarEntity,
    CalendarEntityDescription,
    CalendarEvent,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .calls import CallOutcome, CallRecord, caller_text, translated
from .coordinator import KpnVoipConfigEntry
from .entity import KpnVoipCallsEntity
from .kpn_line.protocol import Direction

PARALLEL_UPDATES = 0

DESCRIPTION = CalendarEntityDescription(key="calls", translation_key="calls")


def summary_key(record: CallRecord) -> str:
    """Which summary text a call gets: direction and outcome."""
    outcome = record.outcome
    if record.direction is Direction.INCOMING:
        if outcome not in (
            CallOutcome.ANSWERED,
            CallOutcome.ANSWERED_ELSEWHERE,
            CallOutcome.REJECTED,
        ):
            outcome = CallOutcome.MISSED
    elif outcome is CallOutcome.MISSED:
        outcome = CallOutcome.FAILED
    return f"{record.direction.value}_{outcome.value}"


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KpnVoipConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the line's call calendar."""
    async_add_entities([KpnVoipCallCalendar(entry.runtime_data, DESCRIPTION)])


class KpnVoipCallCalendar(KpnVoipCallsEntity, CalendarEntity):
    """The line's calls, newest last; its `event` is the newest call."""

    @property
    @override
    def event(self) -> CalendarEvent | None:
        """The newest call (a calendar's state is on only during an event: calls are past)."""
        if (record := self.coordinator.calls.last) is None:
            return None
        return self._calendar_event(record)

    @override
    async def async_get_events(
        self, hass: HomeAssistant, start_date: datetime, end_date: datetime
    ) -> list[CalendarEvent]:
        """The calls in a range of time."""
        return [
            self._calendar_event(record)
            for record in self.coordinator.calls.records_between(start_date, end_date)
        ]

    def _calendar_event(self, record: CallRecord) -> CalendarEvent:
        translations = self.platform_data.platform_translations
        return CalendarEvent(
            start=record.start,
            end=record.end,
            summary=translated(
                translations,
                summary_key(record),
                caller=caller_text(record.caller, translations),
            ),
            description=record.caller.number,
            uid=record.uid,
        )
