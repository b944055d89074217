"""The environment scripts/setup builds has what the rest of the suite needs (issue #2)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.pjsua2_probe import PROBE, probe_result


def test_python_is_new_enough_for_current_home_assistant() -> None:
    """HA 2026.10+ needs Python >= 3.14.2."""
    assert sys.version_info >= (3, 14, 2)


def test_home_assistant_is_the_version_phcc_pins() -> None:
    """requirements_test.txt pins phcc; phcc pins HA."""
    from importlib.metadata import requires, version

    from homeassistant.const import __version__

    pinned = [
        r
        for r in requires("pytest-homeassistant-custom-component") or []
        if r.startswith("homeassistant==")
    ]
    assert pinned == [f"homeassistant=={__version__}"]
    assert version("homeassistant") == __version__


def test_pjsua2_is_the_static_217_build_with_kpn_codecs() -> None:
    """pjsua2 2.17 imports and offers the codecs KPN needs (K12, K13, K15).

    In a child process, as the engine runs it: pjlib writes its start-up lines
    to the C stdout, which pytest's capture would otherwise print at exit.
    """
    pytest.importorskip("pjsua2")
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    result = probe_result(out)
    assert result["version"] == [2, 17]
    assert {"PCMA/8000", "PCMU/8000", "G722/16000"} <= set(result["codecs"])


@pytest.mark.parametrize("tool", ["kamailio", "sipp", "tcpdump", "ip", "tc"])
def test_real_peer_tools_are_installed(tool: str) -> None:
    """The end-to-end tests use real peers, never mocks."""
    assert shutil.which(tool), f"{tool} missing: scripts/setup installs it"


def test_kamailio_has_the_modules_the_standin_uses() -> None:
    """auth, registrar, usrloc and htable ship with Debian's kamailio packages."""
    out = subprocess.run(["kamailio", "-v"], capture_output=True, text=True, check=True).stdout
    assert "kamailio 6." in out
