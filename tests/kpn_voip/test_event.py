"""The call event entity."""

from __future__ import annotations

from collections.abc import Generator
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNKNOWN, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from syrupy.assertion import SnapshotAssertion

from custom_components.kpn_voip.kpn_line.protocol import CallState, Direction

from .conftest import FakeEngineFactory, call_event

EVENT = "event.thuis_call"


@pytest.fixture(autouse=True)
def _only_events() -> Generator[None]:
    with patch("custom_components.kpn_voip.PLATFORMS", [Platform.EVENT]):
        yield


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def test_event_entity(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The entity after an incoming call (snapshot)."""
    freezer.move_to("2026-11-25 20:00:00+00:00")
    await _setup(hass, mock_config_entry)
    assert hass.states.get(EVENT).state == STATE_UNKNOWN
    fake_engine.last.emit(call_event(CallState.RINGING))
    await hass.async_block_till_done()
    await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)


async def _fired(hass: HomeAssistant, engine, event) -> dict:  # type: ignore[no-untyped-def]
    before = hass.states.get(EVENT).state
    engine.emit(event)
    await hass.async_block_till_done()
    state = hass.states.get(EVENT)
    assert state.state != before, "no event fired"
    return dict(state.attributes)


async def test_missed_call(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Ringing then ended unanswered: incoming_call, then missed_call only."""
    await _setup(hass, mock_config_entry)
    engine = fake_engine.last
    attrs = await _fired(hass, engine, call_event(CallState.RINGING))
    assert attrs["event_type"] == "incoming_call"
    assert attrs["number"] == "+31612345678"
    assert attrs["national"] == "0612345678"
    assert attrs["name"] == "Jan"
    assert attrs["anonymous"] is False
    assert attrs["direction"] == "incoming"
    assert "duration" not in attrs

    freezer.tick(1)
    attrs = await _fired(hass, engine, call_event(CallState.ENDED, missed=True, duration=0))
    assert attrs["event_type"] == "missed_call"
    assert attrs["duration"] == 0
    assert attrs["code"] == 487


async def test_answered_and_ended(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An answered call fires answered, then call_ended with its duration."""
    await _setup(hass, mock_config_entry)
    engine = fake_engine.last
    await _fired(hass, engine, call_event(CallState.RINGING))
    freezer.tick(1)
    attrs = await _fired(hass, engine, call_event(CallState.ANSWERED))
    assert attrs["event_type"] == "answered"
    freezer.tick(1)
    attrs = await _fired(hass, engine, call_event(CallState.ENDED, duration=42.0))
    assert attrs["event_type"] == "call_ended"
    assert attrs["duration"] == 42.0


async def test_outgoing_call_events(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Dialing and alerting fire nothing; the end of an outgoing call does."""
    await _setup(hass, mock_config_entry)
    engine = fake_engine.last
    outgoing = {"call_id": "o1", "direction": Direction.OUTGOING, "name": None}
    engine.emit(call_event(CallState.DIALING, **outgoing))
    engine.emit(call_event(CallState.ALERTING, **outgoing))
    await hass.async_block_till_done()
    assert hass.states.get(EVENT).state == STATE_UNKNOWN
    attrs = await _fired(hass, engine, call_event(CallState.ENDED, duration=0, **outgoing))
    assert attrs["event_type"] == "call_ended"
    assert attrs["direction"] == "outgoing"


async def test_anonymous_waiting_call(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """K16 anonymous caller and K24 waiting flag reach the event."""
    await _setup(hass, mock_config_entry)
    attrs = await _fired(
        hass,
        fake_engine.last,
        call_event(
            CallState.RINGING, number=None, national=None, name=None, anonymous=True, waiting=True
        ),
    )
    assert attrs["event_type"] == "incoming_call"
    assert attrs["anonymous"] is True
    assert attrs["number"] is None
    assert attrs["waiting"] is True


async def test_listener_removed_on_unload(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """Unloading removes the entity's call listener."""
    await _setup(hass, mock_config_entry)
    coordinator = mock_config_entry.runtime_data
    assert len(coordinator._call_listeners) == 1
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    assert coordinator._call_listeners == []
