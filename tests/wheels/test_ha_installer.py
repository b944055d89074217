"""Home Assistant's own installer puts kpn-voip-pjsua2 in place (issue #10).

A real Home Assistant (`python -m homeassistant`, not the test harness, and
without --skip-pip) runs from a fresh venv that has Home Assistant but no
pjsua2. Its package index is a PEP 503 "simple" index served on 127.0.0.1
from the wheel scripts/build-wheels made (UV_INDEX_URL, which HA's
`uv pip install` honours). Adding the line through the config flow makes HA
install the manifest's requirement, and the line registers with the KPN
stand-in. Then the package is removed (as an image update of HA Container /
HA OS does) and HA restarts with the index unreachable: HA keeps running and
reports the integration as not set up, without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import hashlib
import http.server
import importlib.util
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import sysconfig
import threading

import pytest

from kpn_devtools.develop import Develop
from kpn_devtools.kamailio import DEMO_ACCOUNT
from kpn_devtools.ports import free_tcp_port, free_udp_port

from .conftest import wheel_for

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(
        importlib.util.find_spec("hass_frontend") is None or shutil.which("kamailio") is None,
        reason="Home Assistant cannot start here: the frontend or kamailio is missing; "
        "run scripts/setup",
    ),
]

_PJSUA2_NAMES = ("pjsua2.py", "pjsua2-", "_pjsua2", "kpn_voip_pjsua2")


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system (e.g. /tmp on tmpfs)
        shutil.copy2(src, dst)


def fresh_venv(path: Path) -> Path:
    """A venv with this environment's packages but no pjsua2; its python.

    Hard links instead of a second download keep it fast and offline; new
    files (what HA's installer adds) never touch the originals.
    """
    base_python = (
        Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    )
    subprocess.run([str(base_python), "-m", "venv", "--without-pip", str(path)], check=True)
    source = Path(sysconfig.get_paths()["purelib"])
    target = path / source.relative_to(sys.prefix)
    shutil.rmtree(target)

    def ignore(_folder: str, names: list[str]) -> list[str]:
        return [name for name in names if name.startswith(_PJSUA2_NAMES)]

    shutil.copytree(source, target, copy_function=_link_or_copy, ignore=ignore, symlinks=True)
    # `python -m uv` looks for its binary next to the interpreter.
    _link_or_copy(str(Path(sys.prefix) / "bin" / "uv"), str(path / "bin" / "uv"))
    return path / "bin" / "python"


def our_tracebacks(log: str) -> list[str]:
    """Log records with a traceback that involve kpn_voip or pjsua2.

    Other integrations' tracebacks (e.g. ffmpeg's missing binary here) are
    not ours to judge.
    """
    records = re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", log)
    return [
        record
        for record in records
        if "Traceback" in record and ("kpn_voip" in record or "pjsua2" in record)
    ]


def _has_pjsua2(python: Path) -> bool:
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('pjsua2') is None)"
    return subprocess.run([str(python), "-c", probe], check=False).returncode == 0


@contextlib.contextmanager
def local_index(wheels: list[Path], root: Path) -> Iterator[tuple[str, list[str]]]:
    """A PEP 503 index of `wheels` on 127.0.0.1; (its URL, the paths requested)."""
    project = root / "simple" / "kpn-voip-pjsua2"
    project.mkdir(parents=True)
    links = []
    for wheel in wheels:
        shutil.copy(wheel, project / wheel.name)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        links.append(f'<a href="{wheel.name}#sha256={digest}">{wheel.name}</a>')
    (project / "index.html").write_text("<html><body>" + "".join(links) + "</body></html>")
    (root / "simple" / "index.html").write_text('<a href="kpn-voip-pjsua2/">kpn-voip-pjsua2</a>')
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            requested.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple", requested
    finally:
        server.shutdown()
        server.server_close()


def test_our_tracebacks_finds_only_ours() -> None:
    """The log filter above sees a kpn_voip traceback and ignores others."""
    log = (
        "2026-01-01 00:00:00.000 ERROR (MainThread) [x] boom\nTraceback (most recent call last):\n"
        '  File "haffmpeg/core.py", line 1\n'
        "2026-01-01 00:00:01.000 ERROR (MainThread) [custom_components.kpn_voip] bad\n"
        'Traceback (most recent call last):\n  File "x.py", line 2\n'
        "2026-01-01 00:00:02.000 INFO (MainThread) [kpn_voip] fine\n"
    )
    (found,) = our_tracebacks(log)
    assert "custom_components.kpn_voip] bad" in found


@pytest.mark.slow
def test_home_assistant_installs_the_wheel_then_survives_an_unreachable_index(
    tmp_path: Path, wheelhouse: Path, socket_enabled: None
) -> None:
    """HA installs the requirement and the line registers; without the index HA runs on."""
    wheel = wheel_for(wheelhouse, "manylinux_2_28_x86_64")
    python = fresh_venv(tmp_path / "venv")
    assert not _has_pjsua2(python), "the fresh venv must start without pjsua2"
    config = tmp_path / "config"
    sip_port = free_udp_port()
    say: list[str] = []

    def home_assistant(index_url: str) -> Develop:
        dev = Develop(config, ha_port=free_tcp_port(), sip_port=sip_port, say=say.append)
        dev.hass_python = str(python)
        # HA installs requirements itself; only the two of its login
        # (multi-factor) module that a venv from requirements_test.txt lacks,
        # and which HA's own installs always have, are skipped.
        dev.hass_args = ["--skip-pip-packages", "pyotp,PyQRCode"]
        # Only our index: uv must not reach out to any other.
        dev.hass_env = {"UV_INDEX_URL": index_url, "UV_NO_CACHE": "1"}
        return dev

    with local_index([wheel], tmp_path / "index") as (index_url, requested):
        dev = home_assistant(index_url)
        try:
            dev.start(timeout=240)  # onboarding, the config flow, then "registered"
            assert dev.standin is not None
            assert dev.standin.contacts(DEMO_ACCOUNT.number)
        finally:
            dev.stop()
    assert any(path.endswith(wheel.name) for path in requested), requested
    assert _has_pjsua2(python)
    log = dev.console_log.read_text(errors="replace")
    assert not our_tracebacks(log)

    # An image update (Container, HA OS) drops installed packages; the index
    # is unreachable at the next start.
    subprocess.run(
        [str(python), "-m", "uv", "pip", "uninstall", "--python", str(python), "kpn-voip-pjsua2"],
        check=True,
        capture_output=True,
    )
    assert not _has_pjsua2(python)
    start = dev.console_log.stat().st_size
    dead_index = f"http://127.0.0.1:{free_tcp_port()}/simple"
    dev = home_assistant(dead_index)
    try:
        dev.start(add_line=False, timeout=240)
        (entry,) = dev.api.entries("kpn_voip")
        assert entry["state"] != "loaded"
        assert dev.api.request("GET", "/api/config")["state"] == "RUNNING"
    finally:
        dev.stop()
    log = dev.console_log.read_text(errors="replace")[start:]
    # HA's setup logs this and shows it as its "could not be set up"
    # notification, linking to the manifest's documentation.
    assert "Setup failed for custom integration 'kpn_voip': Requirements for kpn_voip" in log
    assert not our_tracebacks(log)
