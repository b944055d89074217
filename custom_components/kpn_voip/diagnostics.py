"""Diagnostics: what the line does, without what would let anyone use it (K9)."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant

from .const import CONF_NUMBER
from .coordinator import KpnVoipConfigEntry
from .kpn_line.profile import K9_REDACTED

# K9: the credentials and the own number (part of the SIP identity).
TO_REDACT = {CONF_PASSWORD, CONF_USERNAME, CONF_NUMBER}
# Caller details are other people's personal data.
CALLER_TO_REDACT = {"number", "national", "name"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: KpnVoipConfigEntry
) -> dict[str, Any]:
    """Diagnostics for one line."""
    coordinator = entry.runtime_data
    state = coordinator.data
    caller = state.last_caller
    return {
        "entry": {
            # The title is the display name or the number: redacted too.
            "title": K9_REDACTED,
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": async_redact_data(dict(entry.options), TO_REDACT),
        },
        "line": async_redact_data(coordinator.diagnostics(), TO_REDACT),
        # Counts only: the history is other people's personal data.
        "calls": coordinator.calls.diagnostics(),
        "last_caller": None
        if caller is None
        else async_redact_data(caller.attributes(), CALLER_TO_REDACT),
    }
