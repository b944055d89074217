"""Diagnostics: useful, and without secrets (K9)."""

from __future__ import annotations

from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.kpn_voip.kpn_line.protocol import CallState

from .conftest import NUMBER, PASSWORD, USERNAME, Line, call_event


async def test_diagnostics(
    line: Line, hass_client: ClientSessionGenerator, snapshot: SnapshotAssertion
) -> None:
    """Password, user name and numbers are redacted."""
    await line.emit(call_event(CallState.RINGING, at=1764100800.0))

    diagnostics = await get_diagnostics_for_config_entry(line.hass, hass_client, line.entry)
    assert diagnostics == snapshot
    text = str(diagnostics)
    for secret in (PASSWORD, USERNAME, NUMBER, "12345678", "0612345678", "Jan"):
        assert secret not in text
