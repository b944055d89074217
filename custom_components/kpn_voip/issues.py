"""Repair issues the user has to act on outside Home Assistant."""

from __future__ import annotations

import importlib.util

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN, ISSUE_PJSUA2_MISSING

INSTALL_DOC_URL = "https://github.com/kpn-voip/kpn_voip/blob/main/docs/installation.md"


def _pjsua2_importable() -> bool:
    # find_spec, not import: loading pjproject into Home Assistant's own
    # process is exactly what the engine child process is there to avoid.
    return importlib.util.find_spec("pjsua2") is not None


async def async_check_pjsua2(hass: HomeAssistant) -> bool:
    """Raise (or clear) the repair issue for a missing pjsua2; True if it is there."""
    if await hass.async_add_executor_job(_pjsua2_importable):
        ir.async_delete_issue(hass, DOMAIN, ISSUE_PJSUA2_MISSING)
        return True
    ir.async_create_issue(
        hass,
        DOMAIN,
        ISSUE_PJSUA2_MISSING,
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_PJSUA2_MISSING,
        learn_more_url=INSTALL_DOC_URL,
    )
    return False
