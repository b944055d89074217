"""Diagnostics: useful, and without secrets (K9)."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.kpn_voip.kpn_line.protocol import CallState

from .conftest import NUMBER, PASSWORD, USERNAME, FakeEngineFactory, call_event


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    snapshot: SnapshotAssertion,
) -> None:
    """Password, user name and numbers are redacted."""
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    fake_engine.last.emit(call_event(CallState.RINGING, at=1764100800.0))
    await hass.async_block_till_done()

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, mock_config_entry)
    assert diagnostics == snapshot
    text = str(diagnostics)
    for secret in (PASSWORD, USERNAME, NUMBER, "12345678", "0612345678", "Jan"):
        assert secret not in text
