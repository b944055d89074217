"""Do-not-disturb switch and the clear-missed-calls button (issue 12)."""

from __future__ import annotations

from unittest.mock import AsyncMock

from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN, SERVICE_PRESS
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    Platform,
)
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import snapshot_platform
from syrupy.assertion import SnapshotAssertion

from custom_components.kpn_voip.const import RESTART_BACKOFF_INITIAL
from custom_components.kpn_voip.kpn_line.client import EngineError
from custom_components.kpn_voip.kpn_line.policy import CallPolicy
from custom_components.kpn_voip.kpn_line.protocol import CallState

from .conftest import Line, call_event

DND = "switch.thuis_do_not_disturb"
CLEAR = "button.thuis_clear_missed_calls"
MISSED = "sensor.thuis_missed_calls"


@pytest.fixture
def platforms() -> list[Platform]:
    """Switch, button and the missed calls sensor."""
    return [Platform.BUTTON, Platform.SENSOR, Platform.SWITCH]


@pytest.mark.parametrize("platforms", [[Platform.BUTTON], [Platform.SWITCH]])
async def test_entities(
    line: Line, entity_registry: er.EntityRegistry, snapshot: SnapshotAssertion
) -> None:
    """The switch, the button (snapshots; the missed calls sensor is in test_sensor)."""
    await snapshot_platform(line.hass, entity_registry, snapshot, line.entry.entry_id)


async def test_do_not_disturb(line: Line) -> None:
    """On/off is kept and goes to the engine: at once, or with the next engine's start."""
    first = line.engine
    assert first.policies == [CallPolicy()]  # with `start`: every call rings
    assert line.state(DND) == STATE_OFF
    await line.hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: DND}, blocking=True
    )
    assert line.state(DND) == STATE_ON
    assert first.policies[-1] == CallPolicy(do_not_disturb=True)
    await line.die()
    assert line.state(DND) == STATE_ON  # usable while the engine is down
    await line.hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: DND}, blocking=True
    )
    assert line.state(DND) == STATE_OFF
    assert len(first.policies) == 2  # the dead engine got nothing
    await line.advance(RESTART_BACKOFF_INITIAL + 1)
    assert line.engine is not first
    assert line.engine.policies == [CallPolicy()]


async def test_do_not_disturb_engine_error(line: Line) -> None:
    """An engine that refuses the policy: a clear error, the switch stays as stored."""
    line.engine.set_call_policy = AsyncMock(  # type: ignore[method-assign]
        side_effect=EngineError("internal", "boom")
    )
    with pytest.raises(HomeAssistantError):
        await line.hass.services.async_call(
            SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: DND}, blocking=True
        )


async def test_clear_missed_calls(line: Line) -> None:
    """Missed calls count up; the button sets the count to 0 and says since when."""
    assert line.state(MISSED) == "0"
    await line.emit(
        call_event(CallState.ENDED, missed=True, duration=0),
        call_event(CallState.ENDED, call_id="c2", missed=True, duration=0),
        call_event(CallState.ENDED, call_id="c3", duration=5),  # answered: not missed
    )
    assert line.state(MISSED) == "2"
    line.freezer.tick(60)
    await line.hass.services.async_call(
        BUTTON_DOMAIN, SERVICE_PRESS, {ATTR_ENTITY_ID: CLEAR}, blocking=True
    )
    state = line.hass.states.get(MISSED)
    assert state is not None
    assert state.state == "0"
    assert state.attributes["since"] == "2026-11-25T20:01:00+00:00"
    assert len(line.coordinator.calls.history) == 3  # the history keeps the calls
