"""Sensors: line status, call state, last caller."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.template import Template
from homeassistant.helpers.translation import async_get_translations
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    mock_restore_cache_with_extra_data,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.kpn_voip.const import DOMAIN
from custom_components.kpn_voip.kpn_line.protocol import CallState, Direction, RegState

from .conftest import Line, call_event, registration, setup_entry

CALL_STATE = "sensor.thuis_call_state"
LAST_CALLER = "sensor.thuis_last_caller"
STATUS = "sensor.thuis_line_status"


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the sensor platform."""
    return [Platform.SENSOR]


async def test_sensors(
    line: Line,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Every sensor, after one incoming call (snapshot)."""
    await line.emit(call_event(CallState.RINGING))
    await snapshot_platform(line.hass, entity_registry, snapshot, line.entry.entry_id)
    device = device_registry.async_get_device_by_identifier(
        ("kpn_voip", line.entry.entry_id), line.entry.entry_id
    )
    assert device == snapshot(name="device")


async def test_call_state_follows_calls(line: Line) -> None:
    """idle -> ringing -> talking -> idle; dialing for outgoing calls."""
    assert line.state(CALL_STATE) == "idle"
    assert line.state(LAST_CALLER) == "unknown"
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
        await line.emit(event)
        assert line.state(CALL_STATE) == expected, event
    # The waiting call had no number: the last caller is the one without it.
    state = line.hass.states.get(LAST_CALLER)
    assert state is not None
    assert state.attributes["e164"] is None


async def test_last_caller_anonymous(line: Line) -> None:
    """K16: an anonymous caller has no number, and says so."""
    await line.emit(
        call_event(CallState.RINGING, number=None, national=None, name=None, anonymous=True)
    )
    state = line.hass.states.get(LAST_CALLER)
    assert state is not None
    # Not "unknown", which is "no call yet" (issue 12): the hidden caller, as a state key
    # the frontend words in the viewer's language (the entity's translation_key).
    assert state.state == "hidden_number"
    assert state.attributes["anonymous"] is True
    assert state.attributes["name"] is None
    key = f"component.{DOMAIN}.entity.sensor.last_caller.state.hidden_number"
    for language, text in (("en", "Hidden number"), ("nl", "Verborgen nummer")):
        assert (await async_get_translations(line.hass, language, "entity", [DOMAIN]))[key] == text
    # Templates get it in Home Assistant's language (state_translated).
    rendered = Template(f"{{{{ state_translated('{LAST_CALLER}') }}}}", line.hass).async_render()
    assert rendered == "Hidden number"


async def test_last_caller_without_a_number_shows_the_name(line: Line) -> None:
    """A caller ID that is no phone number (`sip:abc@...`) but has a name shows the name:
    it read "unknown", which looks like no call yet."""
    await line.emit(call_event(CallState.RINGING, number=None, national=None, name="Intercom"))
    assert line.state(LAST_CALLER) == "Intercom"


async def test_foreign_caller_shown_as_e164_without_national(line: Line) -> None:
    """A caller ID with no national form is shown as presented."""
    await line.emit(call_event(CallState.RINGING, number="+4930123456", national=None))
    assert line.state(LAST_CALLER) == "+4930123456"


async def test_line_status_states(line: Line) -> None:
    """The status sensor shows every registration state and stays available."""
    for state in (RegState.REGISTERING, RegState.UNREACHABLE, RegState.REGISTERED):
        await line.emit(registration(state))
        assert line.state(STATUS) == state.value


def _shown(hass: HomeAssistant, entity_id: str) -> tuple[str, dict[str, Any]]:
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state, dict(state.attributes)


@pytest.mark.parametrize(
    "caller",
    [
        {"name": "Oma"},
        {"number": None, "national": None, "name": None, "anonymous": True},
    ],
    ids=["number", "hidden"],
)
async def test_last_caller_survives_reload(
    hass: HomeAssistant, line: Line, caller: dict[str, Any]
) -> None:
    """A reload kept the missed count and the calendar but the last caller became
    "unknown" ("no call yet"): it comes back, state and attributes as before."""
    await line.emit(call_event(CallState.RINGING, **caller))
    before = _shown(hass, LAST_CALLER)
    assert before[0] != "unknown"
    await hass.config_entries.async_reload(line.entry.entry_id)
    await hass.async_block_till_done()
    assert _shown(hass, LAST_CALLER) == before
    # One source of truth: the new coordinator's state holds it (diagnostics too).
    assert line.coordinator.data.last_caller is not None
    # A new call replaces it as before.
    await line.emit(
        call_event(CallState.RINGING, call_id="c2", number="+31201234567", national="0201234567")
    )
    assert line.state(LAST_CALLER) == "0201234567"


STORED = {
    "number": "+31612345678",
    "national": "06 12345678",
    "name": None,
    "anonymous": False,
    "time": "2026-11-24T18:30:00+00:00",
}


async def test_last_caller_restored_after_restart(
    hass: HomeAssistant,
    fake_engine: Any,
    mock_config_entry: MockConfigEntry,
    snapshot: SnapshotAssertion,
) -> None:
    """After a Home Assistant restart the last caller comes from the restore state."""
    mock_restore_cache_with_extra_data(
        hass, [(State(LAST_CALLER, "06 12345678", {"number": "+31612345678"}), STORED)]
    )
    await setup_entry(hass, mock_config_entry)
    assert _shown(hass, LAST_CALLER) == snapshot


@pytest.mark.parametrize(
    "extra",
    [{}, {"time": "not a time"}, {"time": None}, {"number": "+31612345678"}],
)
async def test_last_caller_damaged_restore_data(
    hass: HomeAssistant, fake_engine: Any, mock_config_entry: MockConfigEntry, extra: Any
) -> None:
    """Restore data that is not a last caller restores nothing (no crash)."""
    mock_restore_cache_with_extra_data(hass, [(State(LAST_CALLER, "x"), extra)])
    await setup_entry(hass, mock_config_entry)
    assert hass.states.get(LAST_CALLER) is not None
    assert mock_config_entry.runtime_data.data.last_caller is None


async def test_last_caller_newer_call_wins_over_restore(line: Line) -> None:
    """A call that rang before the sensor's restore is newer: it is kept."""
    await line.emit(call_event(CallState.RINGING, number="+31201234567", national="020 1234567"))
    last = line.coordinator.data.last_caller
    assert last is not None
    line.coordinator.restore_last_caller(replace(last, time=last.time.replace(year=2020)))
    assert line.coordinator.data.last_caller is last
