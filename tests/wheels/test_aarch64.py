"""The aarch64 manylinux wheel runs on an aarch64 CPython 3.14 (issue #10).

No aarch64 machine here: Debian's arm64 python3.14 (unpacked by
scripts/build-test-pythons) runs under qemu-user (`qemu-aarch64 -L ROOT`).
The wheel is unpacked onto PYTHONPATH, pjsua2 initialises (library, UDP
transport, the KPN codecs K12-K15), and the real line engine registers with
the KPN stand-in.

The musllinux aarch64 wheel is not run: that needs a musl CPython 3.14, and
no registry this project uses serves one or its source (docs/installation.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
import shutil
import subprocess
import zipfile

import pytest

from custom_components.kpn_voip.kpn_line.settings import LineSettings
from kpn_devtools.kamailio import TEST_ACCOUNT, Kamailio
from tests.kpn_line.conftest import Line, LineFactory, line_factory
from tests.pjsua2_probe import PROBE, probe_result

from .conftest import ROOT, wheel_for

__all__ = ["line_factory"]

TARGET = "manylinux_2_28_aarch64"
# Seconds the client waits for the emulated engine's hello (EngineClient's
# hello_timeout; the native default is client.HELLO_TIMEOUT, 20 s).  The hello
# comes after the interpreter's start and the pjsua2 import, all emulated:
# CPU-bound, so it stretches with the machine's load.  Measured on the project's
# 2-core machine (spawn to hello): native 0.10 s; under qemu-user 1.6-1.8 s
# alone (17x), 2.1-4.0 s with two engines starting at once, 10.4 s for
# `start` (hello + its reply) with two at once and two busy loops beside them,
# and over 20 s once at a load average of 8, where the native budget then
# failed the test ("the engine did not say hello").  120 s is over ten times
# the loaded figure and leaves the test's own 180 s timeout room for the
# registration (0.03-0.4 s measured) and the OPTIONS exchanges.
QEMU_HELLO_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def qemu_python() -> list[str]:
    """The command that runs Debian's arm64 python3.14 under qemu-user."""
    qemu = shutil.which("qemu-aarch64")
    if qemu is None:
        pytest.skip("qemu-user is not installed (scripts/setup installs it)")
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-test-pythons"), "--print-dir"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    root = Path(out.strip().splitlines()[-1]) / "root"
    python = root / "usr" / "bin" / "python3.14"
    if not python.exists():
        pytest.skip("no aarch64 CPython: run `scripts/build-test-pythons`")
    return [qemu, "-L", str(root), str(python)]


@pytest.fixture
def aarch64_site(wheelhouse: Path, tmp_path: Path) -> Path:
    """The aarch64 manylinux wheel, unpacked (what an installer puts in site-packages)."""
    wheel = wheel_for(wheelhouse, TARGET)
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


type Aarch64LineFactory = Callable[[LineSettings], Awaitable[Line]]


@pytest.fixture
def aarch64_line_factory(
    qemu_python: list[str],
    aarch64_site: Path,
    line_factory: LineFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Aarch64LineFactory:
    """Start the real engine (kpn_line.engine) on the aarch64 wheel under qemu-user:
    `await aarch64_line_factory(settings)`, registered (line_factory's Line)."""
    monkeypatch.setenv("PYTHONPATH", str(aarch64_site))  # the client puts kpn_line before it

    async def start(settings: LineSettings) -> Line:
        return await line_factory(
            settings,
            command=[*qemu_python, "-m", "kpn_line.engine"],
            reply_timeout=60.0,
            hello_timeout=QEMU_HELLO_TIMEOUT,
        )

    return start


def test_pjsua2_initialises_under_qemu(qemu_python: list[str], aarch64_site: Path) -> None:
    """Library init, a UDP transport, PCMA, PCMU and G.722 (K12-K15)."""
    out = subprocess.run(
        [*qemu_python, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={"PYTHONPATH": str(aarch64_site), "PATH": "/usr/bin:/bin"},
        cwd=aarch64_site,
    ).stdout
    result = probe_result(out)
    assert result["version"] == [2, 17]
    assert {"PCMA/8000", "PCMU/8000", "G722/16000"} <= set(result["codecs"])
    assert result["udp"].startswith("127.0.0.1:")
    assert not result["udp"].endswith(":0")


async def test_line_engine_registers_under_qemu(
    aarch64_line_factory: Aarch64LineFactory, kamailio: Kamailio
) -> None:
    """The real engine (kpn_line.engine) on aarch64 registers with the stand-in."""
    await aarch64_line_factory(kamailio.line_settings())
    assert kamailio.contacts(TEST_ACCOUNT.number)
