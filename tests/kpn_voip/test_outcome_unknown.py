"""Credentials sent, outcome unknown (issue 9 item 5, K8), on the Home Assistant side.

An engine that dies between the credentialed REGISTER and its answer leaves no
outcome: the integration keeps "credentials sent, outcome unknown" (lockout.py)
and starts no new credentialed attempt with them until the K8 window from their
sending has passed - unless the registrar accepted the same credentials before.
The same on the wire, with a real engine killed mid-REGISTER: test_e2e.py.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.kpn_voip.const import DOMAIN, LOCKOUT_STORAGE_KEY
from custom_components.kpn_voip.issues import outcome_unknown_issue_id
from custom_components.kpn_voip.kpn_line.lockout import credential_fingerprint
from custom_components.kpn_voip.kpn_line.profile import K8_LOCKOUT_SECONDS
from custom_components.kpn_voip.kpn_line.protocol import RegState
from custom_components.kpn_voip.lockout import async_get_lockout_guard

from .conftest import (
    PASSWORD,
    USERNAME,
    WRONG_PASSWORD,
    FakeEngineFactory,
    Line,
    lockout_issue,
    registration,
    setup_entry,
)

STATUS = "sensor.thuis_line_status"


def _issue(hass: HomeAssistant, entry: MockConfigEntry) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, outcome_unknown_issue_id(entry))


async def test_engine_dead_before_the_outcome_holds_the_credentials(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    freezer: Any,
    hass_client: Any,
) -> None:
    """The first setup's engine sends the credentials and dies: the entry loads with the
    status outcome_unknown and a repair issue (en + nl), a reload starts no engine, and
    the line starts by itself once the K8 window has passed - one attempt in all before."""
    fake_engine.first_state = None
    fake_engine.sent_then_die = True
    await setup_entry(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert len(fake_engine.started) == 1
    assert hass.states.get(STATUS).state == "outcome_unknown"
    issue = _issue(hass, mock_config_entry)
    assert issue is not None
    stored = hass_storage[LOCKOUT_STORAGE_KEY]["data"][USERNAME]
    assert stored["pending"]["fingerprint"] == credential_fingerprint(USERNAME, PASSWORD)
    # The window counts from the sending; the issue says when it ends, in local time.
    until = dt_util.utc_from_timestamp(stored["pending"]["time"] + K8_LOCKOUT_SECONDS)
    local = dt_util.as_local(until).strftime("%H:%M")
    assert issue.translation_placeholders == {"line": "Thuis", "until": local}
    assert PASSWORD not in str(hass_storage[LOCKOUT_STORAGE_KEY])  # K9

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, mock_config_entry)
    assert diagnostics["line"]["status"] == "outcome_unknown"
    assert diagnostics["line"]["outcome_unknown_until"] == until.isoformat()

    # A reload (and a Home Assistant restart: the record is on disk) sends nothing.
    await hass.config_entries.async_reload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert len(fake_engine.started) == 1
    assert hass.states.get(STATUS).state == "outcome_unknown"

    # After the window the line starts by itself; registered clears the issue.
    fake_engine.sent_then_die = False
    fake_engine.first_state = None
    line = Line(hass, mock_config_entry, fake_engine, freezer)
    await line.advance(K8_LOCKOUT_SECONDS - 60)
    assert len(fake_engine.started) == 1
    await line.advance(61)
    assert len(fake_engine.started) == 2
    await line.emit(registration(RegState.REGISTERED, 200))
    assert hass.states.get(STATUS).state == "registered"
    assert _issue(hass, mock_config_entry) is None
    assert "pending" not in hass_storage[LOCKOUT_STORAGE_KEY]["data"][USERNAME]


async def test_engine_hung_after_sending_holds_and_stops_without_credentials(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """The engine sends the credentials and then says nothing (hung) past the wait for
    their outcome: the setup ends held (outcome_unknown), and the hung engine is stopped
    without answering a challenge to its un-REGISTER (K8)."""
    fake_engine.first_state = None
    fake_engine.sent_then_silent = True
    with (
        patch("custom_components.kpn_voip.coordinator.FIRST_REGISTRATION_TIMEOUT", 0.01),
        patch("custom_components.kpn_voip.coordinator.CREDENTIALS_OUTCOME_WAIT", 0.05),
    ):
        await setup_entry(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert hass.states.get(STATUS).state == "outcome_unknown"
    assert fake_engine.last.stop_credentials == [False]
    assert _issue(hass, mock_config_entry) is not None


async def test_a_new_attempt_that_dies_again_is_held_again(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    freezer: Any,
) -> None:
    """After the window the line tries once; if that engine dies before the outcome too,
    the line is held again for a window (no restart every few seconds with credentials
    never accepted)."""
    fake_engine.first_state = None
    fake_engine.sent_then_die = True
    await setup_entry(hass, mock_config_entry)
    line = Line(hass, mock_config_entry, fake_engine, freezer)
    await line.advance(K8_LOCKOUT_SECONDS + 1)
    assert len(fake_engine.started) == 2  # the one new attempt; it died again
    await line.advance(60)
    assert len(fake_engine.started) == 2
    assert hass.states.get(STATUS).state == "outcome_unknown"
    await line.advance(K8_LOCKOUT_SECONDS)
    assert len(fake_engine.started) == 3


async def test_accepted_credentials_are_not_held(line: Line) -> None:
    """A line registered with these credentials whose engine dies mid-registration (after a
    crash, the new engine's REGISTER carries the credentials again) is restarted with the
    usual back-off: an unknown outcome of credentials accepted before is no wrong-password
    attempt, and a 15-minute wait would only keep a working line down."""
    line.engines.first_state = None
    line.engines.sent_then_die = True
    await line.die()
    await line.advance(5)  # restarted: reports the credentials sent, then dies
    assert len(line.engines.started) == 2
    assert line.state(STATUS) == "engine_down"
    await line.advance(10)
    assert len(line.engines.started) == 3
    assert _issue(line.hass, line.entry) is None


async def test_another_password_is_not_held(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """The hold is for the credentials that went out: a new password (reauth) may go."""
    guard = await async_get_lockout_guard(hass)
    guard.note_credentials_sent(USERNAME, WRONG_PASSWORD)
    assert guard.unknown_outcome(USERNAME, WRONG_PASSWORD) is not None
    assert guard.unknown_outcome(USERNAME, PASSWORD) is None
    await setup_entry(hass, mock_config_entry)
    assert hass.states.get(STATUS).state == "registered"
    assert len(fake_engine.started) == 1


async def test_stop_inside_a_k8_window_sends_no_credentials(
    line: Line, hass_storage: dict[str, Any]
) -> None:
    """K8: a password refused elsewhere (a reauth attempt) starts KPN's block: the reload
    that follows un-REGISTERs without answering a challenge, starts no engine, and the
    line status says "Blocked by KPN" (the stored password was not refused) instead of
    "unavailable"."""
    engine = line.engine
    guard = await async_get_lockout_guard(line.hass)
    await guard.async_record(USERNAME, WRONG_PASSWORD, "auth_failed")
    await line.hass.config_entries.async_reload(line.entry.entry_id)
    await line.hass.async_block_till_done()
    assert engine.stop_credentials[0] is False
    assert len(line.engines.started) == 1
    assert line.entry.state is ConfigEntryState.LOADED
    assert line.state(STATUS) == "locked_out"
    assert lockout_issue(line.hass, line.entry) is not None


async def test_stop_outside_a_k8_window_unregisters_normally(line: Line) -> None:
    """Without a block the un-REGISTER answers its challenge as usual (K7)."""
    engine = line.engine
    await line.hass.config_entries.async_unload(line.entry.entry_id)
    assert engine.stop_credentials == [True]
