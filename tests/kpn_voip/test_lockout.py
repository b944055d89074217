"""K8 lockout memory: every password that failed inside the window is remembered."""

from __future__ import annotations

from typing import Any
from unittest.mock import AsyncMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.kpn_voip.const import (
    CONF_DISPLAY_NAME,
    CONF_NUMBER,
    DOMAIN,
    LOCKOUT_STORAGE_KEY,
)
from custom_components.kpn_voip.kpn_line.profile import K8_LOCKOUT_SECONDS
from custom_components.kpn_voip.kpn_line.protocol import RegState
from custom_components.kpn_voip.lockout import (
    LockoutGuard,
    async_get_lockout_guard,
    credential_fingerprint,
)

from .conftest import (
    DISPLAY_NAME,
    PASSWORD,
    USERNAME,
    configure,
    configure_after_block,
    registration,
)

PASSWORD_A = "wrong-password-a"
PASSWORD_B = "wrong-password-b"


@pytest.mark.usefixtures("mock_setup_entry")
async def test_a_fails_b_fails_a_is_still_refused(
    hass: HomeAssistant,
    mock_probe_login: AsyncMock,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """K8 (issue 9 item 6): A fails, B fails, A again within 15 min is not sent.

    B's failure inside A's block is stored, as an earlier version wrote it: the
    flow itself no longer sends B before A's block has ended (K8, the account is
    blocked, not one password).
    """
    mock_probe_login.return_value = registration(RegState.AUTH_FAILED, 403)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    user_input = {
        CONF_NUMBER: "020 123 4567",
        CONF_USERNAME: "12345678",
        CONF_DISPLAY_NAME: DISPLAY_NAME,
        "advanced": {},
    }
    result = await configure(hass, result["flow_id"], {**user_input, CONF_PASSWORD: PASSWORD_A})
    assert result["errors"] == {"base": "invalid_auth"}
    freezer.tick(60)
    guard = await async_get_lockout_guard(hass)
    await guard.async_record(USERNAME, PASSWORD_B, RegState.AUTH_FAILED.value)
    freezer.tick(60)
    assert mock_probe_login.await_count == 1

    for password in (PASSWORD_A, PASSWORD_B):
        result = await configure(hass, result["flow_id"], {**user_input, CONF_PASSWORD: password})
        assert result["errors"] == {"base": "recently_failed"}
    assert mock_probe_login.await_count == 1  # neither was sent a second time

    stored = hass_storage[LOCKOUT_STORAGE_KEY]["data"][USERNAME]
    assert stored["fingerprint"] == credential_fingerprint(USERNAME, PASSWORD_B)
    assert [e["fingerprint"] for e in stored["earlier"]] == [
        credential_fingerprint(USERNAME, PASSWORD_A)
    ]
    for password in (PASSWORD_A, PASSWORD_B):
        assert password not in str(hass_storage[LOCKOUT_STORAGE_KEY])  # K9

    # A's window ends 15 minutes after A failed, B's a minute later: A is no longer
    # refused, but held until the account's block (B's) has ended, then sent once.
    freezer.tick(K8_LOCKOUT_SECONDS - 120)
    assert guard.failed_recently(USERNAME, PASSWORD_A) is None
    assert guard.failed_recently(USERNAME, PASSWORD_B) is not None
    _, result = await configure_after_block(
        hass,
        result["flow_id"],
        {**user_input, CONF_PASSWORD: PASSWORD_A},
        freezer,
        mock_probe_login,
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert mock_probe_login.await_count == 2

    mock_probe_login.return_value = registration(RegState.REGISTERED, 200)
    _, result = await configure_after_block(
        hass, result["flow_id"], {**user_input, CONF_PASSWORD: PASSWORD}, freezer, mock_probe_login
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_every_failed_password_survives_a_restart(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Both failures are on disk and read back; old files (one record) still load."""
    guard = LockoutGuard(hass)
    await guard.async_load()
    await guard.async_record(USERNAME, PASSWORD_A, "auth_failed", now=1000.0)
    await guard.async_record(USERNAME, PASSWORD_B, "locked_out", now=1100.0)
    await guard.async_record(USERNAME, PASSWORD_A, "auth_failed", now=1200.0)

    again = LockoutGuard(hass)
    await again.async_load()
    record_a = again.failed_recently(USERNAME, PASSWORD_A, now=1300.0)
    record_b = again.failed_recently(USERNAME, PASSWORD_B, now=1300.0)
    assert record_a is not None
    assert record_a.time == 1200.0  # the newest failure of A counts
    assert record_b is not None
    assert record_b.reason == "locked_out"
    assert again.failed_recently(USERNAME, PASSWORD, now=1300.0) is None
    active = again.active(USERNAME, now=1300.0)
    assert active is not None
    assert active.time == 1200.0
    # B's window closes first; A's a little later; then nothing blocks.
    assert again.failed_recently(USERNAME, PASSWORD_B, now=1100.0 + K8_LOCKOUT_SECONDS) is None
    assert again.failed_recently(USERNAME, PASSWORD_A, now=1100.0 + K8_LOCKOUT_SECONDS)
    assert again.active(USERNAME, now=1200.0 + K8_LOCKOUT_SECONDS) is None

    # A failure recorded after B's window has passed drops B from the file.
    await again.async_record(USERNAME, PASSWORD, "auth_failed", now=1200.0 + K8_LOCKOUT_SECONDS)
    stored = hass_storage[LOCKOUT_STORAGE_KEY]["data"][USERNAME]
    assert "earlier" not in stored


@pytest.mark.parametrize(
    ("earlier", "kept"),
    [
        (None, 1),
        ("not a list", 1),
        ([{"time": "yesterday"}, {"time": 950.0, "reason": "auth_failed", "fingerprint": "a"}], 2),
    ],
)
async def test_stored_shapes_load(
    hass: HomeAssistant, hass_storage: dict[str, Any], earlier: Any, kept: int
) -> None:
    """A file of the first version (one record) loads; damaged earlier entries are dropped."""
    record: dict[str, Any] = {
        "time": 1000.0,
        "reason": "auth_failed",
        "fingerprint": credential_fingerprint(USERNAME, PASSWORD_A),
    }
    if earlier is not None:
        record["earlier"] = earlier
    hass_storage[LOCKOUT_STORAGE_KEY] = {
        "version": 1,
        "key": LOCKOUT_STORAGE_KEY,
        "data": {USERNAME: record, "other": "damaged"},
    }
    guard = LockoutGuard(hass)
    await guard.async_load()
    assert len(guard._records[USERNAME]) == kept
    assert guard.failed_recently(USERNAME, PASSWORD_A, now=1001.0) is not None
    assert guard.active("other", now=1001.0) is None


async def test_unknown_outcome_is_kept_on_disk_until_the_window_passes(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Issue 9 item 5 (K8): credentials sent without an outcome block those credentials,
    also for a guard read back from disk, until the K8 window from their sending; an
    outcome (accepted, refused, no answer) ends it; accepted credentials never block."""
    guard = LockoutGuard(hass)
    await guard.async_load()
    guard.note_credentials_sent(USERNAME, PASSWORD_A, now=1000.0)
    await hass.async_block_till_done()
    reloaded = LockoutGuard(hass)
    await reloaded.async_load()
    pending = reloaded.unknown_outcome(USERNAME, PASSWORD_A, now=1001.0)
    assert pending is not None
    assert pending.until == 1000.0 + K8_LOCKOUT_SECONDS
    assert reloaded.unknown_outcome(USERNAME, PASSWORD_A, now=pending.until) is None
    assert reloaded.unknown_outcome(USERNAME, PASSWORD_B, now=1001.0) is None
    assert reloaded.active(USERNAME, now=1001.0) is None  # no failure: other passwords go
    assert PASSWORD_A not in str(hass_storage[LOCKOUT_STORAGE_KEY])  # K9

    reloaded.note_ended(USERNAME)  # the engine said: no answer (408)
    assert reloaded.unknown_outcome(USERNAME, PASSWORD_A, now=1001.0) is None

    # Accepted credentials: an unknown outcome of them does not block.
    reloaded.note_accepted(USERNAME, PASSWORD)
    reloaded.note_credentials_sent(USERNAME, PASSWORD, now=2000.0)
    assert reloaded.unknown_outcome(USERNAME, PASSWORD, now=2001.0) is None
    await hass.async_block_till_done()
    after_restart = LockoutGuard(hass)  # the accepted fingerprint is on disk too
    await after_restart.async_load()
    assert after_restart.unknown_outcome(USERNAME, PASSWORD, now=2001.0) is None
    assert after_restart.unknown_outcome(USERNAME, PASSWORD_A, now=2001.0) is None
    # ... until they are refused (changed at KPN): then they are a failure like any other.
    await reloaded.async_record(USERNAME, PASSWORD, "auth_failed", now=2002.0)
    reloaded.note_credentials_sent(USERNAME, PASSWORD, now=2003.0)
    assert reloaded.unknown_outcome(USERNAME, PASSWORD, now=2004.0) is not None
    await hass.async_block_till_done()
    stored = hass_storage[LOCKOUT_STORAGE_KEY]["data"][USERNAME]
    assert set(stored) == {"time", "reason", "fingerprint", "pending"}


async def test_old_and_damaged_unknown_outcome_records(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """A file without the new fields loads as before; a damaged `pending` is dropped."""
    hass_storage[LOCKOUT_STORAGE_KEY] = {
        "version": 1,
        "key": LOCKOUT_STORAGE_KEY,
        "data": {
            USERNAME: {"pending": {"time": "soon"}, "accepted": 5},
            "other@ims.imscore.net": {"pending": {"time": 1.0, "fingerprint": "ab"}},
        },
    }
    guard = LockoutGuard(hass)
    await guard.async_load()
    assert guard.unknown_outcome(USERNAME, PASSWORD_A, now=2.0) is None
    assert guard.active(USERNAME) is None
    assert credential_fingerprint(USERNAME, PASSWORD_A) != "ab"
