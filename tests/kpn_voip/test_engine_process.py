"""The coordinator on the REAL EngineClient, with a scripted engine process.

conftest's FakeEngine copies how the real client reports failures; these
tests hold the coordinator to the real one: start() raising without on_exit
when the engine cannot start, and on_exit when a started engine dies.  The
child process (scripted_engine.py) speaks the engine protocol without pjsua2,
so nothing here claims SIP behaviour (test_e2e.py does that).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import os
from pathlib import Path
import signal
import sys
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kpn_voip.const import CONF_ENGINE_COMMAND, LOCKOUT_STORAGE_KEY

from .conftest import USERNAME, setup_entry

STATUS = "sensor.thuis_line_status"
SCRIPT = Path(__file__).with_name("scripted_engine.py")


def _scripted(hass: HomeAssistant, entry: MockConfigEntry, mode: str) -> None:
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry, options={CONF_ENGINE_COMMAND: [sys.executable, str(SCRIPT), mode]}
    )


async def _until(check: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110  polls state a real process changes
            await asyncio.sleep(0.02)


async def test_engine_that_cannot_start(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """start() raises EngineDiedError (no on_exit): setup is retried later."""
    _scripted(hass, mock_config_entry, "exit")
    await setup_entry(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    assert mock_config_entry.error_reason_translation_key == "engine_died"
    assert not mock_config_entry.error_reason_translation_placeholders  # no code shown


async def test_started_engine_dies_and_is_restarted(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """on_exit after a kill: engine_down, then a restart registers again."""
    _scripted(hass, mock_config_entry, "register")
    with patch("custom_components.kpn_voip.coordinator.RESTART_BACKOFF_INITIAL", 0.2):
        await setup_entry(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.LOADED
    coordinator = mock_config_entry.runtime_data
    assert hass.states.get(STATUS).state == "registered"
    first = coordinator._client
    assert first is not None
    assert first.pid is not None

    os.kill(first.pid, signal.SIGKILL)
    await _until(lambda: hass.states.get(STATUS).state == "engine_down")
    assert coordinator.last_exit is not None
    assert coordinator.last_exit.endswith("(exit code -9)")
    assert not first.running

    await _until(lambda: hass.states.get(STATUS).state == "registered")
    assert coordinator.restarts == 1
    second = coordinator._client
    assert second is not None
    assert second is not first
    assert second.running

    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    assert not second.running
    assert second.pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(second.pid, 0)


async def test_credentials_outcome_after_the_setup_timeout_is_seen(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, hass_storage: dict[str, Any]
) -> None:
    """K8 (issue 9 item 5): credentials sent, outcome unknown when setup's timeout is over:
    setup waits for it, so the late 403 is an auth failure (recorded), not "retry later"."""
    _scripted(hass, mock_config_entry, "late_403")
    with patch("custom_components.kpn_voip.coordinator.FIRST_REGISTRATION_TIMEOUT", 0.3):
        await setup_entry(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    assert mock_config_entry.error_reason_translation_key == "auth_failed"
    record = hass_storage[LOCKOUT_STORAGE_KEY]["data"][USERNAME]
    assert record["reason"] == "auth_failed"
