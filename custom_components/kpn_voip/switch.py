"""The do-not-disturb switch of a line."""

from __future__ import annotations

from typing import Any, override

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import KpnVoipConfigEntry
from .entity import KpnVoipCallsEntity

PARALLEL_UPDATES = 0

DESCRIPTION = SwitchEntityDescription(key="do_not_disturb", translation_key="do_not_disturb")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KpnVoipConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the line's switch."""
    async_add_entities([KpnVoipDoNotDisturbSwitch(entry.runtime_data, DESCRIPTION)])


class KpnVoipDoNotDisturbSwitch(KpnVoipCallsEntity, SwitchEntity):
    """While on, incoming calls are refused with 486 Busy Here before they ring.

    They still reach the history and fire a `rejected_call` event.  The
    state is kept in the line's Store, so it survives a restart, and can be
    switched while the engine is down (the engine gets it when it starts).
    """

    @property
    @override
    def is_on(self) -> bool:
        """Whether do-not-disturb is on."""
        return self.coordinator.calls.do_not_disturb

    @override
    async def async_turn_on(self, **kwargs: Any) -> None:
        """Refuse incoming calls."""
        await self.coordinator.calls.async_set_do_not_disturb(True)

    @override
    async def async_turn_off(self, **kwargs: Any) -> None:
        """Let calls ring again."""
        await self.coordinator.calls.async_set_do_not_disturb(False)
