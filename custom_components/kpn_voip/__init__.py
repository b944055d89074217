"""The KPN VoIP integration: a KPN "Vast Bellen" line in Home Assistant."""

from __future__ import annotations

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from .calls import LineCalls
from .const import DOMAIN, LOGGER
from .coordinator import KpnVoipConfigEntry, KpnVoipCoordinator
from .issues import (
    async_check_pjsua2,
    async_delete_lockout_issue,
    async_update_other_device_issue,
)
from .lockout import async_get_lockout_guard
from .services import async_setup_services
from .sound import complete_cut_off_recordings

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)
PLATFORMS = [
    Platform.BUTTON,
    Platform.CALENDAR,
    Platform.EVENT,
    Platform.NOTIFY,
    Platform.SENSOR,
    Platform.SWITCH,
]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, once for every line; complete recordings cut off by the
    end of Home Assistant (no engine runs yet: nothing is being recorded)."""
    async_setup_services(hass)
    for name, result in await hass.async_add_executor_job(complete_cut_off_recordings, hass):
        LOGGER.warning(
            "Recording %s was cut off when Home Assistant stopped; its %.1f s are kept",
            name,
            result.seconds,
        )
    return True


async def async_setup_entry(hass: HomeAssistant, entry: KpnVoipConfigEntry) -> bool:
    """Start the line's engine and its entities."""
    if not await async_check_pjsua2(hass):
        raise ConfigEntryNotReady(translation_domain=DOMAIN, translation_key="pjsua2_missing")
    coordinator = KpnVoipCoordinator(hass, entry, await async_get_lockout_guard(hass))
    await coordinator.async_start()
    entry.runtime_data = coordinator

    async def _async_hass_stop(_event: Event) -> None:
        # Unregister cleanly instead of leaving a registration behind (K7).
        await coordinator.async_shutdown()

    entry.async_on_unload(hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _async_hass_stop))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: KpnVoipConfigEntry) -> bool:
    """Unload the entities; the coordinator stops the engine (async_shutdown).

    Calls in progress end first, while the event entity can still report them.
    The K7 issue goes: an unloaded line holds no registration; a loaded one
    raises it again from its first registration.
    """
    if (coordinator := getattr(entry, "runtime_data", None)) is not None:
        coordinator.async_end_calls("line stopped")
    async_update_other_device_issue(hass, entry, 0)
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: KpnVoipConfigEntry) -> None:
    """Drop the entry's repair issue and call history when the line is removed."""
    async_delete_lockout_issue(hass, entry)
    await LineCalls(hass, entry).async_remove()
