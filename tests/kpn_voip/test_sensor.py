"""Sensors: line status, call state, last caller."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import snapshot_platform
from syrupy.assertion import SnapshotAssertion

from custom_components.kpn_voip.kpn_line.protocol import CallState, Direction, RegState

from .conftest import Line, call_event, registration

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
    # Not "unknown", which is "no call yet" (issue 12): the hidden caller, in words.
    assert state.state == "Hidden number"
    assert state.attributes["anonymous"] is True
    assert state.attributes["name"] is None


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
