"""Diagnostics: useful, and without secrets (K9)."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.kpn_voip.const import CONF_ALLOW, CONF_BLOCK
from custom_components.kpn_voip.kpn_line.protocol import CallState, ErrorCode, ErrorEvent

from .conftest import (
    NUMBER,
    PASSWORD,
    USERNAME,
    FakeEngineFactory,
    Line,
    call_event,
    setup_entry,
)


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


async def test_diagnostics_count_the_block_and_allow_lists(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """The block and allow lists are other people's numbers: diagnostics show how many
    entries they have, never the numbers (they used to be in the options as typed)."""
    block = ["+31687650001", "+31900*"]
    allow = ["+31687650002"]
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, options={CONF_BLOCK: block, CONF_ALLOW: allow}
    )
    await setup_entry(hass, mock_config_entry)

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, mock_config_entry)
    options = diagnostics["entry"]["options"]
    assert (options[CONF_BLOCK], options[CONF_ALLOW]) == (2, 1)
    text = str(diagnostics)
    for number in (*block, *allow, "687650001", "687650002"):
        assert number not in text


async def test_diagnostics_count_invites_refused_from_the_proxys_network(
    line: Line, hass_client: ClientSessionGenerator
) -> None:
    """Issue 9 item 8: each INVITE the engine refused from the proxy's network (not the
    address the line registered through) is counted; other strangers are not."""
    refused = ErrorEvent(
        code=ErrorCode.REJECTED_PROXY_NETWORK, message="INVITE from 10.99.0.5 refused (403)"
    )
    stranger = ErrorEvent(code=ErrorCode.REJECTED_SOURCE, message="INVITE from 192.0.2.1")
    await line.emit(refused, stranger, refused)

    diagnostics = await get_diagnostics_for_config_entry(line.hass, hass_client, line.entry)
    assert diagnostics["line"]["refused_from_proxy_network"] == 2
