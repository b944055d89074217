"""Constants for the KPN VoIP integration."""

from __future__ import annotations

from typing import Final

from .kpn_line.profile import *  # noqa: F403  K1..K26, one name per requirement
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
