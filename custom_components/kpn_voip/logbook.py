"""Logbook entries of calls: what happened and who, in the user's language.

The Call event entity's own logbook lines say only what happened ("Call ->
Incoming call"); the entity also fires EVENT_CALL on the bus, described
here as "Incoming call: Jan Jansen (0612345678)", so the name (from the
phone book or the network, K16) and the number show where people look.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.const import ATTR_ENTITY_ID, ATTR_FRIENDLY_NAME
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.translation import async_get_cached_translations

from .calls import caller_text
from .const import DOMAIN, EVENT_CALL
from .kpn_line.protocol import CallerId

_EVENT_TYPES = f"component.{DOMAIN}.entity.event.call.state_attributes.event_type.state"


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, Any]]], None],
) -> None:
    """Describe EVENT_CALL."""

    @callback
    def describe(event: Event) -> dict[str, Any]:
        data = event.data
        translations = async_get_cached_translations(hass, hass.config.language, "entity", DOMAIN)
        what = str(data.get("event_type"))
        what = translations.get(f"{_EVENT_TYPES}.{what}", what)
        caller = CallerId(
            number=data.get("number"),
            national=data.get("national"),
            name=data.get("name"),
            anonymous=bool(data.get("anonymous")),
        )
        entity_id = data[ATTR_ENTITY_ID]
        state = hass.states.get(entity_id)
        return {
            LOGBOOK_ENTRY_NAME: state.attributes.get(ATTR_FRIENDLY_NAME, entity_id)
            if state is not None
            else entity_id,
            LOGBOOK_ENTRY_MESSAGE: f"{what}: {caller_text(caller, translations)}",
            LOGBOOK_ENTRY_ENTITY_ID: entity_id,
        }

    async_describe_event(DOMAIN, EVENT_CALL, describe)
