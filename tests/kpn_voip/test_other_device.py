"""K7: another device registered on the line's account raises a repair issue.

The engine counts the bindings of other devices that the registrar's 2xx lists
(`other_bindings` of a `registered` event; the wire proof is
tests/kpn_line/test_engine_k7.py).  The line stays `registered` (it is), and the
user is told to switch Vast Bellen off in the KPN Box: a repair issue while any
other device is listed, gone when none is.  Fake engine: HA side only.
"""

from __future__ import annotations

from dataclasses import replace
import logging
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.kpn_voip.const import DOMAIN, RESTART_BACKOFF_INITIAL
from custom_components.kpn_voip.issues import other_device_issue_id
from custom_components.kpn_voip.kpn_line.protocol import RegistrationEvent, RegState

from .conftest import FakeEngineFactory, Line, registration, setup_entry

STATUS = "sensor.thuis_line_status"


def _registered(other_bindings: int) -> RegistrationEvent:
    return replace(registration(RegState.REGISTERED, 200), other_bindings=other_bindings)


def _seen(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    """What the user sees: the line status and the entry's K7 issue (None if none)."""
    issue = ir.async_get(hass).async_get_issue(DOMAIN, other_device_issue_id(entry))
    state = hass.states.get(STATUS)
    return {
        "status": None if state is None else state.state,
        "issue": None
        if issue is None
        else {
            "translation_key": issue.translation_key,
            "translation_placeholders": issue.translation_placeholders,
            "severity": issue.severity,
            "is_fixable": issue.is_fixable,
            "is_persistent": issue.is_persistent,
        },
    }


async def test_k7_issue_while_another_device_is_listed(
    line: Line,
    hass_client: ClientSessionGenerator,
    snapshot: SnapshotAssertion,
    caplog: Any,
) -> None:
    """K7: a refresh's 2xx lists another device: issue raised (status stays registered,
    diagnostics count it); a later one lists two; one listing none clears it."""
    hass, entry = line.hass, line.entry
    assert _seen(hass, entry) == {"status": "registered", "issue": None}
    caplog.set_level(logging.INFO)

    await line.emit(_registered(1))
    assert _seen(hass, entry) == snapshot(name="one_other_device")
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["line"]["other_devices"] == 1

    await line.emit(_registered(2))
    assert _seen(hass, entry) == snapshot(name="two_other_devices")
    warnings = [r for r in caplog.records if "other device" in r.getMessage()]
    assert [r.levelno for r in warnings] == [logging.WARNING]  # once, not per refresh

    await line.emit(_registered(0))
    assert _seen(hass, entry) == {"status": "registered", "issue": None}
    assert line.coordinator.other_devices == 0
    assert "no other device registered any more" in caplog.text


async def test_k7_issue_kept_until_a_registration_says_otherwise(line: Line) -> None:
    """K7: only a 2xx lists the bindings: while the line is unreachable or registering the
    last answer stands; the next `registered` decides."""
    hass, entry = line.hass, line.entry
    await line.emit(_registered(1))
    await line.emit(registration(RegState.UNREACHABLE, 408), registration(RegState.REGISTERING))
    assert _seen(hass, entry)["issue"] is not None
    assert _seen(hass, entry)["status"] == "registering"
    await line.emit(_registered(0))
    assert _seen(hass, entry) == {"status": "registered", "issue": None}


async def test_k7_issue_from_the_first_registration_and_gone_on_unload(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """K7: the setup's own first registration already lists another device (the KPN Box
    still has Vast Bellen on): the issue comes with the setup; unloading the line drops it."""
    fake_engine.first_other_bindings = 1
    await setup_entry(hass, mock_config_entry)
    seen = _seen(hass, mock_config_entry)
    assert seen["status"] == "registered"
    assert seen["issue"] is not None
    assert seen["issue"]["translation_placeholders"]["count"] == "1"
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert _seen(hass, mock_config_entry)["issue"] is None


async def test_k7_a_restarted_engine_gets_the_bindings_the_dead_one_left(line: Line) -> None:
    """K7: the engine dies; the restart hands its successor the Contacts it registered
    (`leftover_contacts`), which the new engine removes instead of reporting them as another
    device should it take another port (the wire proof: tests/kpn_line/test_engine_k7.py).
    The first engine of the entry gets none."""
    first = line.engine
    assert first.previous_contacts == ()
    first.leftover_contacts = ("192.0.2.7:61234",)
    await line.die()
    await line.advance(RESTART_BACKOFF_INITIAL + 1)
    second = line.engine
    assert second is not first
    assert second.previous_contacts == ("192.0.2.7:61234",)
    assert line.state(STATUS) == "registered"
    # It died before registering: its own leftovers are what it was given.
    second.leftover_contacts = second.previous_contacts
    await line.die()
    await line.advance(2 * RESTART_BACKOFF_INITIAL + 1)
    assert line.engine.previous_contacts == ("192.0.2.7:61234",)
