"""K8: a block the line meets without its stored password being judged ends by itself.

KPN blocks the account for about 15 minutes after a wrong password, whoever sent
it, and every login inside the block can extend it (K8).  When the block comes
from elsewhere (another device's wrong password: the registrar answers the
line's REGISTER with 403 before any credentials went out, `locked_out`), Home
Assistant's stored password is not refused: the entry loads, the line status
says locked_out, ONE repair (ours) says until when, and when the K8 window has
passed the engine starts once - one login.  Blocked again, it holds again:
never more than one start per window.  Only a refusal of the stored password
itself (`auth_failed`) asks for re-authentication, and then Home Assistant's
reauth repair is the only one.  Fake engine: Home Assistant's side only; the
wire proof with the real engine and the stand-in is test_e2e_k8_hold.py.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.translation import async_get_translations
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.kpn_voip.const import DOMAIN, LOCKOUT_STORAGE_KEY
from custom_components.kpn_voip.issues import lockout_issue_id
from custom_components.kpn_voip.kpn_line.lockout import credential_fingerprint
from custom_components.kpn_voip.kpn_line.profile import K8_LOCKOUT_SECONDS
from custom_components.kpn_voip.kpn_line.protocol import RegState
from custom_components.kpn_voip.lockout import async_get_lockout_guard

from .conftest import (
    PASSWORD,
    USERNAME,
    FakeEngineFactory,
    Line,
    reauth_flows,
    reauth_repair,
    registration,
    repairs,
    setup_entry,
)

STATUS = "sensor.thuis_line_status"


def _lockout_repair(entry: MockConfigEntry) -> tuple[str, str]:
    return (DOMAIN, lockout_issue_id(entry))


async def _hold_end(hass: HomeAssistant) -> float:
    """When the account's newest K8 record stops blocking (epoch seconds)."""
    record = (await async_get_lockout_guard(hass)).active(USERNAME)
    assert record is not None
    return record.until


def _states(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, str]:
    """Every entity of the entry and its state ("unavailable" included)."""
    registry = er.async_get(hass)
    return {
        item.entity_id: state.state if (state := hass.states.get(item.entity_id)) else "(none)"
        for item in er.async_entries_for_config_entry(registry, entry.entry_id)
    }


async def _restart(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """As a Home Assistant restart does to the entry: a new setup, the guard read from disk."""
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    hass.data.pop(LOCKOUT_STORAGE_KEY, None)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def test_block_at_setup_loads_holds_and_logs_in_once_after_it(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """K8: the first answer at setup is a block (locked_out): the entry loads (not a setup
    error), the engine is stopped, no reauth is started, one repair (ours) says until
    when; nothing starts during the window, ONE engine start right after it, and the
    line is registered again and the repair gone."""
    caplog.set_level(logging.DEBUG)
    freezer.move_to("2026-11-25 20:00:00+00:00")
    fake_engine.first_state = RegState.LOCKED_OUT
    await setup_entry(hass, mock_config_entry)

    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert not fake_engine.last.running
    assert hass.states.get(STATUS).state == "locked_out"
    assert reauth_flows(hass) == []
    assert repairs(hass, mock_config_entry) == [_lockout_repair(mock_config_entry)]
    record = hass_storage[LOCKOUT_STORAGE_KEY]["data"][USERNAME]
    assert record["reason"] == "locked_out"
    assert record["fingerprint"] == credential_fingerprint(USERNAME, PASSWORD)
    until = await _hold_end(hass)
    assert until == record["time"] + K8_LOCKOUT_SECONDS

    line = Line(hass, mock_config_entry, fake_engine, freezer)
    fake_engine.first_state = RegState.REGISTERED
    await line.advance(until - time.time() - 1)
    assert len(fake_engine.started) == 1  # nothing inside the window
    await line.advance(2)
    assert len(fake_engine.started) == 2  # one login after it
    assert hass.states.get(STATUS).state == "registered"
    assert repairs(hass, mock_config_entry) == []
    await line.advance(3 * K8_LOCKOUT_SECONDS)
    assert len(fake_engine.started) == 2
    assert PASSWORD not in caplog.text  # K9


async def test_blocked_again_holds_again_one_start_per_window(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """K8: while KPN keeps the account blocked (another device keeps sending a wrong
    password), every start is answered locked_out again: exactly one start per K8
    window, each at least K8_LOCKOUT_SECONDS after the block before it, no reauth, one
    repair all along."""
    freezer.move_to("2026-11-25 20:00:00+00:00")
    fake_engine.first_state = RegState.LOCKED_OUT
    await setup_entry(hass, mock_config_entry)
    line = Line(hass, mock_config_entry, fake_engine, freezer)
    starts = [time.time()]
    for _ in range(3):
        until = await _hold_end(hass)
        await line.advance(until - time.time() - 1)
        assert len(fake_engine.started) == len(starts)
        await line.advance(2)
        assert len(fake_engine.started) == len(starts) + 1
        starts.append(time.time())
        assert hass.states.get(STATUS).state == "locked_out"
        assert repairs(hass, mock_config_entry) == [_lockout_repair(mock_config_entry)]
        assert reauth_flows(hass) == []
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert all(gap >= K8_LOCKOUT_SECONDS for gap in gaps), gaps


async def test_runtime_block_holds_then_logs_in_once(line: Line) -> None:
    """K8 after setup: a refresh answered 403 before any credentials (locked_out): the
    engine stops, its exit report restarts nothing, no reauth; one start after the
    window, and the line is back."""
    engine = line.engine
    await line.emit(registration(RegState.LOCKED_OUT, 403))
    assert not engine.running
    assert line.state(STATUS) == "locked_out"
    assert reauth_flows(line.hass) == []
    assert repairs(line.hass, line.entry) == [_lockout_repair(line.entry)]
    until = await _hold_end(line.hass)
    engine.die()
    await line.advance(until - time.time() - 1)
    assert len(line.engines.started) == 1
    await line.advance(2)
    assert len(line.engines.started) == 2
    assert line.state(STATUS) == "registered"
    assert repairs(line.hass, line.entry) == []


async def test_wrong_stored_password_after_the_hold_asks_reauth_and_stops(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """K8: the one login after a hold finds the stored password refused (auth_failed):
    reauth, with its repair only (ours goes), and no start by itself any more - a wrong
    password in Home Assistant never causes repeated attempts."""
    freezer.move_to("2026-11-25 20:00:00+00:00")
    fake_engine.first_state = RegState.LOCKED_OUT
    await setup_entry(hass, mock_config_entry)
    line = Line(hass, mock_config_entry, fake_engine, freezer)
    fake_engine.first_state = RegState.AUTH_FAILED
    await line.advance(await _hold_end(hass) - time.time() + 1)
    assert len(fake_engine.started) == 2
    assert hass.states.get(STATUS).state == "auth_failed"
    assert len(reauth_flows(hass)) == 1
    assert repairs(hass, mock_config_entry) == [reauth_repair(mock_config_entry)]
    fake_engine.last.die()
    await line.advance(4 * K8_LOCKOUT_SECONDS)
    assert len(fake_engine.started) == 2


async def test_restart_in_a_block_keeps_the_entities_and_shows_the_hold(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    snapshot: SnapshotAssertion,
) -> None:
    """The entities before and after Home Assistant restarts while another device's wrong
    password blocks the line (snapshot): loaded, the line status says locked_out, the
    entities Home Assistant keeps (call history, missed calls, do-not-disturb) stay
    available - at the first restart (the block answered) and at the next one (the
    block read back from disk, no engine started)."""
    freezer.move_to("2026-11-25 20:00:00+00:00")
    await setup_entry(hass, mock_config_entry)
    seen = {"registered": _states(hass, mock_config_entry)}

    fake_engine.first_state = RegState.LOCKED_OUT  # another device locked the account
    await _restart(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.LOADED
    seen["first restart, blocked"] = _states(hass, mock_config_entry)
    assert len(fake_engine.started) == 2

    freezer.tick(60)
    await _restart(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert len(fake_engine.started) == 2  # inside the window: nothing sent
    seen["next restart, held"] = _states(hass, mock_config_entry)
    assert seen["first restart, blocked"] == seen["next restart, held"]
    assert repairs(hass, mock_config_entry) == [_lockout_repair(mock_config_entry)]
    assert seen == snapshot


@pytest.mark.parametrize("language", ["en", "nl"])
async def test_repair_and_reauth_texts_say_whose_password(
    hass: HomeAssistant, language: str, snapshot: SnapshotAssertion
) -> None:
    """The hold's repair says the stored password was not refused and the line logs in
    once by itself at {until}; the reauth form says the stored password was refused (K8).
    Rendered as the user reads them (snapshot), in English and Dutch."""
    placeholders = {"line": "Thuis", "until": "12:15", "block_minutes": "12"}
    rendered: dict[str, str] = {}
    for category, keys in (
        ("issues", ("locked_out.title", "locked_out.description")),
        (
            "config",
            ("step.reauth_confirm.description", "step.reauth_locked.description"),
        ),
    ):
        texts = await async_get_translations(hass, language, category, {DOMAIN})
        for key in keys:
            rendered[f"{category}.{key}"] = texts[f"component.{DOMAIN}.{category}.{key}"].format(
                **placeholders
            )
    assert rendered == snapshot
