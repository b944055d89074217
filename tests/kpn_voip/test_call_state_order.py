"""The order in which a call event reaches Home Assistant (issue 11).

The call state sensor is written before every other entity of the line (an
INVITE -> its `ringing` is the figure benchmarks/bench_ha.py measures); the
other entities follow, the history after the state, and the `kpn_voip_call`
event comes after all of it, so what it triggers sees every state ("state
first").
"""

from __future__ import annotations

from typing import Any

from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, callback

from custom_components.kpn_voip.const import EVENT_CALL
from custom_components.kpn_voip.kpn_line.protocol import CallState

from .conftest import Line, call_event

CALL_STATE = "sensor.thuis_call_state"
LAST_CALLER = "sensor.thuis_last_caller"
MISSED = "sensor.thuis_missed_calls"


def _record(line: Line) -> list[tuple[str, Any]]:
    """(entity id, state) of every state write and ("bus", event_type) of every call
    event, in the order they happen (@callback listeners run inside the fire)."""
    seen: list[tuple[str, Any]] = []

    @callback
    def state_changed(event: Event[Any]) -> None:
        new = event.data["new_state"]
        if new is not None:
            seen.append((event.data["entity_id"], new.state))

    @callback
    def call(event: Event[Any]) -> None:
        seen.append(("bus", event.data["event_type"]))

    line.hass.bus.async_listen(EVENT_STATE_CHANGED, state_changed)
    line.hass.bus.async_listen(EVENT_CALL, call)
    return seen


async def test_the_call_state_sensor_writes_first(line: Line) -> None:
    """Ringing: the call state first, then the last caller, then the bus event."""
    seen = _record(line)
    await line.emit(call_event(CallState.RINGING))
    assert seen[0] == (CALL_STATE, "ringing")
    assert seen.index((LAST_CALLER, "0612345678")) < seen.index(("bus", "incoming_call"))
    # Nothing else wrote in between: only what changed writes (entity._shown).
    assert [entity for entity, _ in seen].count(CALL_STATE) == 1


async def test_a_missed_call_is_counted_before_its_event(line: Line) -> None:
    """The history is kept after the state, before the call's event: what the event
    triggers sees the call state idle and the missed count up."""
    await line.emit(call_event(CallState.RINGING))
    seen = _record(line)
    await line.emit(call_event(CallState.ENDED, missed=True, duration=0.0))
    assert seen[0] == (CALL_STATE, "idle")
    assert seen.index((MISSED, "1")) < seen.index(("bus", "missed_call"))
    assert line.coordinator.calls.missed == 1
    assert line.coordinator.calls.last is not None
    assert line.coordinator.calls.last.call_id == "c1"


async def test_the_call_status_listener_goes_with_its_entity(line: Line) -> None:
    """The call state sensor's early listener is removed when the entry unloads."""
    coordinator = line.coordinator
    assert len(coordinator._call_status_listeners) == 1
    await line.hass.config_entries.async_unload(line.entry.entry_id)
    await line.hass.async_block_till_done()
    assert coordinator._call_status_listeners == []
