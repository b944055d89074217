"""Constants for the KPN VoIP integration."""

from __future__ import annotations

import logging
from typing import Final

# The KPN profile, one name per requirement (K1..K26).
from .kpn_line.profile import *  # noqa: F403
from .kpn_line.profile import K1_DOMAIN, K2_PROXY_HOST, K2_PROXY_PORT, K10_KEEPALIVE_SECONDS

DOMAIN: Final = "kpn_voip"

CONF_NUMBER: Final = "number"
CONF_DISPLAY_NAME: Final = "display_name"
CONF_PROXY_HOST: Final = "proxy_host"
CONF_PROXY_PORT: Final = "proxy_port"
CONF_KEEPALIVE: Final = "keepalive_interval"
CONF_ENGINE_COMMAND: Final = "engine_command"

DEFAULT_DOMAIN: Final = K1_DOMAIN
DEFAULT_PROXY_HOST: Final = K2_PROXY_HOST
DEFAULT_PROXY_PORT: Final = K2_PROXY_PORT
DEFAULT_KEEPALIVE: Final = K10_KEEPALIVE_SECONDS

LOGGER: Final = logging.getLogger(__package__)

CONF_ALLOWED_SOURCES: Final = "allowed_sources"

# Engine supervision: restart a dead engine after 5 s, 10 s, 20 s ... at most
# 5 minutes apart, so a broken installation never spins (and never floods KPN).
RESTART_BACKOFF_INITIAL: Final = 5.0
RESTART_BACKOFF_MAX: Final = 300.0
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

SERVICE_DIAL: Final = "dial"
SERVICE_HANGUP: Final = "hangup"
ATTR_NUMBER: Final = "number"
ATTR_HIDE_CALLER_ID: Final = "hide_caller_id"
ATTR_HANGUP_AFTER: Final = "hangup_after"
ATTR_CALL_ID: Final = "call_id"
