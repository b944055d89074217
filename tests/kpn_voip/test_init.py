"""Setup, unload, reload, and the K8 guard at setup."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kpn_voip.const import DOMAIN, LOCKOUT_STORAGE_KEY

# The real check, imported before the autouse fixture replaces it.
from custom_components.kpn_voip.issues import _pjsua2_importable as real_pjsua2_check
from custom_components.kpn_voip.kpn_line.client import EngineDiedError, EngineError
from custom_components.kpn_voip.kpn_line.lockout import credential_fingerprint
from custom_components.kpn_voip.kpn_line.profile import K8_LOCKOUT_SECONDS
from custom_components.kpn_voip.kpn_line.protocol import RegState

from .conftest import (
    INTEGRATION,
    NUMBER,
    PASSWORD,
    USERNAME,
    FakeEngineFactory,
    Line,
    lockout_issue,
    reauth_repair,
    repairs,
    setup_entry,
)


def _reauth_flows(hass: HomeAssistant) -> list[Any]:
    return [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH
    ]


async def test_setup_and_unload(line: Line) -> None:
    """Setup starts one engine with the entry's settings; unload stops it."""
    engine = line.engine
    assert len(line.engines.instances) == 1
    assert engine.running
    assert engine.settings is not None
    assert (engine.settings.number, engine.settings.username) == (NUMBER, USERNAME)
    assert engine.settings.password == PASSWORD
    assert engine.command[1:] == ["-m", "kpn_line.engine"]
    assert line.state("sensor.thuis_line_status") == "registered"
    # Push (iot_class local_push): the engine reports every change, nothing polls.
    assert line.coordinator.update_interval is None

    assert await line.hass.config_entries.async_unload(line.entry.entry_id)
    await line.hass.async_block_till_done()
    assert line.entry.state is ConfigEntryState.NOT_LOADED
    assert engine.stop_calls >= 1
    assert not engine.running


async def test_reload_starts_a_fresh_engine(line: Line) -> None:
    """A reload stops the old engine before the new one starts."""
    first = line.engine
    assert await line.hass.config_entries.async_reload(line.entry.entry_id)
    await line.hass.async_block_till_done()
    assert len(line.engines.instances) == 2
    assert not first.running
    assert line.engine.running
    assert line.state("sensor.thuis_line_status") == "registered"


async def test_custom_engine_command(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """The engine command can be overridden by an advanced option."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, options={"engine_command": ["/opt/py", "-m", "kpn_line.engine"]}
    )
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert fake_engine.last.command == ["/opt/py", "-m", "kpn_line.engine"]


async def test_stop_event_stops_engine(line: Line) -> None:
    """Home Assistant stopping unregisters the line (K7: leave no registration)."""
    line.hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await line.hass.async_block_till_done()
    assert not line.engine.running
    assert line.engine.stop_calls == 1


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ({"first_state": RegState.UNREACHABLE}, "unreachable"),
        # The real client's start() raises, and then never calls on_exit.
        # Each engine failure in a sentence of its own (not its code: issue 11).
        ({"start_error": EngineError("protocol", "bad hello")}, "engine_protocol"),
        ({"start_error": EngineError("timeout", "no hello")}, "engine_timeout"),
        ({"start_error": EngineDiedError("cannot start the engine")}, "engine_died"),
        ({"start_error": EngineError("internal", "pjsua2 failed")}, "engine_internal"),
        # A code the integration does not know: the generic "could not start".
        ({"start_error": EngineError("new_code", "?")}, "engine_failed"),
        # The engine dies after start() returned (on_exit later) or while
        # answering `start` (on_exit before start() returns).
        ({"die_on_start": True}, "engine_died"),
        ({"die_during_start": True}, "engine_died"),
    ],
    ids=[
        "unreachable",
        "protocol",
        "timeout",
        "spawn_failed",
        "internal",
        "unknown_code",
        "died_after",
        "died_during",
    ],
)
async def test_setup_not_ready(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    behaviour: dict[str, Any],
    error: str,
) -> None:
    """Proxy unreachable / engine failing at first start: retry later, engine stopped."""
    for name, value in behaviour.items():
        setattr(fake_engine, name, value)
    await setup_entry(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    assert len(fake_engine.instances) == 1
    assert not fake_engine.last.running
    assert fake_engine.last.stop_calls >= 1
    assert mock_config_entry.error_reason_translation_key == error
    assert not _reauth_flows(hass)


async def test_setup_cancelled_leaves_no_engine(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """Setup cancelled while it waits for the first registration: the engine is stopped."""
    fake_engine.first_state = None
    mock_config_entry.add_to_hass(hass)
    setup = asyncio.create_task(hass.config_entries.async_setup(mock_config_entry.entry_id))
    async with asyncio.timeout(5):
        while not fake_engine.started:  # noqa: ASYNC110  waits for the setup task
            await asyncio.sleep(0)
    assert fake_engine.last.running
    setup.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await setup
    assert not fake_engine.last.running
    assert fake_engine.last.stop_calls == 1


async def test_setup_registration_timeout(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """No registration outcome in time: retry later."""
    fake_engine.first_state = None
    with patch("custom_components.kpn_voip.coordinator.FIRST_REGISTRATION_TIMEOUT", 0.01):
        await setup_entry(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    assert fake_engine.last.stop_calls >= 1


async def test_setup_pjsua2_missing(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    pjsua2_present: Any,
) -> None:
    """Without pjsua2: a repair issue, no engine; it clears once pjsua2 is there."""
    pjsua2_present.return_value = False
    await setup_entry(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    assert not fake_engine.instances
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "pjsua2_missing")
    assert issue is not None
    assert issue.translation_key == "pjsua2_missing"

    pjsua2_present.return_value = True
    assert await hass.config_entries.async_reload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert ir.async_get(hass).async_get_issue(DOMAIN, "pjsua2_missing") is None


async def test_setup_auth_failure(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """K8: the stored password refused at setup: persisted, reauth started, and its repair
    the only one (a block met without the password judged: test_k8_hold.py)."""
    state = RegState.AUTH_FAILED
    fake_engine.first_state = state
    await setup_entry(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    assert not fake_engine.last.running
    assert len(_reauth_flows(hass)) == 1
    record = hass_storage[LOCKOUT_STORAGE_KEY]["data"][USERNAME]
    assert record["reason"] == state.value
    assert record["fingerprint"] == credential_fingerprint(USERNAME, PASSWORD)
    assert PASSWORD not in str(hass_storage[LOCKOUT_STORAGE_KEY])  # K9
    assert repairs(hass, mock_config_entry) == [reauth_repair(mock_config_entry)]


async def test_lockout_survives_ha_restart(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """K8: a failure persisted before a restart keeps the credentials unsent for 15 min.
    The entry loads all the same: its line status says why ("Password refused"), not
    "unavailable", and the reauth flow is there, with its repair (the only one)."""
    now = time.time()
    hass_storage[LOCKOUT_STORAGE_KEY] = {
        "version": 1,
        "key": LOCKOUT_STORAGE_KEY,
        "data": {
            USERNAME: {
                "time": now - 60,
                "reason": "auth_failed",
                "fingerprint": credential_fingerprint(USERNAME, PASSWORD),
            }
        },
    }
    await setup_entry(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert not fake_engine.started  # nothing was sent
    assert len(_reauth_flows(hass)) == 1
    assert hass.states.get("sensor.thuis_line_status").state == "auth_failed"
    assert repairs(hass, mock_config_entry) == [reauth_repair(mock_config_entry)]

    # A manual reload within the window sends nothing either, and still says why.
    await hass.config_entries.async_reload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert not fake_engine.started
    assert hass.states.get("sensor.thuis_line_status").state == "auth_failed"
    assert len(_reauth_flows(hass)) == 1

    # Once the window has passed, a reload may try again.
    freezer.tick(K8_LOCKOUT_SECONDS)
    await hass.config_entries.async_reload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert len(fake_engine.started) == 1
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert lockout_issue(hass, mock_config_entry) is None


async def test_damaged_lockout_store_is_ignored(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """A damaged record does not keep the line from starting."""
    hass_storage[LOCKOUT_STORAGE_KEY] = {
        "version": 1,
        "key": LOCKOUT_STORAGE_KEY,
        "data": {USERNAME: {"time": "yesterday"}},
    }
    await setup_entry(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.LOADED


async def test_remove_entry_drops_issue(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """Removing a blocked line removes its repair issue."""
    fake_engine.first_state = RegState.LOCKED_OUT
    await setup_entry(hass, mock_config_entry)
    assert lockout_issue(hass, mock_config_entry) is not None
    await hass.config_entries.async_remove(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert lockout_issue(hass, mock_config_entry) is None


def test_pjsua2_check_uses_find_spec() -> None:
    """The check looks for the module without importing pjproject into HA."""
    with patch("importlib.util.find_spec", return_value=None) as find_spec:
        assert real_pjsua2_check() is False
    find_spec.assert_called_once_with("pjsua2")


def test_manifest_iot_class_is_local_push() -> None:
    """Issue 4 asks for local_push: the line engine pushes, on the local machine."""
    manifest = json.loads((INTEGRATION / "manifest.json").read_text())
    assert manifest["iot_class"] == "local_push"
