"""Repair issues the user has to act on: every issue id is made, raised and cleared here."""

from __future__ import annotations

import importlib.util

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from .const import (
    DOMAIN,
    ISSUE_LOCKED_OUT,
    ISSUE_OTHER_DEVICE,
    ISSUE_OUTCOME_UNKNOWN,
    ISSUE_PJSUA2_MISSING,
)

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


def _line_issue_id(key: str, entry: ConfigEntry) -> str:
    """A line's issue id: its translation key and the entry (one issue per line)."""
    return f"{key}_{entry.entry_id}"


def lockout_issue_id(entry: ConfigEntry) -> str:
    """The repair issue id for this entry's lockout (one per line)."""
    return _line_issue_id(ISSUE_LOCKED_OUT, entry)


def outcome_unknown_issue_id(entry: ConfigEntry) -> str:
    """The repair issue id for credentials of this entry whose outcome is unknown."""
    return _line_issue_id(ISSUE_OUTCOME_UNKNOWN, entry)


def local_time(until: float) -> str:
    """`until` (epoch seconds) as the local wall-clock time HH:MM, for texts."""
    return dt_util.as_local(dt_util.utc_from_timestamp(until)).strftime("%H:%M")


def _line_issue(
    hass: HomeAssistant,
    entry: ConfigEntry,
    key: str,
    severity: ir.IssueSeverity,
    **placeholders: str,
) -> None:
    """Raise the line's issue `key` (id `<key>_<entry_id>`, not fixable here), its
    translation given the line's title and `placeholders`."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        _line_issue_id(key, entry),
        is_fixable=False,
        severity=severity,
        translation_key=key,
        translation_placeholders={"line": entry.title, **placeholders},
    )


@callback
def async_create_lockout_issue(hass: HomeAssistant, entry: ConfigEntry, until: float) -> None:
    """Tell the user that KPN blocks the line and it logs in once by itself at `until`
    (epoch seconds, K8).  Only for a block that is no refusal of the stored password:
    that one has Home Assistant's reauth flow and its repair, and no issue of ours
    (one repair per cause, coordinator._k8_wait)."""
    ir.async_delete_issue(hass, DOMAIN, outcome_unknown_issue_id(entry))  # the outcome is known
    _line_issue(hass, entry, ISSUE_LOCKED_OUT, ir.IssueSeverity.ERROR, until=local_time(until))


@callback
def async_create_outcome_unknown_issue(
    hass: HomeAssistant, entry: ConfigEntry, until: float
) -> None:
    """Tell the user why the line waits: its credentials went out and no outcome came
    (issue 9 item 5, K8); it tries again by itself at `until` (epoch seconds)."""
    _line_issue(
        hass, entry, ISSUE_OUTCOME_UNKNOWN, ir.IssueSeverity.WARNING, until=local_time(until)
    )


@callback
def async_delete_lockout_issue(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Clear the line's lockout and unknown-outcome issues: registered again, new
    password, or line removed."""
    ir.async_delete_issue(hass, DOMAIN, lockout_issue_id(entry))
    ir.async_delete_issue(hass, DOMAIN, outcome_unknown_issue_id(entry))


def other_device_issue_id(entry: ConfigEntry) -> str:
    """The repair issue id for another device registered on this entry's line (K7)."""
    return _line_issue_id(ISSUE_OTHER_DEVICE, entry)


@callback
def async_update_other_device_issue(hass: HomeAssistant, entry: ConfigEntry, count: int) -> None:
    """Raise the K7 issue while the registrar lists `count` > 0 other devices' bindings
    on the line's account (a KPN Box with Vast Bellen on); clear it at 0."""
    if count <= 0:
        ir.async_delete_issue(hass, DOMAIN, other_device_issue_id(entry))
        return
    _line_issue(hass, entry, ISSUE_OTHER_DEVICE, ir.IssueSeverity.WARNING, count=str(count))
