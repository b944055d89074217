"""Where scripts/build-wheels leaves the kpn-voip-pjsua2 wheels (issue #10).

The wheelhouse is keyed by the hash of the build script and packaging/pjsua2/,
so a test always sees the wheels of the recipe in this checkout. Only the
manylinux x86_64 wheel is built by scripts/setup; the other targets come from
`scripts/build-wheels --all` and their tests skip until it has run.
"""

from __future__ import annotations

from pathlib import Path
import subprocess

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_WHEELS = ROOT / "scripts" / "build-wheels"
TARGETS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_28_aarch64",
    "musllinux_1_2_x86_64",
    "musllinux_1_2_aarch64",
)
DIST = "kpn_voip_pjsua2"


def _ask(option: str) -> Path:
    out = subprocess.run(
        ["bash", str(BUILD_WHEELS), option], capture_output=True, text=True, check=True
    ).stdout
    return Path(out.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """The folder holding this recipe's wheels (it may not exist yet)."""
    return _ask("--print-dir")


@pytest.fixture(scope="session")
def build_tools() -> Path:
    """The build tools' venv (auditwheel); skips when it was never created."""
    tools = _ask("--print-tools")
    if not (tools / "bin" / "auditwheel").exists():
        pytest.skip("no build tools yet: run scripts/build-wheels")
    return tools


def wheel_for(wheelhouse: Path, target: str) -> Path:
    """The wheel of one target, or skip with the command that builds it."""
    found = sorted(wheelhouse.glob(f"{DIST}-*-{target}.whl"))
    if not found:
        pytest.skip(f"no {target} wheel for this recipe: run `scripts/build-wheels --all`")
    return found[-1]
