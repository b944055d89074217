"""Engine supervision: restart with back-off, log once, K8 at run time."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime
import logging
import time
from typing import Any

from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
import pytest

from custom_components.kpn_voip.const import (
    DOMAIN,
    LOCKOUT_STORAGE_KEY,
    RESTART_BACKOFF_INITIAL,
    RESTART_BACKOFF_MAX,
    RESTART_STABLE_SECONDS,
)
from custom_components.kpn_voip.coordinator import _changed
from custom_components.kpn_voip.kpn_line.client import EngineDiedError, EngineError
from custom_components.kpn_voip.kpn_line.profile import K8_LOCKOUT_SECONDS
from custom_components.kpn_voip.kpn_line.protocol import CallerId, CallState, ErrorEvent, RegState
from custom_components.kpn_voip.models import CallStatus, LastCaller, LineState

from .conftest import (
    USERNAME,
    Line,
    call_event,
    lockout_issue,
    reauth_repair,
    registration,
    repairs,
)

STATUS = "sensor.thuis_line_status"
CALL_STATE = "sensor.thuis_call_state"
EVENT = "event.thuis_call"


async def test_engine_death_restarts_with_backoff(line: Line) -> None:
    """A dead engine is a line status; restarts come 5, 10, 20 ... s apart, capped."""
    # From now on engines start but never register, and each one dies.
    line.engines.first_state = None
    await line.die()
    assert line.state(STATUS) == "engine_down"
    assert line.state(CALL_STATE) == STATE_UNAVAILABLE
    # The call event entity keeps its last event (none here) while the engine is down:
    # unavailable and back would show that event again as a new one.
    assert line.state(EVENT) == STATE_UNKNOWN

    delay = RESTART_BACKOFF_INITIAL
    delays = []
    while delay <= RESTART_BACKOFF_MAX and len(delays) < 8:
        count = len(line.engines.instances)
        await line.advance(delay - 1)
        assert len(line.engines.instances) == count, f"restarted before {delay} s"
        await line.advance(1)
        assert len(line.engines.instances) == count + 1, f"not restarted after {delay} s"
        assert line.state(STATUS) == "starting"
        assert line.state(CALL_STATE) == "idle"
        delays.append(delay)
        await line.die()
        delay = min(delay * 2, RESTART_BACKOFF_MAX)
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300]
    assert line.coordinator.restarts == 8

    # A registration that lasts resets the back-off.
    line.engines.first_state = RegState.REGISTERED
    await line.advance(RESTART_BACKOFF_MAX)
    assert line.state(STATUS) == "registered"
    await line.advance(RESTART_STABLE_SECONDS)
    await line.die()
    count = len(line.engines.instances)
    await line.advance(RESTART_BACKOFF_INITIAL)
    assert len(line.engines.instances) == count + 1


async def test_crash_soon_after_registering_keeps_backing_off(line: Line) -> None:
    """Issue 9 item 15: an engine that registers and then crashes within
    RESTART_STABLE_SECONDS does not reset the back-off (no restart every 5 s for ever)."""
    delays = []
    for _ in range(5):
        count = len(line.engines.instances)
        assert line.state(STATUS) == "registered"
        await line.advance(RESTART_STABLE_SECONDS - 1)  # registered, but not for long
        await line.die()
        waited = 0.0
        while len(line.engines.instances) == count and waited <= RESTART_BACKOFF_MAX:
            await line.advance(1)
            waited += 1
        delays.append(waited)
    assert delays == [5, 10, 20, 40, 80]

    # Registered for long enough: the next crash restarts after the first delay again.
    await line.advance(RESTART_STABLE_SECONDS)
    await line.die()
    count = len(line.engines.instances)
    await line.advance(RESTART_BACKOFF_INITIAL)
    assert len(line.engines.instances) == count + 1


@pytest.mark.parametrize(
    "error",
    [EngineError("protocol", "no hello"), EngineError("timeout", "no hello"), EngineDiedError()],
    ids=["protocol", "timeout", "died"],
)
async def test_failed_restart_is_retried(line: Line, error: EngineError) -> None:
    """An engine whose start() raises (no on_exit follows) is retried later, never raised."""
    line.engines.start_error = error
    await line.die()
    await line.advance(5)
    assert len(line.engines.instances) == 2
    assert not line.engine.running
    assert line.engine.stop_calls == 1  # the failed client is released
    assert line.state(STATUS) == "engine_down"
    assert line.coordinator.last_exit == f"restart failed: {error.code}"
    line.engines.start_error = None
    await line.advance(10)
    assert len(line.engines.instances) == 3
    assert line.state(STATUS) == "registered"
    assert line.state(CALL_STATE) == "idle"


@pytest.mark.parametrize("when", ["die_during_start", "die_on_start"])
async def test_restarted_engine_dies_at_once(line: Line, when: str) -> None:
    """An engine that starts, then dies (on_exit during or after start()) is restarted again."""
    setattr(line.engines, when, True)
    await line.die()
    await line.advance(RESTART_BACKOFF_INITIAL)
    assert len(line.engines.instances) == 2
    assert line.state(STATUS) == "engine_down"
    assert line.engine.stop_calls == 1  # the dead client is released
    setattr(line.engines, when, False)
    await line.advance(2 * RESTART_BACKOFF_INITIAL)
    assert len(line.engines.instances) == 3
    assert line.state(STATUS) == "registered"


async def test_line_down_logged_once(line: Line, caplog: pytest.LogCaptureFixture) -> None:
    """One warning when the line goes down, one info when it is back: no spam."""
    caplog.clear()
    caplog.set_level(logging.INFO, logger="custom_components.kpn_voip")
    await line.emit(
        registration(RegState.UNREACHABLE, 408),
        registration(RegState.REGISTERING),
        registration(RegState.UNREACHABLE, 408),
    )
    line.engines.first_state = None
    await line.die()
    await line.advance(5)
    await line.emit(registration(RegState.REGISTERED, 200), registration(RegState.REGISTERED, 200))

    messages = [
        r.getMessage() for r in caplog.records if r.name.startswith("custom_components.kpn_voip")
    ]
    down = [m for m in messages if "is down" in m]
    back = [m for m in messages if "registered again" in m]
    assert down == ["KPN line Thuis is down: unreachable"]
    assert back == ["KPN line Thuis is registered again"]


async def test_runtime_auth_failure(line: Line, hass_storage: dict[str, Any]) -> None:
    """K8 after setup, the stored password refused: engine stopped, failure persisted,
    reauth started (its repair the only one), no restart (locked_out: test_k8_hold.py)."""
    state = RegState.AUTH_FAILED
    engine = line.engine
    await line.emit(registration(state, 403))

    assert not engine.running
    assert line.state(STATUS) == state.value
    assert hass_storage[LOCKOUT_STORAGE_KEY]["data"][USERNAME]["reason"] == state.value
    flows = line.hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert repairs(line.hass, line.entry) == [reauth_repair(line.entry)]

    # Even an engine exit report or an hour passing starts nothing by itself.
    engine.die()
    await line.advance(K8_LOCKOUT_SECONDS + RESTART_BACKOFF_MAX)
    assert len(line.engines.started) == 1


async def test_restart_blocked_by_persisted_lockout(line: Line) -> None:
    """K8: a failure recorded elsewhere (a flow, another password) keeps an engine restart
    from sending until its window has passed; then one start, and the line is back."""
    guard = line.coordinator._guard
    record = await guard.async_record(USERNAME, "some-other-password", "auth_failed")
    await line.die()
    await line.advance(5)
    assert len(line.engines.started) == 1
    # The stored password was not refused: KPN blocks the account (not "Password refused").
    assert line.state(STATUS) == "locked_out"
    assert lockout_issue(line.hass, line.entry) is not None
    await line.advance(RESTART_BACKOFF_MAX)
    assert len(line.engines.started) == 1
    await line.advance(record.until - time.time())
    assert len(line.engines.started) == 2
    assert line.state(STATUS) == "registered"
    assert repairs(line.hass, line.entry) == []


async def test_events_of_an_old_engine_are_ignored(line: Line) -> None:
    """A late event or exit from a replaced engine changes nothing."""
    old = line.engine
    await line.die()
    await line.advance(5)
    assert line.state(STATUS) == "registered"
    await line.emit(
        registration(RegState.UNREACHABLE, 408), call_event(CallState.RINGING), engine=old
    )
    await line.die(old)
    assert line.state(STATUS) == "registered"
    assert line.state(CALL_STATE) == "idle"


async def test_error_events_are_harmless(line: Line) -> None:
    """An engine error event is logged at debug level only."""
    await line.emit(ErrorEvent(code="rejected_source", message="INVITE from 192.0.2.1"))
    assert line.state(STATUS) == "registered"


async def test_engine_dies_during_call(line: Line) -> None:
    """Calls end with the engine: the call state is idle again after a restart."""
    await line.emit(call_event(CallState.ANSWERED))
    assert line.state(CALL_STATE) == "talking"
    await line.die()
    assert line.state(CALL_STATE) == STATE_UNAVAILABLE
    assert line.coordinator.data.active_calls == 0


async def test_unload_cancels_pending_restart(line: Line) -> None:
    """No engine is started after unload, even with a restart pending."""
    await line.die()
    assert await line.hass.config_entries.async_unload(line.entry.entry_id)
    await line.advance(RESTART_BACKOFF_MAX)
    assert len(line.engines.instances) == 1


async def test_dead_engine_client_is_released(line: Line) -> None:
    """After an engine died its client is stopped too (no lingering tasks or pipes)."""
    engine = line.engine
    await line.die()
    assert engine.stop_calls == 1


# Every field of LineState away from its default (a new field fails the first assert).
FULL_STATE = LineState(
    status=RegState.REGISTERED,
    call_status=CallStatus.TALKING,
    engine_running=True,
    code=200,
    reason="OK",
    active_calls=2,
    last_caller=LastCaller(
        caller=CallerId(number="+31612345678"), time=datetime(2026, 12, 1, tzinfo=UTC)
    ),
)


@pytest.mark.parametrize(
    "name", [f.name for f in fields(LineState) if f.name not in ("call_status", "active_calls")]
)
def test_changed_is_dataclasses_replace(name: str) -> None:
    """The coordinator's LineState update is replace written out (issue 11): every field
    is kept or changed as replace would; a name that is no field is a TypeError."""
    assert all(getattr(FULL_STATE, f.name) != f.default for f in fields(LineState))
    assert _changed(FULL_STATE, CallStatus.RINGING, 1, {}) == replace(
        FULL_STATE, call_status=CallStatus.RINGING, active_calls=1
    )
    default = getattr(LineState(), name)
    assert _changed(FULL_STATE, CallStatus.IDLE, 0, {name: default}) == replace(
        FULL_STATE, call_status=CallStatus.IDLE, active_calls=0, **{name: default}
    )
    with pytest.raises(TypeError, match="not a field of LineState: calls"):
        _changed(FULL_STATE, CallStatus.IDLE, 0, {name: default, "calls": 1})
