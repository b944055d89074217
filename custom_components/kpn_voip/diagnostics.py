"""Diagnostics: what the line does, without what would let anyone use it (K9).

Built here from the entry's runtime data (the coordinator and its state) and
the persisted K8 record; the coordinator only keeps the facts.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from .const import CONF_ALLOW, CONF_BLOCK, CONF_ENGINE_COMMAND, CONF_NUMBER
from .coordinator import KpnVoipConfigEntry, KpnVoipCoordinator
from .kpn_line.profile import K9_REDACTED
from .lockout import LockoutRecord, PendingRecord, async_get_lockout_guard

# K9: the credentials and the own number (part of the SIP identity).
TO_REDACT = {CONF_PASSWORD, CONF_USERNAME, CONF_NUMBER}
# The block and allow lists are other people's numbers: only how many there are.
LISTS_TO_COUNT = (CONF_BLOCK, CONF_ALLOW)
# Caller details are other people's personal data.
CALLER_TO_REDACT = {"number", "national", "name"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: KpnVoipConfigEntry
) -> dict[str, Any]:
    """Diagnostics for one line."""
    coordinator = entry.runtime_data
    guard = await async_get_lockout_guard(hass)
    record = guard.active(coordinator.settings.username)
    settings = coordinator.settings
    pending = guard.unknown_outcome(settings.username, settings.password)
    caller = coordinator.data.last_caller
    return {
        "entry": {
            # The title is the display name or the number: redacted too.
            "title": K9_REDACTED,
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": async_redact_data(_count_lists(dict(entry.options)), TO_REDACT),
        },
        "line": async_redact_data(_line(coordinator, record, pending), TO_REDACT),
        # Counts only: the history is other people's personal data.
        "calls": coordinator.calls.diagnostics(),
        "last_caller": None
        if caller is None
        else async_redact_data(caller.attributes(), CALLER_TO_REDACT),
    }


def _count_lists(options: dict[str, Any]) -> dict[str, Any]:
    """The options with each block/allow list replaced by its length."""
    return {
        key: len(value) if key in LISTS_TO_COUNT and isinstance(value, list) else value
        for key, value in options.items()
    }


def _line(
    coordinator: KpnVoipCoordinator, record: LockoutRecord | None, pending: PendingRecord | None
) -> dict[str, Any]:
    """The line's state, engine supervision and settings (secrets hidden by the caller)."""
    state = coordinator.data
    reg = coordinator.last_registration
    return {
        "status": state.status.value,
        "call_status": state.call_status.value,
        "engine_running": state.engine_running,
        "active_calls": state.active_calls,
        "restarts": coordinator.restarts,
        # INVITEs refused from the proxy's network but not its registered address (item 8).
        "refused_from_proxy_network": coordinator.refused_proxy_network,
        # K7: other devices' bindings the registrar listed (a count: never their Contacts).
        "other_devices": coordinator.other_devices,
        "next_restart_delay": coordinator.next_restart_delay,
        "blocked": coordinator.blocked,
        "last_exit": coordinator.last_exit,
        "last_registration": None
        if reg is None
        else {
            "state": reg.state.value,
            "code": reg.code,
            "reason": reg.reason,
            "expires": reg.expires,
            "next_attempt": reg.next_attempt,
        },
        "lockout": None
        if record is None
        else {"reason": record.reason, "until": dt_util.utc_from_timestamp(record.until)},
        # Credentials sent without an outcome: not sent again before this (issue 9 item 5).
        "outcome_unknown_until": None
        if pending is None
        else dt_util.utc_from_timestamp(pending.until),
        "settings": coordinator.settings.redacted(),
        "custom_engine_command": CONF_ENGINE_COMMAND in coordinator.config_entry.options,
    }
