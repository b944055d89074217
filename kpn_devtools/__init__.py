"""Developer tools: the real SIP peers and the demo Home Assistant, as one package.

What is here (each module opens with its own account):

- `kamailio`: the KPN stand-in, a real Kamailio from `kamailio.cfg` (K1, K7, K8, K10, K21).
- `sipp`: SIPp peers (callers into the line, callees, misbehaving registrars) from the
  scenario templates in `scenarios/`.
- `capture`: tcpdump and a pcap reader (what really goes on the wire: K18, K19, K22).
- `netns`: network namespaces with priority counters (K22), root only.
- `ports`, `poll`: free loopback ports, the orphan guard, the one polling loop.
- `develop`: the demo Home Assistant behind `scripts/develop` (and the tests of it).
- `config_lock`, `demo_phone`: develop's claim on its config folder, and the phone with the
  companion app that the answering machine blueprint notifies in the demo.
- `pytest_plugin`: the fixtures (`kamailio`, `kamailio_factory`, `sipp`, `capture`,
  `netns`), registered by tests/conftest.py.
- `__main__`: `python -m kpn_devtools standin|call|develop` (scripts/standin, scripts/call,
  scripts/develop).

Import direction: tests, scripts and benchmarks import this package; it imports
neither of them, nor Home Assistant at module level (`develop` does inside
functions).  It uses the line engine's HA-free package through `line`, under the
one name the process uses: `custom_components.kpn_voip.kpn_line` in the test
session (it runs Home Assistant), `kpn_line` in the tools' own processes (its
folder, custom_components/kpn_voip, on PYTHONPATH from the scripts; see
`python_path`).
Everything it starts listens on 127.0.0.1 or inside a namespace it created.
"""

from __future__ import annotations

import os
from pathlib import Path
import sys

REPO_ROOT = Path(__file__).resolve().parents[1]
# Set by scripts/run (_env.sh's in_env) when it runs a command in a root file system
# (a chroot): where that file system's "/" is on this machine.
ENV_ROOT_VARIABLE = "KPN_ENV_ROOT"
ENGINE_PACKAGE_PARENT = REPO_ROOT / "custom_components" / "kpn_voip"

# PYTHONPATH puts that folder before the standard library, but it holds the
# integration's calendar.py (HA's platform), which would hide `calendar`
# (aiohttp imports it): keep the folder, behind the standard library.
if str(ENGINE_PACKAGE_PARENT) in sys.path:
    sys.path.remove(str(ENGINE_PACKAGE_PARENT))
    sys.path.append(str(ENGINE_PACKAGE_PARENT))


def python_path(existing: str | None = None) -> str:
    """PYTHONPATH for a child Python that imports this package and `kpn_line`.

    `existing` (e.g. os.environ.get("PYTHONPATH")) is kept behind ours.
    """
    parts = [str(REPO_ROOT), str(ENGINE_PACKAGE_PARENT)]
    if existing:
        parts.append(existing)
    return os.pathsep.join(parts)


def host_path(path: Path | str) -> str:
    """`path` as it is seen from outside the environment, where a newcomer opens it.

    scripts/run may run the tools in a root file system (a chroot) that shares only
    the checkout (mounted at the same path): a path in the checkout is the same
    outside, any other (a temp folder: the stand-in's log) lies under the root
    file system's folder on this machine (ENV_ROOT_VARIABLE).  Without that
    variable (no chroot) the path is returned as it is.
    """
    path = Path(path)
    root = os.environ.get(ENV_ROOT_VARIABLE)
    if not root or path.is_relative_to(REPO_ROOT) or not path.is_absolute():
        return str(path)
    return str(Path(root) / path.relative_to("/"))
