"""Logbook entries of calls say who called (issue 12 papercut)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from homeassistant.const import Platform
from homeassistant.core import Event, callback
import pytest

from custom_components.kpn_voip.const import DOMAIN, EVENT_CALL
from custom_components.kpn_voip.kpn_line.protocol import CallState
from custom_components.kpn_voip.logbook import async_describe_events

from .conftest import Line, call_event

EVENT = "event.thuis_call"


@pytest.fixture
def platforms() -> list[Platform]:
    """The event and sensor platforms."""
    return [Platform.EVENT, Platform.SENSOR]


async def test_logbook_entries_name_the_caller(line: Line) -> None:
    """Every event of the Call entity gets a logbook line with what happened and who."""
    describers: dict[str, Callable[[Event], dict[str, Any]]] = {}

    def describe_event(domain: str, event_type: str, fn: Callable[[Event], dict[str, Any]]) -> None:
        assert domain == DOMAIN
        describers[event_type] = fn

    async_describe_events(line.hass, describe_event)
    fired: list[Event] = []

    @callback
    def _fired(event: Event) -> None:
        fired.append(event)

    line.hass.bus.async_listen(EVENT_CALL, _fired)
    await line.emit(
        call_event(CallState.RINGING, name="Jan Jansen"),
        call_event(CallState.ENDED, name="Jan Jansen", missed=True, duration=0),
        call_event(
            CallState.RINGING, call_id="c2", number=None, national=None, name=None, anonymous=True
        ),
        replace(
            call_event(CallState.ENDED, call_id="c3", name=None, duration=0),
            code=603,
            refused="blocked",
        ),
        call_event(CallState.ALERTING, call_id="c4"),  # no event, no logbook line
    )
    entries = [describers[EVENT_CALL](event) for event in fired]
    assert [entry["message"] for entry in entries] == [
        "Incoming call: Jan Jansen (0612345678)",
        "Missed call: Jan Jansen (0612345678)",
        "Incoming call: Hidden number",
        "Refused call: 0612345678",
    ]
    assert {entry["entity_id"] for entry in entries} == {EVENT}
    assert {entry["name"] for entry in entries} == {"Thuis Call"}


async def test_logbook_entry_of_a_removed_entity(line: Line) -> None:
    """An entry whose entity is gone still reads (its id as the name)."""
    describers: dict[str, Callable[[Event], dict[str, Any]]] = {}
    async_describe_events(line.hass, lambda _d, kind, fn: describers.__setitem__(kind, fn))
    entry = describers[EVENT_CALL](
        Event(EVENT_CALL, {"entity_id": "event.gone", "event_type": "missed_call", "number": "112"})
    )
    assert entry["name"] == "event.gone"
    assert entry["message"] == "Missed call: 112"
