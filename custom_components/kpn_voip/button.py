"""The button that sets a line's missed-call count back to 0."""

from __future__ import annotations

from typing import override

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import KpnVoipConfigEntry
from .entity import KpnVoipCallsEntity

PARALLEL_UPDATES = 0

DESCRIPTION = ButtonEntityDescription(
    key="clear_missed_calls", translation_key="clear_missed_calls"
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KpnVoipConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the line's button."""
    async_add_entities([KpnVoipClearMissedButton(entry.runtime_data, DESCRIPTION)])


class KpnVoipClearMissedButton(KpnVoipCallsEntity, ButtonEntity):
    """Clears the missed calls sensor (the history keeps the calls)."""

    @override
    async def async_press(self) -> None:
        """Missed calls: 0."""
        self.coordinator.calls.clear_missed()
