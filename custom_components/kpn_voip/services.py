"""The kpn_voip.dial and kpn_voip.hangup actions."""

from __future__ import annotations

from typing import Any, cast

from homeassistant.const import ATTR_CONFIG_ENTRY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service import async_get_config_entry
import probatio

from .const import DOMAIN
from .coordinator import KpnVoipConfigEntry, KpnVoipCoordinator

HANGUP_AFTER_MAX = 24 * 3600

# An action's fields (besides the target line) are the keyword arguments of
# the coordinator method it calls: async_dial, async_hangup.
DIAL_SCHEMA = probatio.Schema(
    {
        probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Required("number"): cv.string,
        probatio.Optional("hide_caller_id", default=False): cv.boolean,
        probatio.Optional("hangup_after"): probatio.All(
            probatio.Coerce(float), probatio.Range(min=1, max=HANGUP_AFTER_MAX)
        ),
    }
)
HANGUP_SCHEMA = probatio.Schema(
    {
        probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Optional("call_id"): cv.string,
    }
)


def _target(call: ServiceCall) -> tuple[KpnVoipCoordinator, dict[str, Any]]:
    """The line the call targets (the one given, or the only one loaded), and the fields."""
    fields = dict(call.data)
    entry = cast(
        KpnVoipConfigEntry,
        async_get_config_entry(call.hass, DOMAIN, fields.pop(ATTR_CONFIG_ENTRY_ID, None)),
    )
    return entry.runtime_data, fields


async def _async_dial(call: ServiceCall) -> ServiceResponse:
    # The number goes as typed: the engine checks it once, as it builds the
    # INVITE (K25, K26), and its invalid_number becomes a translated error.
    coordinator, fields = _target(call)
    return {"call_id": await coordinator.async_dial(**fields)}


async def _async_hangup(call: ServiceCall) -> ServiceResponse:
    coordinator, fields = _target(call)
    return {"ended": await coordinator.async_hangup(**fields)}


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the line actions."""
    hass.services.async_register(
        DOMAIN,
        "dial",
        _async_dial,
        schema=DIAL_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        "hangup",
        _async_hangup,
        schema=HANGUP_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
