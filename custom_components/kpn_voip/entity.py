"""Base entity: one device per line."""

from __future__ import annotations

from typing import Any, override

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import CONF_DISPLAY_NAME, CONF_NUMBER, DOMAIN
from .coordinator import KpnVoipCoordinator
from .kpn_line.numbers import to_national


class KpnVoipEntity(CoordinatorEntity[KpnVoipCoordinator]):
    """An entity of one KPN line."""

    _attr_has_entity_name = True
    # Unavailable while no engine runs; the line status sensor says why.
    _available_without_engine = False
    # What this entity showed after the last coordinator update (see _shown).
    _last_shown: tuple[Any, ...] | None = None

    def __init__(self, coordinator: KpnVoipCoordinator, description: EntityDescription) -> None:
        """Initialise from a description."""
        super().__init__(coordinator)
        self.entity_description = description
        entry = coordinator.config_entry
        # The entry id, not the number: reconfigure may change the number, and
        # the number is personal data kept out of registries' ids (K9).
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name=entry.data.get(CONF_DISPLAY_NAME) or to_national(entry.data[CONF_NUMBER]),
            manufacturer="KPN",
            model="Vast Bellen (SIP line)",
            entry_type=DeviceEntryType.SERVICE,
        )

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        """Write the state only when what a coordinator update can change of it changed.

        Every call event updates the coordinator: an entity rewritten with nothing
        new (the calendar's write alone took ~0.4 ms) kept the call state sensor and
        the call event waiting (issue 11, benchmarks/bench_ha.py).
        """
        shown = self._shown()
        if shown != self._last_shown:
            self._last_shown = shown
            self.async_write_ha_state()

    def _shown(self) -> tuple[Any, ...]:
        """What a coordinator update can change of this entity: its availability.

        The calls entities follow LineCalls (it tells them of its changes), the
        event and notify entities write on their own events; the sensors, whose
        state is the coordinator's data, add their state and attributes.
        """
        return (self.available,)

    @property
    @override
    def available(self) -> bool:
        """Available while the engine runs (the status sensor always is), and, as
        CoordinatorEntity's, while the coordinator's last update succeeded.

        CoordinatorEntity's test written out, not called through super(): this runs
        twice in every state write, the call state sensor's on the hot path of an
        incoming call (issue 11).
        """
        coordinator = self.coordinator
        return coordinator.last_update_success and (
            self._available_without_engine or coordinator.data.engine_running
        )


class KpnVoipCallsEntity(KpnVoipEntity):
    """An entity of the line's calls (history, missed count, do-not-disturb).

    Their data is kept by Home Assistant (calls.LineCalls, in its Store), so
    they stay available while the engine is down, and follow LineCalls'
    changes besides the coordinator's.
    """

    _available_without_engine = True

    @override
    async def async_added_to_hass(self) -> None:
        """Follow the line's calls."""
        await super().async_added_to_hass()
        self.async_on_remove(self.coordinator.calls.async_add_listener(self.async_write_ha_state))
