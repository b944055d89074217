"""Constants for the KPN VoIP integration."""

from __future__ import annotations

import logging
from typing import Final

# The KPN profile, one name per requirement (K1..K26).
from .kpn_line.profile import *  # noqa: F403

DOMAIN: Final = "kpn_voip"

CONF_NUMBER: Final = "number"
CONF_DISPLAY_NAME: Final = "display_name"
CONF_PROXY_HOST: Final = "proxy_host"
CONF_PROXY_PORT: Final = "proxy_port"
CONF_KEEPALIVE: Final = "keepalive_interval"
CONF_ALLOWED_SOURCES: Final = "allowed_sources"
CONF_ENGINE_COMMAND: Final = "engine_command"

# Advanced options, named as the LineSettings fields they override.
SETTINGS_OPTIONS: Final = (CONF_PROXY_HOST, CONF_PROXY_PORT, CONF_KEEPALIVE, CONF_ALLOWED_SOURCES)

LOGGER: Final = logging.getLogger(__package__)

# Engine supervision: restart a dead engine after 5 s, 10 s, 20 s ... at most
# 5 minutes apart, so a broken installation never spins (and never floods KPN).
RESTART_BACKOFF_INITIAL: Final = 5.0
RESTART_BACKOFF_MAX: Final = 300.0
# Only an engine that stayed registered this long resets the back-off: one that
# crashes soon after registering keeps backing off instead of restarting every 5 s.
RESTART_STABLE_SECONDS: Final = 120.0
# How long setup waits for the first registration outcome before it gives up
# and lets Home Assistant retry (ConfigEntryNotReady).
FIRST_REGISTRATION_TIMEOUT: Final = 20.0
# The config flow's single test REGISTER (K8) is given this long.
PROBE_TIMEOUT: Final = 15.0

# K8: persisted auth failures, so no restart (engine or HA) repeats them.
LOCKOUT_STORAGE_KEY: Final = f"{DOMAIN}.lockout"
LOCKOUT_STORAGE_VERSION: Final = 1

ISSUE_PJSUA2_MISSING: Final = "pjsua2_missing"
ISSUE_LOCKED_OUT: Final = "locked_out"
ISSUE_OUTCOME_UNKNOWN: Final = "outcome_unknown"
# K7: the registrar lists another device's binding on the line's account.
ISSUE_OTHER_DEVICE: Final = "other_device"

# Calls (issue 12): options of the phone book and the call policy.
CONF_PHONE_BOOK: Final = "phone_book"  # a .vcf file, relative to the config folder
CONF_BLOCK: Final = "block"  # numbers and prefixes ("0900*") refused with 603
CONF_ALLOW: Final = "allow"  # numbers and prefixes that always ring
CONF_BLOCK_ANONYMOUS: Final = "block_anonymous"
CONF_PHONE_BOOK_UPLOAD: Final = "phone_book_upload"  # the options form's file field
SECTION_CALLS: Final = "calls"  # the options form's section with the above
# Where an uploaded phone book is kept, relative to the config folder.
PHONE_BOOK_UPLOAD_PATH: Final = "kpn_voip/phone_book_{entry_id}.vcf"
# Fired on the bus with every call event of the Call event entity, with the caller
# (K16), for event triggers; not in the logbook (event.py says why).
EVENT_CALL: Final = f"{DOMAIN}_call"
# Sound (issue 11): the numbers a line calls with notify.send_message (config subentries).
SUBENTRY_CALL_TARGET: Final = "call_target"
