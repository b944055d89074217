"""What a config entry means for the line: its settings and its engine command.

Shared by the coordinator (which runs the line) and the config flow (which
edits the entry), so that neither has to import the other.
"""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME

from .const import CONF_DISPLAY_NAME, CONF_ENGINE_COMMAND, CONF_NUMBER, SETTINGS_OPTIONS
from .kpn_line.client import default_engine_command
from .kpn_line.settings import LineSettings


def settings_from_entry(entry: ConfigEntry) -> LineSettings:
    """The line's settings from a config entry (data + options).

    Raises LineSettings' ValueError if the entry holds a value it refuses.
    """
    # An option that is not set (or empty) leaves the KPN profile's value (K2, K10).
    overrides = {
        key: entry.options[key]
        for key in SETTINGS_OPTIONS
        if entry.options.get(key) not in (None, "")
    }
    return LineSettings.from_user_input(
        number=entry.data[CONF_NUMBER],
        username=entry.data[CONF_USERNAME],
        password=entry.data[CONF_PASSWORD],
        display_name=entry.data.get(CONF_DISPLAY_NAME, ""),
        **overrides,
    )


def engine_command(entry: ConfigEntry) -> list[str]:
    """The engine's command line: an advanced option, else this Python's `-m kpn_line.engine`."""
    if command := entry.options.get(CONF_ENGINE_COMMAND):
        return [str(part) for part in command]
    return default_engine_command()
