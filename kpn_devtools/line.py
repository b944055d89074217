"""The line engine's HA-free package, under the one name this process uses.

kpn_line/__init__.py allows one import name per process.  The test session
runs Home Assistant, which imports the integration (and so the engine
package) as `custom_components.kpn_voip.kpn_line`: tests/conftest.py does
that first, and then these tools use that name too.  The tools' own
processes (scripts/standin, scripts/call, scripts/develop, the benchmarks)
have no Home Assistant in them and use `kpn_line`, as the engine process does.
The type checker reads the long name, so it needs no extra search path (a
search path of custom_components/kpn_voip would shadow the standard library's
`calendar` with the integration's calendar platform).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING or "custom_components.kpn_voip" in sys.modules:
    from custom_components.kpn_voip.kpn_line.lockout import lockout_until
    from custom_components.kpn_voip.kpn_line.numbers import normalize_presented_number, too_long
    from custom_components.kpn_voip.kpn_line.profile import (
        K1_DOMAIN,
        K8_LOCKOUT_SECONDS,
        K21_REGISTER_EXPIRES,
    )
    from custom_components.kpn_voip.kpn_line.settings import LineSettings
else:
    from kpn_line.lockout import lockout_until
    from kpn_line.numbers import normalize_presented_number, too_long
    from kpn_line.profile import K1_DOMAIN, K8_LOCKOUT_SECONDS, K21_REGISTER_EXPIRES
    from kpn_line.settings import LineSettings

__all__ = [
    "K1_DOMAIN",
    "K8_LOCKOUT_SECONDS",
    "K21_REGISTER_EXPIRES",
    "LineSettings",
    "lockout_until",
    "normalize_presented_number",
    "too_long",
]
