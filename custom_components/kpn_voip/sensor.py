"""Sensors of a KPN line: line status, call state, last caller, missed calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self, override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import ExtraStoredData, RestoreEntity
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .calls import HIDDEN_NUMBER, caller_text
from .coordinator import KpnVoipConfigEntry, KpnVoipCoordinator
from .entity import KpnVoipCallsEntity, KpnVoipEntity
from .kpn_line.protocol import CallerId
from .models import LINE_STATUSES, CallStatus, LastCaller, LineState

# The coordinator pushes; entities never poll.
PARALLEL_UPDATES = 0

# The E.164 number is `number`, as in the call events and diagnostics; `e164`
# is its old name on this sensor, kept as an alias so automations using it go on.
ATTR_E164_ALIAS = "e164"


@dataclass(frozen=True, kw_only=True)
class KpnVoipSensorEntityDescription(SensorEntityDescription):
    """Describes a sensor of a line."""

    value_fn: Callable[[LineState], StateType]
    attributes_fn: Callable[[LineState], dict[str, Any] | None] = lambda _state: None
    available_without_engine: bool = False


def _last_caller_attributes(state: LineState) -> dict[str, Any] | None:
    if (last := state.last_caller) is None:
        return None
    return last.attributes() | {ATTR_E164_ALIAS: last.caller.number}


SENSORS: tuple[KpnVoipSensorEntityDescription, ...] = (
    KpnVoipSensorEntityDescription(
        key="line_status",
        translation_key="line_status",
        device_class=SensorDeviceClass.ENUM,
        options=[status.value for status in LINE_STATUSES],
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state: state.status.value,
        # It is what tells the user why the other entities are unavailable.
        available_without_engine=True,
    ),
    KpnVoipSensorEntityDescription(
        key="call_state",
        translation_key="call_state",
        device_class=SensorDeviceClass.ENUM,
        options=[status.value for status in CallStatus],
        value_fn=lambda state: state.call_status.value,
    ),
    KpnVoipSensorEntityDescription(
        key="last_caller",
        translation_key="last_caller",
        # K16: the national form is what people recognise; E.164 is an attribute.
        value_fn=lambda state: None
        if state.last_caller is None
        else (state.last_caller.caller.national or state.last_caller.caller.number),
        attributes_fn=_last_caller_attributes,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KpnVoipConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the line's sensors."""
    coordinator = entry.runtime_data
    classes: dict[str, type[KpnVoipSensorEntity]] = {
        "call_state": KpnVoipCallStateSensor,
        "last_caller": KpnVoipLastCallerSensor,
    }
    async_add_entities(
        [
            *(
                classes.get(description.key, KpnVoipSensorEntity)(coordinator, description)
                for description in SENSORS
            ),
            KpnVoipMissedCallsSensor(coordinator, MISSED_CALLS),
        ]
    )


class KpnVoipSensorEntity(KpnVoipEntity, SensorEntity):
    """A sensor of a line."""

    entity_description: KpnVoipSensorEntityDescription

    def __init__(
        self, coordinator: KpnVoipCoordinator, description: KpnVoipSensorEntityDescription
    ) -> None:
        """Initialise from a description."""
        super().__init__(coordinator, description)
        self._available_without_engine = description.available_without_engine

    @property
    @override
    def native_value(self) -> StateType:
        """The sensor's state."""
        return self.entity_description.value_fn(self.coordinator.data)

    @override
    def _shown(self) -> tuple[Any, ...]:
        """Availability and state: both come from the coordinator's data (no attributes
        but the last caller's, KpnVoipLastCallerSensor)."""
        return (self.available, self.native_value)


class KpnVoipCallStateSensor(KpnVoipSensorEntity):
    """The call state: written before every other entity of the line when it changes.

    Its state is read straight from the coordinator's data (the CallStatus, a str
    enum: Home Assistant writes its value), not through the description's value_fn
    and the enum's `.value` property: INVITE -> this state is the figure of issue 11
    (benchmarks/bench_ha.py), on a cold CPU where every Python call counts.
    """

    @property
    @override
    def native_value(self) -> StateType:
        """The call status."""
        return self.coordinator.data.call_status

    @override
    def _shown(self) -> tuple[Any, ...]:
        """Availability and the call status."""
        return (self.available, self.coordinator.data.call_status)

    @override
    async def async_added_to_hass(self) -> None:
        """Write a new call status before the other entities (issue 11)."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.coordinator.async_add_call_status_listener(self._handle_coordinator_update)
        )


@dataclass(frozen=True, slots=True)
class LastCallerStoredData(ExtraStoredData):
    """The last caller as Home Assistant's restore state keeps it (across a reload or a
    restart): the caller's attributes (CallerId.attributes: number, national, name,
    anonymous) and `time` (ISO 8601), i.e. LastCaller.attributes().  Nothing secret."""

    last: LastCaller

    @override
    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return self.last.attributes()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self | None:
        """Back from as_dict; None for a damaged or foreign entry (then nothing is restored)."""
        try:
            time = dt_util.parse_datetime(data["time"])
            caller = CallerId(
                number=data.get("number"),
                national=data.get("national"),
                name=data.get("name"),
                anonymous=bool(data.get("anonymous", False)),
            )
        except (KeyError, TypeError, ValueError):
            return None
        if time is None:
            return None
        return cls(LastCaller(caller=caller, time=time))


class KpnVoipLastCallerSensor(KpnVoipSensorEntity, RestoreEntity):
    """The last caller; a hidden one reads "Hidden number", never "unknown" like no call yet.

    That state is the key `hidden_number`, which the frontend shows in the viewer's
    language (the translation_key's `state` texts; any other state is shown as it is).

    The line's state (the coordinator's LastCaller) is the one source of the state and
    the attributes; it starts empty, so after a reload or a restart the caller kept by
    Home Assistant's restore state goes back into it (`async_added_to_hass`).
    """

    @override
    async def async_added_to_hass(self) -> None:
        """Put the last caller from before the reload/restart back into the line's state."""
        await super().async_added_to_hass()
        if self.coordinator.data.last_caller is not None:
            return  # a call rang since the set-up: it is newer
        if (extra := await self.async_get_last_extra_data()) is not None and (
            stored := LastCallerStoredData.from_dict(extra.as_dict())
        ) is not None:
            self.coordinator.restore_last_caller(stored.last)

    @property
    @override
    def extra_restore_state_data(self) -> LastCallerStoredData | None:
        """The last caller to keep across a reload/restart; None before any call."""
        if (last := self.coordinator.data.last_caller) is None:
            return None
        return LastCallerStoredData(last)

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Details of the last caller."""
        return self.entity_description.attributes_fn(self.coordinator.data)

    @override
    def _shown(self) -> tuple[Any, ...]:
        """Availability, state and attributes: all come from the coordinator's data."""
        return (self.available, self.native_value, self.extra_state_attributes)

    @property
    @override
    def native_value(self) -> StateType:
        """The caller's national number; without a number (hidden, or a caller ID that is
        no phone number) the name the call came with, else `hidden_number`, which the
        frontend shows as "Hidden number" in the viewer's language (K16)."""
        last = self.coordinator.data.last_caller
        if last is not None and ((caller := last.caller).anonymous or not caller.number):
            if not (caller.name or caller.national or caller.number):
                return HIDDEN_NUMBER  # a key: worded by the frontend
            return caller_text(caller, {})  # a name or a number: no text to translate
        return super().native_value


ATTR_SINCE = "since"

MISSED_CALLS = SensorEntityDescription(
    key="missed_calls",
    translation_key="missed_calls",
    state_class=SensorStateClass.TOTAL,
)


class KpnVoipMissedCallsSensor(KpnVoipCallsEntity, SensorEntity):
    """Incoming calls that rang unanswered since the count was last cleared (the button)."""

    @property
    @override
    def native_value(self) -> int:
        """The count."""
        return self.coordinator.calls.missed

    @property
    @override
    def last_reset(self) -> datetime | None:
        """When the count was last cleared (TOTAL state class: statistics restart there)."""
        return self.coordinator.calls.missed_since

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Since when it counts."""
        since = self.coordinator.calls.missed_since
        return {ATTR_SINCE: None if since is None else since.isoformat()}
