"""A new password while KPN still blocks the account (K8): said, held, sent once.

KPN blocks the whole account for about 15 minutes after wrong credentials,
and every attempt inside the block can extend it (K8).  A new password typed
in the reauth flow while the line is `locked_out` is a deliberate, single
attempt, but sent at once it would most likely be refused: the flow says how
long the block still lasts (step `reauth_locked`), holds the password and
sends it once when the block has ended (progress `lockout_wait`).
"""

from __future__ import annotations

import asyncio
from typing import Any
from unittest.mock import AsyncMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from syrupy.assertion import SnapshotAssertion

from custom_components.kpn_voip.issues import async_create_lockout_issue
from custom_components.kpn_voip.kpn_line.protocol import RegState
from custom_components.kpn_voip.lockout import async_get_lockout_guard

from .conftest import (
    DISPLAY_NAME,
    PASSWORD,
    USERNAME,
    WRONG_PASSWORD,
    configure_after_block,
    lockout_issue,
    registration,
)

pytestmark = pytest.mark.usefixtures("mock_setup_entry")

NEW_PASSWORD = "the-new-one"
_SHOWN = ("type", "step_id", "progress_action", "description_placeholders", "errors", "reason")


def _shown(result: Any) -> dict[str, Any]:
    """What the user sees of a flow result (no flow id, no schema objects)."""
    return {key: result[key] for key in _SHOWN if key in result}


@pytest.fixture
async def locked_out(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> MockConfigEntry:
    """The line, refused at 20:00 UTC (12:00 in the tests' time zone) and locked out since:
    three minutes later, twelve minutes of KPN's block are left (K8)."""
    freezer.move_to("2026-11-25 20:00:00+00:00")
    mock_config_entry.add_to_hass(hass)
    guard = await async_get_lockout_guard(hass)
    record = await guard.async_record(USERNAME, WRONG_PASSWORD, RegState.LOCKED_OUT.value)
    async_create_lockout_issue(hass, mock_config_entry, record.until)
    freezer.tick(3 * 60)
    return mock_config_entry


async def test_reauth_while_locked_out_says_until_when_and_holds_the_password(
    hass: HomeAssistant,
    locked_out: MockConfigEntry,
    mock_probe_login: AsyncMock,
    freezer: FrozenDateTimeFactory,
    snapshot: SnapshotAssertion,
) -> None:
    """K8: the form says the block lasts until 12:15 (12 more minutes); the refused password
    is refused without a REGISTER; a new one is held and sent once, when the block has
    ended, and then stored."""
    result = await locked_out.start_reauth_flow(hass)
    seen = [_shown(result)]
    assert result["step_id"] == "reauth_locked"
    assert result["description_placeholders"] == {
        "name": DISPLAY_NAME,  # Home Assistant's own, for every reauth flow
        "line": DISPLAY_NAME,
        "until": "12:15",
        "block_minutes": "12",
    }

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PASSWORD: WRONG_PASSWORD}
    )
    seen.append(_shown(result))
    assert (result["step_id"], result["errors"]) == ("reauth_locked", {"base": "recently_failed"})
    mock_probe_login.assert_not_awaited()

    held, result = await configure_after_block(
        hass, result["flow_id"], {CONF_PASSWORD: NEW_PASSWORD}, freezer, mock_probe_login
    )
    seen += [_shown(held), _shown(result)]
    assert held["description_placeholders"] == {
        "seconds": "51",
        "until": "12:15",
        "block_minutes": "12",
    }
    assert result["reason"] == "reauth_successful"
    mock_probe_login.assert_awaited_once()  # never more than one credentialed attempt
    assert mock_probe_login.await_args.args[0].password == NEW_PASSWORD
    assert locked_out.data[CONF_PASSWORD] == NEW_PASSWORD
    assert lockout_issue(hass, locked_out) is None
    assert seen == snapshot
    # K9: the held password is in no text the user sees.
    assert NEW_PASSWORD not in str(seen)


async def test_reauth_refused_again_shows_the_new_block(
    hass: HomeAssistant,
    locked_out: MockConfigEntry,
    mock_probe_login: AsyncMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """K8: the held password, refused after the block, starts a new block: the form says
    so (invalid_auth, blocked for 15 more minutes), and the password stays unsent again."""
    mock_probe_login.return_value = registration(RegState.AUTH_FAILED, 403)
    result = await locked_out.start_reauth_flow(hass)
    _, result = await configure_after_block(
        hass, result["flow_id"], {CONF_PASSWORD: NEW_PASSWORD}, freezer, mock_probe_login
    )
    assert result["step_id"] == "reauth_locked"
    assert result["errors"] == {"base": "invalid_auth"}
    assert result["description_placeholders"]["block_minutes"] == "15"
    assert locked_out.data[CONF_PASSWORD] == PASSWORD
    assert lockout_issue(hass, locked_out) is not None


async def test_closing_the_flow_during_the_block_sends_nothing(
    hass: HomeAssistant,
    locked_out: MockConfigEntry,
    mock_probe_login: AsyncMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """K8: the held password goes nowhere once the user closes the flow, not even after
    the block; the entry keeps its password."""
    result = await locked_out.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PASSWORD: NEW_PASSWORD}
    )
    assert result["progress_action"] == "lockout_wait"
    hass.config_entries.flow.async_abort(result["flow_id"])
    freezer.tick(20 * 60)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    mock_probe_login.assert_not_awaited()
    assert locked_out.data[CONF_PASSWORD] == PASSWORD


async def test_a_failure_during_the_hold_extends_it(
    hass: HomeAssistant,
    locked_out: MockConfigEntry,
    mock_probe_login: AsyncMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """K8: a failure recorded while the password is held (KPN's block starts again) moves
    the moment it is sent to the end of the new block."""
    result = await locked_out.start_reauth_flow(hass)
    flow_id = result["flow_id"]
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_PASSWORD: NEW_PASSWORD})
    assert result["progress_action"] == "lockout_wait"
    freezer.tick(10 * 60)  # two minutes before the first block ends
    guard = await async_get_lockout_guard(hass)
    await guard.async_record(USERNAME, "yet-another-one", RegState.AUTH_FAILED.value)
    freezer.tick(5 * 60)  # the first block has ended, the new one has not
    async_fire_time_changed(hass)
    await asyncio.sleep(0)
    mock_probe_login.assert_not_awaited()
    freezer.tick(11 * 60)  # past the new block
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    mock_probe_login.assert_awaited_once()
    result = await hass.config_entries.flow.async_configure(flow_id)
    assert result["reason"] == "reauth_successful"
