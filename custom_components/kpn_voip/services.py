"""The kpn_voip.dial and kpn_voip.hangup actions."""

from __future__ import annotations

from typing import cast

from homeassistant.const import ATTR_CONFIG_ENTRY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service import async_get_config_entry
import probatio

from .const import (
    ATTR_CALL_ID,
    ATTR_HANGUP_AFTER,
    ATTR_HIDE_CALLER_ID,
    ATTR_NUMBER,
    DOMAIN,
    SERVICE_DIAL,
    SERVICE_HANGUP,
)
from .coordinator import KpnVoipConfigEntry, KpnVoipCoordinator
from .kpn_line.numbers import InvalidNumberError, dial_string

HANGUP_AFTER_MAX = 24 * 3600

DIAL_SCHEMA = probatio.Schema(
    {
        probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Required(ATTR_NUMBER): cv.string,
        probatio.Optional(ATTR_HIDE_CALLER_ID, default=False): cv.boolean,
        probatio.Optional(ATTR_HANGUP_AFTER): probatio.All(
            probatio.Coerce(float), probatio.Range(min=1, max=HANGUP_AFTER_MAX)
        ),
    }
)
HANGUP_SCHEMA = probatio.Schema(
    {
        probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Optional(ATTR_CALL_ID): cv.string,
    }
)


def _coordinator(hass: HomeAssistant, call: ServiceCall) -> KpnVoipCoordinator:
    """The line the call targets: the one given, or the only one loaded."""
    entry = cast(
        KpnVoipConfigEntry,
        async_get_config_entry(hass, DOMAIN, call.data.get(ATTR_CONFIG_ENTRY_ID)),
    )
    return entry.runtime_data


async def _async_dial(call: ServiceCall) -> ServiceResponse:
    number: str = call.data[ATTR_NUMBER]
    hide_caller_id: bool = call.data[ATTR_HIDE_CALLER_ID]
    try:
        # Checked here for a translated error before anything reaches the line
        # (K25: only separators are stripped; K26: *31* when hidden).
        dial_string(number, hide_caller_id=hide_caller_id)
    except InvalidNumberError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="invalid_dial_number"
        ) from err
    coordinator = _coordinator(call.hass, call)
    call_id = await coordinator.async_dial(
        number, hide_caller_id=hide_caller_id, hangup_after=call.data.get(ATTR_HANGUP_AFTER)
    )
    return {ATTR_CALL_ID: call_id}


async def _async_hangup(call: ServiceCall) -> ServiceResponse:
    coordinator = _coordinator(call.hass, call)
    ended = await coordinator.async_hangup(call.data.get(ATTR_CALL_ID))
    return {"ended": ended}


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the line actions."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_DIAL,
        _async_dial,
        schema=DIAL_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_HANGUP,
        _async_hangup,
        schema=HANGUP_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
