"""The call event entity."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from homeassistant.const import STATE_UNKNOWN, Platform
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import snapshot_platform
from syrupy.assertion import SnapshotAssertion

from custom_components.kpn_voip.kpn_line.protocol import (
    CallEvent,
    CallState,
    Direction,
    EndReason,
)

from .conftest import Line, call_event

EVENT = "event.thuis_call"


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the event platform."""
    return [Platform.EVENT]


async def test_event_entity(
    line: Line, entity_registry: er.EntityRegistry, snapshot: SnapshotAssertion
) -> None:
    """The entity after an incoming call (snapshot)."""
    assert line.state(EVENT) == STATE_UNKNOWN
    await line.emit(call_event(CallState.RINGING))
    await snapshot_platform(line.hass, entity_registry, snapshot, line.entry.entry_id)


async def _fired(line: Line, event: CallEvent) -> dict[str, Any]:
    """The attributes of the event the entity fires for `event` (one second later)."""
    before = line.state(EVENT)
    line.freezer.tick(1)
    await line.emit(event)
    state = line.hass.states.get(EVENT)
    assert state is not None
    assert state.state != before, "no event fired"
    return dict(state.attributes)


async def test_missed_call(line: Line) -> None:
    """Ringing then ended unanswered: incoming_call, then missed_call only."""
    attrs = await _fired(line, call_event(CallState.RINGING))
    assert attrs["event_type"] == "incoming_call"
    assert attrs["number"] == "+31612345678"
    assert attrs["national"] == "0612345678"
    assert attrs["name"] == "Jan"
    assert attrs["anonymous"] is False
    assert attrs["direction"] == "incoming"
    assert "duration" not in attrs

    attrs = await _fired(line, call_event(CallState.ENDED, missed=True, duration=0))
    assert attrs["event_type"] == "missed_call"
    assert attrs["duration"] == 0
    assert attrs["code"] == 487


async def test_answered_and_ended(line: Line) -> None:
    """An answered call fires answered, then call_ended with its duration."""
    await _fired(line, call_event(CallState.RINGING))
    attrs = await _fired(line, call_event(CallState.ANSWERED))
    assert attrs["event_type"] == "answered"
    attrs = await _fired(line, call_event(CallState.ENDED, duration=42.0))
    assert attrs["event_type"] == "call_ended"
    assert attrs["duration"] == 42.0


async def test_answered_elsewhere_is_call_ended_not_missed(line: Line) -> None:
    """RFC 3326: a CANCEL with Reason SIP;cause=200 (answered elsewhere) fires call_ended
    with the far end's reason; a Q.850 reason on a missed call still fires missed_call."""
    await _fired(line, call_event(CallState.RINGING))
    elsewhere = EndReason("SIP", 200, "Call completed elsewhere")
    attrs = await _fired(line, call_event(CallState.ENDED, duration=0, end_reason=elsewhere))
    assert attrs["event_type"] == "call_ended"
    assert attrs["answered_elsewhere"] is True
    assert attrs["end_reason"] == {
        "protocol": "SIP",
        "cause": 200,
        "text": "Call completed elsewhere",
    }
    await _fired(line, call_event(CallState.RINGING, call_id="c2"))
    hung_up = EndReason("Q.850", 16)
    attrs = await _fired(
        line, call_event(CallState.ENDED, call_id="c2", missed=True, end_reason=hung_up)
    )
    assert attrs["event_type"] == "missed_call"
    assert attrs["answered_elsewhere"] is False
    assert attrs["end_reason"] == {"protocol": "Q.850", "cause": 16, "text": None}


async def test_outgoing_call_events(line: Line) -> None:
    """Dialing and alerting fire nothing; the end of an outgoing call does."""
    outgoing: dict[str, Any] = {"call_id": "o1", "direction": Direction.OUTGOING, "name": None}
    await line.emit(
        call_event(CallState.DIALING, **outgoing), call_event(CallState.ALERTING, **outgoing)
    )
    assert line.state(EVENT) == STATE_UNKNOWN
    attrs = await _fired(line, call_event(CallState.ENDED, duration=0, **outgoing))
    assert attrs["event_type"] == "call_ended"
    assert attrs["direction"] == "outgoing"


async def test_anonymous_waiting_call(line: Line) -> None:
    """K16 anonymous caller and K24 waiting flag reach the event."""
    attrs = await _fired(
        line,
        call_event(
            CallState.RINGING, number=None, national=None, name=None, anonymous=True, waiting=True
        ),
    )
    assert attrs["event_type"] == "incoming_call"
    assert attrs["anonymous"] is True
    assert attrs["number"] is None
    assert attrs["waiting"] is True


async def test_listener_removed_on_unload(line: Line) -> None:
    """Unloading removes the entity's call listener."""
    coordinator = line.coordinator
    assert len(coordinator._call_listeners) == 1
    await line.hass.config_entries.async_unload(line.entry.entry_id)
    assert coordinator._call_listeners == []


async def test_refused_call_fires_rejected_call_only(line: Line) -> None:
    """A call refused before it rang (issue 12): rejected_call with why, never incoming_call."""
    refused = replace(
        call_event(CallState.ENDED, duration=0), code=603, reason="Decline", refused="blocked"
    )
    attrs = await _fired(line, refused)
    assert attrs["event_type"] == "rejected_call"
    assert attrs["refused"] == "blocked"
    assert attrs["code"] == 603
    assert attrs["number"] == "+31612345678"
