"""A notify entity per call target: notify.send_message calls the number and speaks.

Call targets are the numbers the user adds to the line as config subentries
(`call_target`, subentry_flow.py).  Sending a message dials the number, has
Home Assistant's TTS speak the title and the message once the call is answered
(kpn_voip.dial with a message) and hangs up after it; an unanswered call ends
after RING_SECONDS.
"""

from __future__ import annotations

from typing import Final, override

from homeassistant.components.notify import NotifyEntity
from homeassistant.components.notify.const import NotifyEntityFeature
from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_NUMBER, DOMAIN, SUBENTRY_CALL_TARGET
from .coordinator import KpnVoipConfigEntry, KpnVoipCoordinator
from .entity import KpnVoipEntity
from .sound import tts_media_id

PARALLEL_UPDATES = 0
RING_SECONDS: Final = 90.0  # an unanswered notification call ends after this (s)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KpnVoipConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One notify entity per call target of the line, also for targets added later."""
    coordinator = entry.runtime_data
    known: set[str] = set()

    @callback
    def add_new_targets() -> None:
        for subentry in entry.subentries.values():
            if subentry.subentry_type != SUBENTRY_CALL_TARGET or subentry.subentry_id in known:
                continue
            known.add(subentry.subentry_id)
            entity = KpnVoipNotifyEntity(
                coordinator, subentry.subentry_id, subentry.title, subentry.data[CONF_NUMBER]
            )
            async_add_entities([entity], config_subentry_id=subentry.subentry_id)

    @callback
    def entry_changed(change: ConfigEntryChange, changed: ConfigEntry) -> None:
        # A subentry added (the flow in subentry_flow.py) is an update of the entry;
        # a removed one takes its entity and device with it (Home Assistant does).
        if change is ConfigEntryChange.UPDATED and changed.entry_id == entry.entry_id:
            known.intersection_update(entry.subentries)
            add_new_targets()

    add_new_targets()
    entry.async_on_unload(
        async_dispatcher_connect(hass, SIGNAL_CONFIG_ENTRY_CHANGED, entry_changed)
    )


class KpnVoipNotifyEntity(KpnVoipEntity, NotifyEntity):
    """Calls one number and speaks the message."""

    _attr_supported_features = NotifyEntityFeature.TITLE

    def __init__(
        self, coordinator: KpnVoipCoordinator, subentry_id: str, title: str, number: str
    ) -> None:
        """`number`: as the user typed it (dialled as given, K25)."""
        super().__init__(coordinator, EntityDescription(key=f"call_target_{subentry_id}"))
        # A device of its own: a device belongs to one subentry.
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, subentry_id)},
            name=title,
            entry_type=DeviceEntryType.SERVICE,
        )
        self._attr_name = None  # the device's name: the target's
        self._number = number

    @override
    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """Dial the number; once answered, say `title` and `message`, then hang up."""
        text = f"{title}. {message}" if title else message
        await self.coordinator.async_dial(
            self._number,
            hangup_after=RING_SECONDS,
            media_id=tts_media_id(self.hass, text),
            hangup_after_playback=True,
        )
