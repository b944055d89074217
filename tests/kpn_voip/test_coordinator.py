"""Engine supervision: restart with back-off, log once, K8 at run time."""

from __future__ import annotations

import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.kpn_voip.const import (
    DOMAIN,
    LOCKOUT_STORAGE_KEY,
    RESTART_BACKOFF_INITIAL,
    RESTART_BACKOFF_MAX,
)
from custom_components.kpn_voip.kpn_line.client import EngineError
from custom_components.kpn_voip.kpn_line.profile import K8_LOCKOUT_SECONDS
from custom_components.kpn_voip.kpn_line.protocol import CallState, ErrorEvent, RegState

from .conftest import USERNAME, FakeEngineFactory, call_event, registration

STATUS = "sensor.thuis_line_status"
CALL_STATE = "sensor.thuis_call_state"
EVENT = "event.thuis_call"


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def _advance(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    freezer.tick(seconds)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def test_engine_death_restarts_with_backoff(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A dead engine is a line status; restarts come 5, 10, 20 ... s apart, capped."""
    await _setup(hass, mock_config_entry)
    # From now on engines start but never register, and each one dies.
    fake_engine.first_state = None
    fake_engine.last.die()
    await hass.async_block_till_done()
    assert hass.states.get(STATUS).state == "engine_down"
    assert hass.states.get(CALL_STATE).state == STATE_UNAVAILABLE
    assert hass.states.get(EVENT).state == STATE_UNAVAILABLE

    delay = RESTART_BACKOFF_INITIAL
    delays = []
    while delay <= RESTART_BACKOFF_MAX and len(delays) < 8:
        count = len(fake_engine.instances)
        await _advance(hass, freezer, delay - 1)
        assert len(fake_engine.instances) == count, f"restarted before {delay} s"
        await _advance(hass, freezer, 1)
        assert len(fake_engine.instances) == count + 1, f"not restarted after {delay} s"
        assert hass.states.get(STATUS).state == "starting"
        assert hass.states.get(CALL_STATE).state == "idle"
        delays.append(delay)
        fake_engine.last.die()
        await hass.async_block_till_done()
        delay = min(delay * 2, RESTART_BACKOFF_MAX)
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300]
    assert mock_config_entry.runtime_data.restarts == 8

    # A registration resets the back-off.
    fake_engine.first_state = RegState.REGISTERED
    await _advance(hass, freezer, RESTART_BACKOFF_MAX)
    assert hass.states.get(STATUS).state == "registered"
    fake_engine.last.die()
    await hass.async_block_till_done()
    count = len(fake_engine.instances)
    await _advance(hass, freezer, RESTART_BACKOFF_INITIAL)
    assert len(fake_engine.instances) == count + 1


async def test_failed_restart_is_retried(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An engine that cannot even start again is retried later, never raised."""
    await _setup(hass, mock_config_entry)
    fake_engine.start_error = EngineError("protocol", "no hello")
    fake_engine.last.die()
    await hass.async_block_till_done()
    await _advance(hass, freezer, 5)
    assert len(fake_engine.instances) == 2
    assert hass.states.get(STATUS).state == "engine_down"
    fake_engine.start_error = None
    await _advance(hass, freezer, 10)
    assert len(fake_engine.instances) == 3
    assert hass.states.get(STATUS).state == "registered"
    assert hass.states.get(CALL_STATE).state == "idle"


async def test_line_down_logged_once(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One warning when the line goes down, one info when it is back: no spam."""
    await _setup(hass, mock_config_entry)
    caplog.clear()
    caplog.set_level(logging.INFO, logger="custom_components.kpn_voip")
    engine = fake_engine.last
    engine.emit(registration(RegState.UNREACHABLE, 408))
    engine.emit(registration(RegState.REGISTERING))
    engine.emit(registration(RegState.UNREACHABLE, 408))
    await hass.async_block_till_done()
    fake_engine.first_state = None
    engine.die()
    await hass.async_block_till_done()
    await _advance(hass, freezer, 5)
    fake_engine.last.emit(registration(RegState.REGISTERED, 200))
    fake_engine.last.emit(registration(RegState.REGISTERED, 200))
    await hass.async_block_till_done()

    messages = [
        r.getMessage() for r in caplog.records if r.name.startswith("custom_components.kpn_voip")
    ]
    down = [m for m in messages if "is down" in m]
    back = [m for m in messages if "registered again" in m]
    assert down == ["KPN line Thuis is down: unreachable"]
    assert back == ["KPN line Thuis is registered again"]


@pytest.mark.parametrize("state", [RegState.AUTH_FAILED, RegState.LOCKED_OUT])
async def test_runtime_auth_failure(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
    state: RegState,
) -> None:
    """K8 after setup: engine stopped, failure persisted, reauth started, no restart."""
    await _setup(hass, mock_config_entry)
    engine = fake_engine.last
    engine.emit(registration(state, 403))
    await hass.async_block_till_done()

    assert not engine.running
    assert hass.states.get(STATUS).state == state.value
    assert hass_storage[LOCKOUT_STORAGE_KEY]["data"][USERNAME]["reason"] == state.value
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    issue_id = f"locked_out_{mock_config_entry.entry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    # Even an engine exit report or an hour passing starts nothing by itself.
    engine.die()
    await _advance(hass, freezer, K8_LOCKOUT_SECONDS + RESTART_BACKOFF_MAX)
    assert len(fake_engine.started) == 1


async def test_restart_blocked_by_persisted_lockout(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """K8: a failure recorded elsewhere (a flow) keeps an engine restart from sending."""
    await _setup(hass, mock_config_entry)
    guard = mock_config_entry.runtime_data._guard
    await guard.async_record(USERNAME, "some-other-password", "auth_failed")
    fake_engine.last.die()
    await hass.async_block_till_done()
    await _advance(hass, freezer, 5)
    assert len(fake_engine.started) == 1
    assert hass.states.get(STATUS).state == "auth_failed"
    assert (
        ir.async_get(hass).async_get_issue(DOMAIN, f"locked_out_{mock_config_entry.entry_id}")
        is not None
    )
    await _advance(hass, freezer, RESTART_BACKOFF_MAX)
    assert len(fake_engine.started) == 1


async def test_events_of_an_old_engine_are_ignored(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A late event or exit from a replaced engine changes nothing."""
    await _setup(hass, mock_config_entry)
    old = fake_engine.last
    old.die()
    await hass.async_block_till_done()
    await _advance(hass, freezer, 5)
    assert hass.states.get(STATUS).state == "registered"
    old.emit(registration(RegState.UNREACHABLE, 408))
    old.emit(call_event(CallState.RINGING))
    old.die()
    await hass.async_block_till_done()
    assert hass.states.get(STATUS).state == "registered"
    assert hass.states.get(CALL_STATE).state == "idle"


async def test_error_events_are_harmless(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """An engine error event is logged at debug level only."""
    await _setup(hass, mock_config_entry)
    fake_engine.last.emit(ErrorEvent(code="rejected_source", message="INVITE from 192.0.2.1"))
    await hass.async_block_till_done()
    assert hass.states.get(STATUS).state == "registered"


async def test_engine_dies_during_call(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """Calls end with the engine: the call state is idle again after a restart."""
    await _setup(hass, mock_config_entry)
    fake_engine.last.emit(call_event(CallState.ANSWERED))
    await hass.async_block_till_done()
    assert hass.states.get(CALL_STATE).state == "talking"
    fake_engine.last.die()
    await hass.async_block_till_done()
    assert hass.states.get(CALL_STATE).state == STATE_UNAVAILABLE
    assert mock_config_entry.runtime_data.data.active_calls == 0


async def test_unload_cancels_pending_restart(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """No engine is started after unload, even with a restart pending."""
    await _setup(hass, mock_config_entry)
    fake_engine.last.die()
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await _advance(hass, freezer, RESTART_BACKOFF_MAX)
    assert len(fake_engine.instances) == 1


async def test_dead_engine_client_is_released(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """After an engine died its client is stopped too (no lingering tasks or pipes)."""
    await _setup(hass, mock_config_entry)
    engine = fake_engine.last
    engine.die()
    await hass.async_block_till_done()
    assert engine.stop_calls == 1
