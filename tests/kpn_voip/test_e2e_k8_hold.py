"""End to end, K8: another device's wrong password blocks the line; Home Assistant waits
the block out and logs in ONCE, by itself.

Real peers only: Home Assistant with the real line engine (pjsua2), Kamailio as KPN
(K8 lock-out emulation, one-time nonces), and "another device": a second real engine
(`probe_login`, what scripts/line-cli does) with a wrong password for the same
account.  Each credentialed REGISTER is one fresh nonce answered (the registrar
accepts a nonce once), so the stand-in's log counts them exactly.  The windows are
shortened through the stand-in's `lockout_seconds` and the K8 constant Home
Assistant's guard reads (kpn_line.lockout.K8_LOCKOUT_SECONDS), not by minutes of sleep.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
import itertools
import logging
import os
import signal
import time
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kpn_voip.const import DOMAIN, LOCKOUT_STORAGE_KEY
from custom_components.kpn_voip.issues import lockout_issue_id
from custom_components.kpn_voip.kpn_line.client import probe_login
from custom_components.kpn_voip.kpn_line.protocol import RegState
from custom_components.kpn_voip.lockout import async_get_lockout_guard
from kpn_devtools.kamailio import TEST_ACCOUNT, Kamailio, RegisterAttempt

from .conftest import reauth_flows, reauth_repair, repairs
from .test_e2e import (  # the same set-up as the other end-to-end tests
    STATUS,
    WRONG,
    _entry,
    _no_secrets_logged,  # noqa: F401  (autouse fixture)
    _real_pjsua2_check,  # noqa: F401  (autouse fixture)
    _setup_registered,
    _state,
    _unload,
    _wait,
)

pytestmark = [pytest.mark.peers]

_LOGGER = logging.getLogger(__name__)
# Home Assistant's K8 window in these tests (seconds), patched into kpn_line.lockout.
K8_WINDOW = "custom_components.kpn_voip.kpn_line.lockout.K8_LOCKOUT_SECONDS"
# From the end of a hold to the line's `registered`: the engine's start, one REGISTER
# answered 401, one credentialed REGISTER answered 200 (loopback, a busy CI machine).
LOGIN_SECONDS = 10.0


async def _other_device_wrong_password(kam: Kamailio) -> float:
    """Another device (a second real engine) logs in with a wrong password: the stand-in
    refuses it and locks the account (K8).  The time of its refusal (epoch seconds)."""
    outcome = await probe_login(kam.line_settings(password=WRONG), timeout=10.0)
    assert outcome.state is RegState.AUTH_FAILED
    refused = [a for a in kam.register_attempts() if a.with_credentials and a.code == 403]
    assert len(refused) == 1
    return refused[0].time


async def _restart(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Home Assistant restarts: the entry stops and is set up again, the K8 guard read
    back from disk."""
    await _unload(hass, entry)
    hass.data.pop(LOCKOUT_STORAGE_KEY, None)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


def _exchanges(attempts: list[RegisterAttempt]) -> list[list[RegisterAttempt]]:
    """REGISTERs grouped into exchanges: a 401 and the credentialed REGISTER answering it
    are one login; every other REGISTER is one of its own."""
    grouped: list[list[RegisterAttempt]] = []
    for attempt in attempts:
        if attempt.with_credentials and grouped and grouped[-1][-1].code == 401:
            grouped[-1].append(attempt)
        else:
            grouped.append([attempt])
    return grouped


async def _held_until(hass: HomeAssistant, entry: MockConfigEntry) -> float:
    """The line holds (K8): loaded, locked_out, no engine, no reauth, our repair alone;
    the end of its hold (epoch seconds)."""
    assert entry.state is ConfigEntryState.LOADED
    assert _state(hass, STATUS) == "locked_out"
    assert entry.runtime_data._client is None
    assert reauth_flows(hass) == []
    assert repairs(hass, entry) == [(DOMAIN, lockout_issue_id(entry))]
    record = (await async_get_lockout_guard(hass)).active(TEST_ACCOUNT.username)
    assert record is not None
    assert record.reason == RegState.LOCKED_OUT
    return record.until


async def test_other_devices_wrong_password_then_one_login_after_the_hold(
    hass: HomeAssistant, kamailio_factory: Any
) -> None:
    """K8: registered; another device's wrong password locks the account at the stand-in;
    Home Assistant restarts and meets the block (403 before any credentials): loaded,
    locked_out, one repair, no reauth.  Nothing is sent during its hold, not even after
    the stand-in's block has ended; after the hold ONE login (one 401, one credentialed
    REGISTER) and the line is registered again, the repair gone."""
    with patch(K8_WINDOW, 8):
        kam = kamailio_factory(lockout_seconds=5)
        assert kam.one_time_nonce
        entry = _entry(kam)
        await _setup_registered(hass, entry)
        await _other_device_wrong_password(kam)
        mark = len(kam.register_attempts())

        await _restart(hass, entry)
        until = await _held_until(hass, entry)
        met = kam.register_attempts()[mark:]
        assert (met[-1].with_credentials, met[-1].code) == (False, 403)  # the block met

        await _wait(hass, lambda: _state(hass, STATUS) == "registered", within=8 + LOGIN_SECONDS)
        registered_at = time.time()
        after = [a for a in kam.register_attempts()[mark:] if a.time > met[-1].time]
        assert [(a.with_credentials, a.code) for a in after] == [(False, 401), (True, 200)]
        assert after[0].time >= until  # nothing during the hold
        assert repairs(hass, entry) == []
        assert reauth_flows(hass) == []
        credentialed = [a for a in kam.register_attempts()[mark:] if a.with_credentials]
        assert len(credentialed) == 1
        _LOGGER.warning(
            "K8 hold: registered %.2f s after the hold's end (first REGISTER %.2f s after it);"
            " %d credentialed REGISTER since the restart",
            registered_at - until,
            after[0].time - until,
            len(credentialed),
        )
        assert registered_at - until < LOGIN_SECONDS
        await _unload(hass, entry)


async def test_still_blocked_after_the_hold_one_login_per_hold(
    hass: HomeAssistant, kamailio_factory: Any
) -> None:
    """K8: the stand-in's block outlasts Home Assistant's hold (another device's wrong
    password, a longer block): the one login at the hold's end meets the block again
    (403 before any credentials) and starts a new hold - one REGISTER per hold, holds
    apart by the full window, never a credentialed REGISTER into the block - and the
    line is registered after the block, with one credentialed REGISTER in all."""
    with patch(K8_WINDOW, 5):
        kam = kamailio_factory(lockout_seconds=12)
        entry = _entry(kam)
        await _setup_registered(hass, entry)
        blocked_at = await _other_device_wrong_password(kam)
        mark = len(kam.register_attempts())

        await _restart(hass, entry)
        await _held_until(hass, entry)
        await _wait(hass, lambda: _state(hass, STATUS) == "registered", within=30)
        attempts = kam.register_attempts()[mark:]
        # The un-REGISTER of the restart's stop (answered 403 in the block) goes first.
        logins = _exchanges([a for a in attempts if a.time > attempts[0].time])
        shapes = [[(a.with_credentials, a.code) for a in login] for login in logins]
        assert shapes[-1] == [(False, 401), (True, 200)]
        assert shapes[:-1] == [[(False, 403)]] * (len(shapes) - 1)
        assert len(shapes) >= 3  # the block at the restart, met again after a hold
        starts = [login[0].time for login in logins]
        gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
        assert all(gap >= 5 for gap in gaps), gaps
        # The stand-in keeps the block in whole seconds ($Ts) from the refusal.
        assert logins[-1][0].time >= int(blocked_at) + 12
        assert [a.with_credentials for a in attempts].count(True) == 1
        assert reauth_flows(hass) == []
        _LOGGER.warning("K8 holds: logins %s s apart, shapes %s", gaps, shapes)
        await _unload(hass, entry)


async def test_refused_stored_password_is_never_sent_again_past_the_window(
    hass: HomeAssistant, kamailio_factory: Any
) -> None:
    """K8: the stored password is refused (changed at KPN; the engine, killed, is started
    again and sends the old one): one refused credentialed REGISTER, reauth with its
    repair alone, and nothing more - not when the K8 window has passed three times over
    (the hold of a block from elsewhere does not apply to a refused password)."""
    with (
        patch(K8_WINDOW, 2),
        patch("custom_components.kpn_voip.coordinator.RESTART_BACKOFF_INITIAL", 0.2),
    ):
        kam = kamailio_factory(lockout_seconds=2)
        entry = _entry(kam)
        await _setup_registered(hass, entry)
        mark = len(kam.register_attempts())
        kam.accounts = [replace(TEST_ACCOUNT, password="changed-at-kpn")]
        await hass.async_add_executor_job(kam.restart)
        pid = entry.runtime_data._client.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await _wait(hass, lambda: _state(hass, STATUS) == "auth_failed", what="auth_failed")
        await hass.async_block_till_done()
        await asyncio.sleep(3 * 2 + 1)
        credentialed = [a for a in kam.register_attempts()[mark:] if a.with_credentials]
        assert [a.code for a in credentialed] == [403]
        assert _state(hass, STATUS) == "auth_failed"
        assert len(reauth_flows(hass)) == 1
        assert repairs(hass, entry) == [reauth_repair(entry)]
        await _unload(hass, entry)
