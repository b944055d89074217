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
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service import async_get_config_entry
import probatio

from .const import DOMAIN
from .coordinator import KpnVoipConfigEntry, KpnVoipCoordinator

HANGUP_AFTER_MAX = 24 * 3600

# An action's fields (besides the target line) go to the coordinator method
# it calls as they are: async_dial, async_hangup.
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


def _line(hass: HomeAssistant, entry_id: str | None) -> KpnVoipCoordinator:
    """The line an action targets: the entry given, or the only one loaded."""
    entry = cast(KpnVoipConfigEntry, async_get_config_entry(hass, DOMAIN, entry_id))
    return entry.runtime_data


async def _async_dial(call: ServiceCall) -> ServiceResponse:
    # The number goes as typed: the engine checks it once, as it builds the
    # INVITE (K25, K26), and its invalid_number becomes a translated error.
    data = call.data
    call_id = await _line(call.hass, data.get(ATTR_CONFIG_ENTRY_ID)).async_dial(
        data["number"],
        hide_caller_id=data["hide_caller_id"],
        hangup_after=data.get("hangup_after"),
    )
    return {"call_id": call_id}


async def _async_hangup(call: ServiceCall) -> ServiceResponse:
    data = call.data
    ended = await _line(call.hass, data.get(ATTR_CONFIG_ENTRY_ID)).async_hangup(data.get("call_id"))
    return {"ended": ended}


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
