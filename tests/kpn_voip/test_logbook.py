"""The logbook: one entry per call event, worded in each viewer's language.

Home Assistant's recorder and logbook run here: the entries are what the
logbook's websocket API gives the frontend.  The Call event entity's state
change is the one entry of a call event; it carries the event type
(`attributes.event_type`), which the frontend shows as the entity's
translation of it (state_attributes.event_type.state.<type>) in the viewer's
language.  The `kpn_voip_call` bus event is not described: a description is
plain text in the system language, and gave every call event a second entry.
"""

from __future__ import annotations

from dataclasses import replace
import json
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.kpn_voip.const import DOMAIN
from custom_components.kpn_voip.event import DESCRIPTION
from custom_components.kpn_voip.kpn_line.protocol import CallState, DtmfEvent

from .conftest import INTEGRATION, FakeEngineFactory, call_event, setup_entry

EVENT = "event.thuis_call"


@pytest.fixture(autouse=True)
def _auto_enable_custom_integrations(recorder_mock: Any, enable_custom_integrations: None) -> None:
    """The recorder (which the logbook needs) before Home Assistant starts, then as
    tests/conftest.py: the custom integration."""


@pytest.fixture
async def logbook(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
) -> FakeEngineFactory:
    """The recorder, the logbook and the line (on the scripted engine)."""
    assert await async_setup_component(hass, "logbook", {})
    await setup_entry(hass, mock_config_entry)
    return fake_engine


async def _entries(hass: HomeAssistant, ws: WebSocketGenerator, start: str) -> list[dict[str, Any]]:
    """The logbook's entries since `start`, as the frontend gets them."""
    await async_wait_recording_done(hass)
    client = await ws(hass)
    await client.send_json({"id": 1, "type": "logbook/get_events", "start_time": start})
    response = await client.receive_json()
    assert response["success"], response
    entries: list[dict[str, Any]] = response["result"]
    return entries


async def test_one_logbook_entry_per_call_event(
    hass: HomeAssistant, logbook: FakeEngineFactory, hass_ws_client: WebSocketGenerator
) -> None:
    """Ringing, missed, a refused call, a digit, an answered call that ends: one entry
    each, the Call entity's, with the event type for the frontend to word; none from the
    kpn_voip_call bus event (which still fires, for event triggers)."""
    fired: list[str] = []
    hass.bus.async_listen("kpn_voip_call", lambda event: fired.append(event.data["event_type"]))
    start = dt_util.utcnow().isoformat()
    engine = logbook.last
    events = [
        call_event(CallState.RINGING, name="Jan Jansen"),
        call_event(CallState.ENDED, name="Jan Jansen", missed=True, duration=0),
        replace(call_event(CallState.ENDED, call_id="c2", duration=0), code=603, refused="blocked"),
        call_event(CallState.RINGING, call_id="c3"),
        call_event(CallState.ANSWERED, call_id="c3"),
        DtmfEvent(call_id="c3", digit="5"),
        call_event(CallState.ALERTING, call_id="c4"),  # no event: no entry
        call_event(CallState.ENDED, call_id="c3", duration=4.0),
    ]
    for event in events:
        engine.emit(event)
        await hass.async_block_till_done()
    entries = await _entries(hass, hass_ws_client, start)
    ours = [e for e in entries if e.get("entity_id") == EVENT or e.get("domain") == DOMAIN]
    assert [e.get("attributes", {}).get("event_type") for e in ours] == [
        "incoming_call",
        "missed_call",
        "rejected_call",
        "incoming_call",
        "answered",
        "dtmf",
        "call_ended",
    ]
    assert all("message" not in e for e in ours)  # the frontend words them
    assert fired == [
        "incoming_call",
        "missed_call",
        "rejected_call",
        "incoming_call",
        "answered",
        "call_ended",
    ]


@pytest.mark.parametrize("language", ["en", "nl"])
def test_every_event_type_is_translated(language: str) -> None:
    """What the frontend shows for each entry: the event type's translation, en and nl."""
    translations = json.loads(
        (Path(INTEGRATION) / "translations" / f"{language}.json").read_text(encoding="utf-8")
    )
    states = translations["entity"]["event"]["call"]["state_attributes"]["event_type"]["state"]
    assert set(states) == set(DESCRIPTION.event_types or [])
    assert all(text.strip() for text in states.values())
