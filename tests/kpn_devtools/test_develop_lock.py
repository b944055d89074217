"""scripts/develop's small guards, without a Home Assistant: one develop per config folder
(config_lock.py), Home Assistant's port checked before anything starts, printed paths
that open outside the environment, its mDNS kept to loopback, the blueprints and the
demo phone in its config."""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import urllib.request

import pytest

from kpn_devtools import ENV_ROOT_VARIABLE, REPO_ROOT, host_path
from kpn_devtools.config_lock import HA_LOCK_NAME, LOCK_NAME, ConfigInUseError, ConfigLock
from kpn_devtools.demo_phone import PHONE_FILE, PushReceiver
from kpn_devtools.develop import (
    HASS_LOOPBACK,
    Develop,
    DevelopError,
    HttpError,
    _empty_folder,
    install_blueprints,
    write_config,
)
from kpn_devtools.ports import free_tcp_port

ROOT = Path(__file__).resolve().parents[2]


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder`: its bytes and modification time (links: their target)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[str(path)] = (os.readlink(path).encode(), 0)
        elif path.is_file():
            found[str(path)] = (path.read_bytes(), path.stat().st_mtime_ns)
    return found


def _develop(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """scripts/develop on `config` (inside the environment it starts at once), another port."""
    return subprocess.run(
        [str(ROOT / "scripts" / "develop"), "--config", str(config), *args],
        env={**os.environ, "KPN_HA_PORT": str(free_tcp_port())},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("fresh", [False, True], ids=["again", "fresh"])
def test_second_develop_on_a_folder_in_use_changes_nothing(
    tmp_path: Path, fresh: bool, socket_enabled: None
) -> None:
    """A second scripts/develop on the folder of a running one (here this test holds the
    claim, as develop does) is refused before it writes anything - it used to write its
    HTTP port into the shared configuration - with one line naming the running one and
    how to stop it, exit code 1; also with --fresh (which would empty the folder)."""
    config = tmp_path / "config"
    write_config(config, 8123)
    claim = ConfigLock(config)
    claim.describe(url="http://127.0.0.1:8123")
    before = _snapshot(config)
    try:
        done = _develop(config, *(["--fresh"] if fresh else []))
        assert _snapshot(config) == before
    finally:
        claim.release()
    assert done.returncode == 1, done
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"ERROR: scripts/develop already runs on the config folder {config} (pid {os.getpid()}, "
        "Home Assistant at http://127.0.0.1:8123): stop it with Ctrl-C in its terminal "
        f"(or kill -INT {os.getpid()}), or give this one another folder with --config"
    ]


def test_a_home_assistant_started_by_hand_is_refused_too(tmp_path: Path) -> None:
    """`hass -c CONFIG` holds Home Assistant's own lock (runner.ensure_single_execution):
    develop names its pid and writes nothing, not even its own lock file."""
    from homeassistant import runner

    assert runner.LOCK_FILE_NAME == HA_LOCK_NAME
    config = tmp_path / "config"
    config.mkdir()
    with runner.ensure_single_execution(str(config)) as running:
        assert running.exit_code is None
        before = _snapshot(config)
        with pytest.raises(ConfigInUseError) as refused:
            ConfigLock(config)
        assert _snapshot(config) == before
    assert str(refused.value) == (
        f"Home Assistant already runs on the config folder {config} (pid {os.getpid()}, not "
        f"started by scripts/develop): stop it (kill -INT {os.getpid()}), or give this one "
        "another folder with --config"
    )
    assert not (config / LOCK_NAME).exists()
    ConfigLock(config).release()  # free once it stopped


def test_the_claim_ends_with_its_holder_however_it_ends(tmp_path: Path) -> None:
    """A develop killed with SIGKILL leaves its lock file, but not its claim: the kernel
    drops a flock with its last holder, so the next develop starts."""
    config = tmp_path / "config"
    code = (
        "import sys, time; from pathlib import Path; from kpn_devtools.config_lock import "
        "ConfigLock; ConfigLock(Path(sys.argv[1])); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(config)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(ConfigInUseError, match=rf"\(pid {holder.pid}\)"):
            ConfigLock(config)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert json.loads((config / LOCK_NAME).read_text())["pid"] == holder.pid
    ConfigLock(config).release()


def test_fresh_empties_the_folder_but_keeps_the_claim(tmp_path: Path) -> None:
    """--fresh runs after the claim: it removes everything but develop's lock file
    (a new file would be a second, unheld lock)."""
    config = tmp_path / "config"
    write_config(config, 8123)
    (config / ".storage" / "core.config_entries").write_text("{}")
    claim = ConfigLock(config)
    try:
        _empty_folder(config, keep=LOCK_NAME)
        assert [p.name for p in config.iterdir()] == [LOCK_NAME]
        with pytest.raises(ConfigInUseError):
            ConfigLock(config)
    finally:
        claim.release()


def test_home_assistants_port_is_checked_before_the_stand_in_starts(
    tmp_path: Path, socket_enabled: None
) -> None:
    """develop started the stand-in (and the test phone), then found the HTTP port
    taken: it checks first, and starts nothing for a start it refuses."""
    import socket

    started: list[str] = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        dev = Develop(tmp_path / "config", ha_port=taken.getsockname()[1], sip_port=1, say=print)
        dev.start_standin = lambda: started.append("stand-in")  # type: ignore[method-assign]
        dev.start_callee = lambda: started.append("phone")  # type: ignore[method-assign]
        with pytest.raises(DevelopError, match=f"port {dev.ha_port} is in use"):
            dev.start(add_line=False)
    assert started == []
    assert not (tmp_path / "config").exists()  # nothing written either


def test_printed_paths_open_outside_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """scripts/run may run develop in a root file system (a chroot): its temp folder,
    where the stand-in's log is, is under that root on this machine; the checkout is
    the same folder inside and out."""
    # scripts/run sets it in a root file system (_env.sh in_env), so the tests get it too
    if Path("/.kpn-bootstrapped").exists():
        assert os.environ.get(ENV_ROOT_VARIABLE, "").startswith("/")
    assert 'KPN_ENV_ROOT="$KPN_ROOTFS"' in (ROOT / "scripts" / "_env.sh").read_text()
    monkeypatch.setenv(ENV_ROOT_VARIABLE, "/home/dev/.cache/kpn_voip/rootfs")
    assert host_path("/tmp/kpn-kam-x/kamailio.log") == (
        "/home/dev/.cache/kpn_voip/rootfs/tmp/kpn-kam-x/kamailio.log"
    )
    log = REPO_ROOT / ".develop" / "config" / "home-assistant.log"
    assert host_path(log) == str(log)
    assert host_path("relative/x") == "relative/x"
    monkeypatch.delenv(ENV_ROOT_VARIABLE)
    assert host_path("/tmp/kpn-kam-x/kamailio.log") == "/tmp/kpn-kam-x/kamailio.log"


def test_hass_loopback_replaces_what_zeroconf_uses() -> None:
    """HASS_LOOPBACK replaces the function Home Assistant's zeroconf instance takes its
    arguments from, with arguments Zeroconf takes (what Home Assistant then binds:
    test_develop.py::test_develop_restarts_home_assistant_restarted_from_the_ui)."""
    from homeassistant.components import zeroconf
    from zeroconf import Zeroconf

    assert "HaZeroconf(**_async_get_zc_args(hass))" in inspect.getsource(zeroconf)
    assert "zeroconf._async_get_zc_args = " in HASS_LOOPBACK
    assert set(inspect.signature(Zeroconf).parameters) >= {"interfaces", "unicast", "ip_version"}


def test_blueprints_are_installed_in_the_config(tmp_path: Path) -> None:
    """The checkout's blueprints land where Home Assistant's blueprint UI lists them
    (copies, refreshed), with Home Assistant's own examples as it would add them."""
    config = tmp_path / "config"
    write_config(config, 8123)
    shipped = sorted((ROOT / "blueprints" / "automation" / "kpn_voip").glob("*.yaml"))
    assert len(shipped) == 3
    ours = config / "blueprints" / "automation" / "kpn_voip"
    assert sorted(p.name for p in ours.iterdir()) == [p.name for p in shipped]
    for source in shipped:
        assert not (ours / source.name).is_symlink()
        assert (ours / source.name).read_bytes() == source.read_bytes()
    assert (config / "blueprints" / "automation" / "homeassistant" / "motion_light.yaml").exists()
    (ours / shipped[0].name).write_text("changed")
    assert install_blueprints(config)[0].read_bytes() == shipped[0].read_bytes()
    # what the answering machine needs: the companion app's integration
    assert "\nmobile_app:\n" in (config / "configuration.yaml").read_text()


def test_demo_phone_prints_what_home_assistant_pushes(socket_enabled: None) -> None:
    """The companion app's push, as mobile_app sends it (JSON: message, title, data), is
    said in one line with its link; the answer is JSON, as mobile_app reads it."""
    said: list[str] = []
    phone = PushReceiver(said.append)
    phone.start()
    try:
        push = {
            "message": "5 s, in the media browser: kpn_voip",
            "title": "New message from Jan - 0612345678",
            "data": {"url": "/media-browser/browser"},
            "push_token": "demo",
        }
        request = urllib.request.Request(
            phone.url, data=json.dumps(push).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as reply:
            assert reply.status == 201
            assert json.loads(reply.read()) == {}
    finally:
        phone.stop()
    assert said == [
        "Demo phone got a notification: New message from Jan - 0612345678: 5 s, in the "
        "media browser: kpn_voip (tap: /media-browser/browser)"
    ]
    assert phone.url.startswith("http://127.0.0.1:")


def test_a_phone_home_assistant_does_not_take_is_said_not_raised(
    tmp_path: Path, socket_enabled: None
) -> None:
    """Without mobile_app (its registration API answers 404) the demo runs on without
    the phone, and says what the answering machine then lacks."""

    class NoMobileApp:
        def entries(self, domain: str) -> list[object]:
            return []

        def request(self, method: str, path: str, *args: object, **kwargs: object) -> None:
            raise HttpError(f"{method} {path}: HTTP 404 Not Found", 404)

    said: list[str] = []
    dev = Develop(tmp_path / "config", say=said.append)
    dev.api = NoMobileApp()  # type: ignore[assignment]
    try:
        dev.start_demo_phone()
    finally:
        dev.stop()
    assert said == [
        "WARNING: 'Demo phone' is not registered (the answering machine has no phone to "
        "notify): POST /api/mobile_app/registrations: HTTP 404 Not Found"
    ]
    assert not (tmp_path / "config" / PHONE_FILE).exists()
