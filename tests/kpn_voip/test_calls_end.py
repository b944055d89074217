"""Issue 9 item 11: calls in progress end with their event when the engine dies or the
entry reloads, and a reload does not show the last event again as a new one."""

from __future__ import annotations

from typing import Any

from homeassistant.const import STATE_UNKNOWN, Platform
from homeassistant.core import Event, HomeAssistant, callback
import pytest

from custom_components.kpn_voip.kpn_line.protocol import CallState, Direction, RegState

from .conftest import Line, call_event

EVENT = "event.thuis_call"


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the event platform."""
    return [Platform.EVENT]


def _record_events(hass: HomeAssistant) -> list[dict[str, Any]]:
    fired: list[dict[str, Any]] = []

    @callback  # on the loop, in order (a plain function runs in the executor)
    def changed(event: Event[Any]) -> None:
        new = event.data["new_state"]
        if (
            event.data["entity_id"] == EVENT
            and new is not None
            and new.attributes.get("event_type")
        ):
            fired.append(dict(new.attributes))

    hass.bus.async_listen("state_changed", changed)
    return fired


async def test_engine_death_ends_ringing_and_answered_calls(line: Line) -> None:
    """A ringing call becomes a missed call, an answered one call_ended with its time."""
    await line.emit(call_event(CallState.RINGING, call_id="c1"))
    line.freezer.tick(1)
    await line.emit(call_event(CallState.RINGING, call_id="c2", number="+31699999999"))
    line.freezer.tick(1)
    await line.emit(call_event(CallState.ANSWERED, call_id="c2", number="+31699999999"))
    fired = _record_events(line.hass)
    line.freezer.tick(30)
    await line.die()
    by_call = {attrs["call_id"]: attrs for attrs in fired}
    assert by_call["c1"]["event_type"] == "missed_call"
    assert by_call["c1"]["reason"] == "engine stopped"
    assert by_call["c1"]["code"] == 0
    assert by_call["c2"]["event_type"] == "call_ended"
    assert by_call["c2"]["duration"] == pytest.approx(30, abs=1)
    assert line.coordinator.data.active_calls == 0


async def test_reload_ends_calls_and_does_not_replay_the_last_event(line: Line) -> None:
    """A reload: the ringing call ends as missed first; the reloaded entity shows no old
    event (a state trigger would take a restored one for a new call)."""
    await line.emit(call_event(CallState.RINGING, direction=Direction.INCOMING))
    fired = _record_events(line.hass)
    line.freezer.tick(1)
    assert await line.hass.config_entries.async_reload(line.entry.entry_id)
    await line.hass.async_block_till_done()
    assert [attrs["event_type"] for attrs in fired] == ["missed_call"]
    assert fired[0]["reason"] == "line stopped"
    assert line.state(EVENT) == STATE_UNKNOWN


async def test_ending_twice_fires_once(line: Line) -> None:
    """A call that ended already is not ended again."""
    await line.emit(call_event(CallState.RINGING))
    fired = _record_events(line.hass)
    line.coordinator.async_end_calls("engine stopped")
    line.coordinator.async_end_calls("engine stopped")
    await line.hass.async_block_till_done()
    assert [attrs["event_type"] for attrs in fired] == ["missed_call"]


async def test_engine_restart_does_not_show_the_last_event_again(line: Line) -> None:
    """The engine dies mid-call and restarts: the call's end is the one new event; the
    entity keeps it quietly while the engine is down and when it is back (no
    unavailable and back, which showed call_ended again as a new state)."""
    await line.emit(call_event(CallState.RINGING), call_event(CallState.ANSWERED))
    states: list[str] = []

    @callback
    def changed(event: Event[Any]) -> None:
        if event.data["entity_id"] == EVENT and event.data["new_state"] is not None:
            states.append(event.data["new_state"].state)

    line.hass.bus.async_listen("state_changed", changed)
    fired = _record_events(line.hass)
    line.freezer.tick(10)
    await line.die()
    assert [attrs["event_type"] for attrs in fired] == ["call_ended"]
    ended = line.state(EVENT)
    await line.advance(60)  # the restart (back-off) and its registration
    assert line.coordinator.data.status is RegState.REGISTERED
    assert line.coordinator.restarts == 1
    assert states == [ended]  # one state change: the call's end
    assert line.state(EVENT) == ended
    state = line.hass.states.get(EVENT)
    assert state is not None
    assert state.attributes["event_type"] == "call_ended"
