"""Sensors: line status, call state, last caller."""

from __future__ import annotations

from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from syrupy.assertion import SnapshotAssertion

from custom_components.kpn_voip.kpn_line.protocol import CallState, Direction, RegState

from .conftest import FakeEngineFactory, call_event, registration

CALL_STATE = "sensor.thuis_call_state"
LAST_CALLER = "sensor.thuis_last_caller"
STATUS = "sensor.thuis_line_status"


@pytest.fixture(autouse=True)
def _only_sensors() -> None:
    with patch("custom_components.kpn_voip.PLATFORMS", [Platform.SENSOR]):
        yield


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def test_sensors(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Every sensor, after one incoming call (snapshot)."""
    freezer.move_to("2026-11-25 20:00:00+00:00")
    await _setup(hass, mock_config_entry)
    fake_engine.last.emit(call_event(CallState.RINGING))
    await hass.async_block_till_done()
    await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)
    device = device_registry.async_get_device_by_identifier(
        ("kpn_voip", mock_config_entry.entry_id), mock_config_entry.entry_id
    )
    assert device == snapshot(name="device")


async def test_call_state_follows_calls(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """idle -> ringing -> talking -> idle; dialing for outgoing calls."""
    await _setup(hass, mock_config_entry)
    engine = fake_engine.last
    assert hass.states.get(CALL_STATE).state == "idle"
    assert hass.states.get(LAST_CALLER).state == "unknown"
    for event, expected in (
        (call_event(CallState.RINGING), "ringing"),
        (call_event(CallState.ANSWERED), "talking"),
        # K24: a waiting call does not hide the call in progress.
        (call_event(CallState.RINGING, call_id="c2", waiting=True, number=None), "talking"),
        (call_event(CallState.ENDED, call_id="c2", missed=True), "talking"),
        (call_event(CallState.ENDED, duration=12.5), "idle"),
        (call_event(CallState.DIALING, call_id="o1", direction=Direction.OUTGOING), "dialing"),
        (call_event(CallState.ALERTING, call_id="o1", direction=Direction.OUTGOING), "dialing"),
        (call_event(CallState.ANSWERED, call_id="o1", direction=Direction.OUTGOING), "talking"),
        (call_event(CallState.ENDED, call_id="o1", direction=Direction.OUTGOING), "idle"),
    ):
        engine.emit(event)
        await hass.async_block_till_done()
        assert hass.states.get(CALL_STATE).state == expected, event
    # The waiting call had no number: the last caller is the one without it.
    state = hass.states.get(LAST_CALLER)
    assert state.attributes["e164"] is None


async def test_last_caller_anonymous(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """K16: an anonymous caller has no number, and says so."""
    await _setup(hass, mock_config_entry)
    fake_engine.last.emit(
        call_event(CallState.RINGING, number=None, national=None, name=None, anonymous=True)
    )
    await hass.async_block_till_done()
    state = hass.states.get(LAST_CALLER)
    assert state.state == "unknown"
    assert state.attributes["anonymous"] is True
    assert state.attributes["name"] is None


async def test_foreign_caller_shown_as_e164_without_national(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """A caller ID with no national form is shown as presented."""
    await _setup(hass, mock_config_entry)
    fake_engine.last.emit(call_event(CallState.RINGING, number="+4930123456", national=None))
    await hass.async_block_till_done()
    assert hass.states.get(LAST_CALLER).state == "+4930123456"


async def test_line_status_states(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """The status sensor shows every registration state and stays available."""
    await _setup(hass, mock_config_entry)
    engine = fake_engine.last
    for state in (RegState.REGISTERING, RegState.UNREACHABLE, RegState.REGISTERED):
        engine.emit(registration(state))
        await hass.async_block_till_done()
        assert hass.states.get(STATUS).state == state.value
