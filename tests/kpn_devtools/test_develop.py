"""scripts/develop: started, used and stopped twice leaves no process behind.

Runs the real command (inside the environment it skips setup) with free
ports and a config dir under tmp_path, waits for its banner, checks the URL,
the demo login and the registered demo line, then presses "Ctrl-C" (SIGINT to
its process group, as a terminal does) and looks for any process that still
carries the run's tag variable (everything scripts/develop starts inherits it).
The second run reuses the config dir: the "already onboarded" path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from datetime import datetime
import importlib.util
import inspect
import ipaddress
import json
import os
from pathlib import Path
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from custom_components.kpn_voip.const import LOCKOUT_STORAGE_KEY
from custom_components.kpn_voip.kpn_line.profile import K8_LOCKOUT_SECONDS, K19_RTP_PORT_MIN
from kpn_devtools import ENV_ROOT_VARIABLE
from kpn_devtools.demo_phone import PHONE_NAME
from kpn_devtools.develop import (
    DEMO_PASSWORD,
    DEMO_TIME_ZONE,
    DEMO_USER,
    HTTP_FALLBACK_SIGNS,
    LOCKOUT_STORE,
    LOGIN_FAILED_AT_START,
    TAG_VARIABLE,
    Api,
    Develop,
    DevelopError,
    _banner,
    k8_wait_until,
    tagged_processes,
)
from kpn_devtools.kamailio import DEMO_ACCOUNT
from kpn_devtools.ports import RTP_PORT_MIN, free_tcp_port, free_udp_port, port_bindable

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(
        importlib.util.find_spec("hass_frontend") is None or shutil.which("kamailio") is None,
        reason="Home Assistant cannot start here: the frontend (home-assistant-frontend) "
        "or kamailio is missing; run scripts/setup",
    ),
]


class _Output:
    """Collects a process's output lines in a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, text: str, proc: subprocess.Popen[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(text in line for line in self.lines):
                if proc.poll() is not None and not self._thread.is_alive():
                    raise AssertionError("scripts/develop exited:\n" + self.text)
                if time.monotonic() > deadline:
                    raise AssertionError(f"no {text!r} within {timeout} s:\n" + self.text)
                self._cond.wait(0.5)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _ignore_sigint() -> None:
    """As for a background job of a script: SIGINT ignored from the start."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start(
    config: Path, ha_port: int, sip_port: int, tag: str, *, ignore_sigint: bool = False
) -> tuple[subprocess.Popen[str], _Output]:
    """scripts/develop in a session of its own (as in a terminal), its output collected."""
    env = {
        **os.environ,
        "KPN_HA_PORT": str(ha_port),
        "KPN_SIP_PORT": str(sip_port),
        TAG_VARIABLE: tag,
    }
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "develop"), "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
        preexec_fn=_ignore_sigint if ignore_sigint else None,  # noqa: PLW1509  test only
    )
    return proc, _Output(proc)


def _stopped(proc: subprocess.Popen[str], output: _Output, stop: Callable[[], None]) -> str:
    """`stop()` (a signal), then scripts/develop's whole output once it ended cleanly."""
    try:
        stop()
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = output.text
    assert proc.returncode == 0, text
    assert "stopped: Home Assistant and the KPN stand-in" in text
    assert "killed leftover" not in text, text
    return text


def _run_once(
    config: Path, ha_port: int, sip_port: int, tag: str, *, pid_only: bool = False
) -> str:
    """One run; "Ctrl-C" to its process group, or (`pid_only`) SIGINT to its pid alone
    with SIGINT ignored from the start (issue 12: that did nothing)."""
    proc, output = _start(config, ha_port, sip_port, tag, ignore_sigint=pid_only)

    def check_then_interrupt() -> None:
        output.wait_for("next: scripts/call", proc, timeout=150)
        banner = output.text
        assert f"http://127.0.0.1:{ha_port}" in banner
        assert f"user {DEMO_USER!r}, password {DEMO_PASSWORD!r}" in banner
        # The documented login works, and the demo line is registered.
        api = Api(f"http://127.0.0.1:{ha_port}")
        api.login(DEMO_USER, DEMO_PASSWORD)
        entity = api.line_status_entity()
        assert entity is not None
        state = api.state(entity)
        assert state is not None
        assert state["state"] == "registered"
        # A call placed by the line reaches the demo's test phone (SIPp); its message
        # needs a TTS engine (the demo's offline one; without one: tts_unavailable).
        reply = api.request(
            "POST",
            "/api/services/kpn_voip/dial?return_response",
            {"number": "0612345678", "hangup_after": 1, "message": "Hello from the demo."},
        )
        assert reply["service_response"]["call_id"]
        # Loopback only: nothing listens on another address.
        with socket.socket() as sock:
            sock.settimeout(1)
            assert sock.connect_ex(("127.0.0.2", ha_port)) != 0
        if pid_only:
            os.kill(proc.pid, signal.SIGINT)
        else:
            # "Ctrl-C": SIGINT to the whole foreground process group.
            os.killpg(proc.pid, signal.SIGINT)

    return _stopped(proc, output, check_then_interrupt)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_develop_twice_leaves_nothing_behind(tmp_path: Path, socket_enabled: None) -> None:
    config = tmp_path / "config"
    ha_port, sip_port = free_tcp_port(), free_udp_port()
    tag = secrets.token_hex(8)
    try:
        first = _run_once(config, ha_port, sip_port, tag)
        assert "Added the demo line" in first
        # The log opens without other integrations' errors (onboarding's online-only
        # flows, ffmpeg, libturbojpeg): only what the demo is about (issue 12).
        log = (config / "home-assistant.log").read_text(encoding="utf-8", errors="replace")
        errors = [line for line in log.splitlines() if " ERROR " in line]
        assert errors == [], "\n".join(errors)
        assert tagged_processes(tag) == []
        second = _run_once(config, ha_port, sip_port, tag, pid_only=True)
        assert "Added the demo line" not in second  # reused, not duplicated
        # The demo phone registered by the first run is updated (its push URL), not
        # registered again: one phone, the one automations were made for.
        assert f"Registered '{PHONE_NAME}'" in first
        assert f"Registered '{PHONE_NAME}'" not in second
        assert "is not registered" not in first + second
        assert tagged_processes(tag) == []
        # Ports are free again (SO_REUSEADDR: our own HTTP requests leave
        # TIME_WAIT entries; a listening socket would still make bind fail).
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", ha_port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", sip_port))
    finally:
        for pid in tagged_processes(tag):
            os.kill(pid, signal.SIGKILL)


def _set_stored_password(config: Path, password: str) -> None:
    """The demo entry's password as Home Assistant stores it (with HA stopped)."""
    path = config / ".storage" / "core.config_entries"
    data = json.loads(path.read_text())
    (entry,) = [e for e in data["data"]["entries"] if e["domain"] == "kpn_voip"]
    entry["data"]["password"] = password
    path.write_text(json.dumps(data))


def _ws(api: Api, *messages: dict[str, Any]) -> list[Any]:
    """Websocket API messages (as the frontend sends them); their results."""

    async def ask() -> list[Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(api.base_url + "/api/websocket") as ws,
        ):
            assert (await ws.receive_json())["type"] == "auth_required"
            await ws.send_json({"type": "auth", "access_token": api.token})
            assert (await ws.receive_json())["type"] == "auth_ok"
            results = []
            for number, message in enumerate(messages, 1):
                await ws.send_json({"id": number, **message})
                reply = await ws.receive_json()
                assert reply["success"], reply
                results.append(reply["result"])
            return results

    return asyncio.run(ask())


def _flows_in_progress(api: Api) -> list[dict[str, Any]]:
    """The config flows in progress, as the frontend lists them (websocket API)."""
    (flows,) = _ws(api, {"type": "config_entries/flow/progress"})
    return list(flows)


def _hass_pids(text: str) -> list[int]:
    """The pids of the Home Assistant processes develop said it started."""
    return [int(pid) for pid in re.findall(r"Home Assistant starting \(pid (\d+)\)", text)]


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_develop_runs_on_when_the_stored_password_is_refused(
    tmp_path: Path, socket_enabled: None
) -> None:
    """The stored entry's password is refused as Home Assistant sets it up: HA does not
    set the entry up (no line status sensor, a reauth flow instead).  develop used to
    end with "the line status stayed None"; it runs on, says so on one banner line, and
    the reauth form is there, holding a new password until the K8 block ends (K8)."""
    config = tmp_path / "config"
    ha_port, sip_port = free_tcp_port(), free_udp_port()
    tag = secrets.token_hex(8)
    try:
        first = Develop(config, ha_port=ha_port, sip_port=sip_port, say=lambda text: None)
        first.tag = tag
        first.start()
        assert first.line_status == "registered"
        # As any later run of develop does: the options flow stores all the options,
        # so pointing the entry at the same stand-in again changes nothing and does
        # not reload it (a reload would load it blocked, with a line status).
        (entry,) = first.api.entries("kpn_voip")
        first.api.point_line_at(entry["entry_id"], sip_port)
        first.stop()
        _set_stored_password(config, "not-the-demo-password")
        proc, output = _start(config, ha_port, sip_port, tag)

        def check_then_terminate() -> None:
            output.wait_for("next: scripts/call", proc, timeout=150)
            text = output.text
            assert proc.poll() is None, text
            assert "ERROR" not in text, text
            refused = [line for line in text.splitlines() if "refused the demo line" in line]
            assert len(refused) == 1, text
            assert "re-authentication under Settings -> Devices & services" in refused[0]
            assert "the form holds it until" in refused[0]  # the K8 hold, with its end
            assert f"demo line:       {LOGIN_FAILED_AT_START}: re-authenticate" in text
            api = Api(f"http://127.0.0.1:{ha_port}")
            api.login(DEMO_USER, DEMO_PASSWORD)
            (entry,) = api.entries("kpn_voip")
            assert entry["state"] == "setup_error"
            # The reauth form is reachable, as from Settings -> Devices & services.
            (flow,) = [
                f
                for f in _flows_in_progress(api)
                if f["handler"] == "kpn_voip" and f["context"]["source"] == "reauth"
            ]
            assert flow["context"]["entry_id"] == entry["entry_id"]
            form = api.request("GET", f"/api/config/config_entries/flow/{flow['flow_id']}")
            assert form["type"] == "form"
            assert form["step_id"] == "reauth_locked"  # K8: the refusal blocks the account
            # develop says the same end of the hold as the form, in HA's time zone.
            until = form["description_placeholders"]["until"]
            assert f"the form holds it until {until} (K8 hold" in refused[0]
            held = api.request(
                "POST",
                f"/api/config/config_entries/flow/{flow['flow_id']}",
                {"password": DEMO_ACCOUNT.password},
            )
            assert held["type"] == "progress"
            assert held["progress_action"] == "lockout_wait"  # sent when the block ends
            os.kill(proc.pid, signal.SIGTERM)  # a real stop ends everything

        _stopped(proc, output, check_then_terminate)
        assert tagged_processes(tag) == []
    finally:
        for pid in tagged_processes(tag):
            os.kill(pid, signal.SIGKILL)


def _socket_addresses(pid: int) -> list[str]:
    """The local addresses ("ip:port") of the TCP and UDP sockets process `pid` holds.

    /proc/<pid>/fd names each socket by inode; /proc/<pid>/net/{tcp,udp}{,6} (the whole
    network namespace's) give each inode's local address, hex as the kernel writes it.
    """
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "udp", "tcp6", "udp6"):
        for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            if fields[9] not in inodes:
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            # the kernel writes each 32-bit word in host (little-endian) order
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.append(f"{ipaddress.ip_address(words)}:{int(port, 16)}")
    return found


def _assert_loopback_only(pid: int) -> list[str]:
    """Every socket Home Assistant (`pid`) holds is bound to loopback (or not bound at
    all: port 0); its addresses.  Its mDNS (zeroconf) bound 0.0.0.0:5353 before."""
    addresses = _socket_addresses(pid)
    assert addresses, "no sockets found: not Home Assistant's pid?"
    for address in addresses:
        ip, _, port = address.rpartition(":")
        assert ipaddress.ip_address(ip).is_loopback or port == "0", addresses
    return addresses


def _second_develop_is_refused(config: Path, first_pid: int, tag: str) -> None:
    """scripts/develop on the folder the first one runs on, with another HA port: it
    ends at once with one line naming the first, and leaves the folder as it was (it
    wrote its port into .storage/http, which the first's next restart then took)."""
    watched = [
        config / "configuration.yaml",
        config / ".storage" / "http",
        config / ".develop.lock",
    ]
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in watched}
    other_port = free_tcp_port()
    began = time.monotonic()
    done = subprocess.run(
        [str(ROOT / "scripts" / "develop"), "--config", str(config)],
        env={**os.environ, "KPN_HA_PORT": str(other_port), TAG_VARIABLE: tag + "-second"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    took = time.monotonic() - began
    assert done.returncode == 1, done
    (line,) = done.stderr.splitlines()
    assert line.startswith("ERROR: scripts/develop already runs on the config folder"), line
    assert f"(pid {first_pid}, Home Assistant at http://127.0.0.1:" in line
    assert "Ctrl-C" in line
    assert f"kill -INT {first_pid}" in line
    assert done.stdout == ""  # nothing started, not the first's log either
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in watched} == before
    assert str(other_port) not in (config / ".storage" / "http").read_text()
    assert tagged_processes(tag + "-second") == []
    print(f"a second develop was refused in {took:.1f} s")


def _printed_paths_open_here(text: str) -> None:
    """The log paths develop prints can be opened where the user is: a path outside the
    checkout lies under the environment's root on this machine (KPN_ENV_ROOT, set by
    scripts/run in a root file system), which this test, inside, strips again."""
    stand_in = re.search(r"KPN stand-in \(Kamailio\) on udp \S+, log (\S+)", text)
    ha_log = re.search(r"HA log: +(\S+)", text)
    assert stand_in is not None, text
    assert ha_log is not None, text
    root = os.environ.get(ENV_ROOT_VARIABLE, "").rstrip("/")
    for printed in (stand_in[1], ha_log[1]):
        inside = printed
        if root and not Path(printed).is_relative_to(ROOT):
            assert printed.startswith(root + "/"), (printed, root)
            inside = printed[len(root) :]
        assert Path(inside).is_file(), printed


def _blueprints_work(api: Api, output: _Output, proc: subprocess.Popen[str], sip_port: int) -> None:
    """The repository's blueprints are in the blueprint UI's list, valid; automations made
    from the gate intercom and the answering machine (for "Demo phone", the companion
    app's phone develop registers) are on; a call nobody answers is picked up, and the
    message's notification reaches the demo phone (develop prints it)."""
    listed, devices = _ws(
        api,
        {"type": "blueprint/list", "domain": "automation"},
        {"type": "config/device_registry/list"},
    )
    ours = {path: found for path, found in listed.items() if path.startswith("kpn_voip/")}
    shipped = sorted((ROOT / "blueprints" / "automation" / "kpn_voip").glob("*.yaml"))
    assert sorted(ours) == [f"kpn_voip/{path.name}" for path in shipped]
    assert all("error" not in found for found in ours.values()), ours
    assert any(path.startswith("homeassistant/") for path in listed)  # HA's own examples
    (phone,) = [d for d in devices if d["name"] == PHONE_NAME]
    event = api.render(
        "{{ integration_entities('kpn_voip') | select('match', 'event[.]') | first }}"
    )
    automations = {
        "gate": ("gate_intercom_pin", {"pin": "4711", "open_action": []}),
        "machine": (
            "answering_machine",
            {"answer_after": 1, "notify_device": phone["id"], "silence_seconds": 2},
        ),
    }
    for key, (name, inputs) in automations.items():
        use = {"path": f"kpn_voip/{name}.yaml", "input": {"call_event": event.strip(), **inputs}}
        reply = api.request(
            "POST", f"/api/config/automation/config/{key}", {"alias": key, "use_blueprint": use}
        )
        assert reply == {"result": "ok"}
    for key in automations:
        deadline = time.monotonic() + 30
        while (api.state(f"automation.{key}") or {}).get("state") != "on":
            assert time.monotonic() < deadline, api.state(f"automation.{key}")
            time.sleep(0.5)
    # Only the answering machine: the gate automation's PIN prompt would answer too.
    api.request("POST", "/api/services/automation/turn_off", {"entity_id": "automation.gate"})
    call = subprocess.run(
        [str(ROOT / "scripts" / "call"), "--port", str(sip_port), "--talk", "12"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "answered" in call.stdout, call
    output.wait_for(f"{PHONE_NAME} got a notification: New message from", proc, timeout=60)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_develop_restarts_home_assistant_restarted_from_the_ui(
    tmp_path: Path, socket_enabled: None
) -> None:
    """Settings -> System -> Restart (the homeassistant.restart action): HA exits with its
    restart code for its runner to start it again.  develop does - same config folder
    and port, the stand-in left running - and the line registers again; SIGTERM then
    still stops everything.

    Before the restart: a second develop on the same folder is refused and changes
    nothing (it used to move the first one's port); Home Assistant holds no socket
    on another address than loopback, before and after the restart (its mDNS bound
    0.0.0.0:5353); the printed log paths open; the blueprints are in the UI and work."""
    config = tmp_path / "config"
    ha_port, sip_port = free_tcp_port(), free_udp_port()
    tag = secrets.token_hex(8)
    api = Api(f"http://127.0.0.1:{ha_port}")
    try:
        proc, output = _start(config, ha_port, sip_port, tag)

        def restart_then_terminate() -> None:
            output.wait_for("next: scripts/call", proc, timeout=150)
            api.login(DEMO_USER, DEMO_PASSWORD)
            entity = api.line_status_entity()
            assert entity is not None
            (first_pid,) = _hass_pids(output.text)
            print(f"Home Assistant's sockets: {_assert_loopback_only(first_pid)}")
            _printed_paths_open_here(output.text)
            _second_develop_is_refused(config, proc.pid, tag)
            _blueprints_work(api, output, proc, sip_port)
            began = time.monotonic()
            api.request("POST", "/api/services/homeassistant/restart", {})
            output.wait_for("Home Assistant restarted", proc, timeout=180)
            took = time.monotonic() - began
            text = output.text
            (_, second_pid) = _hass_pids(text)
            assert second_pid != first_pid
            _assert_loopback_only(second_pid)
            assert text.count("KPN stand-in (Kamailio) on udp") == 1, text  # not restarted
            assert api.request("GET", "/api/config")["state"] == "RUNNING"
            api.login(DEMO_USER, DEMO_PASSWORD)
            deadline = time.monotonic() + 60
            while (api.state(entity) or {}).get("state") != "registered":
                assert time.monotonic() < deadline, api.state(entity)
                time.sleep(0.5)
            print(f"Home Assistant was back {took:.1f} s after the restart action")
            os.kill(proc.pid, signal.SIGTERM)

        text = _stopped(proc, output, restart_then_terminate)
        assert "ERROR" not in text, text
        assert tagged_processes(tag) == []
    finally:
        for pid in tagged_processes(tag):
            os.kill(pid, signal.SIGKILL)


def _held_by_a_connection(port: int) -> tuple[socket.socket, socket.socket, socket.socket]:
    """Loopback TCP `port` taken the way an outgoing connection takes one: the client
    end of a connection bound to it (a listener elsewhere); (client, server, listener)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.socket()
    client.bind(("127.0.0.1", port))
    client.connect(listener.getsockname())
    server, _ = listener.accept()
    return client, server, listener


@pytest.mark.timeout(120)
def test_a_port_taken_after_the_check_ends_the_start_at_once(
    tmp_path: Path, socket_enabled: None
) -> None:
    """The port is taken between develop's check and Home Assistant's bind (by an
    outgoing connection, when it was from the ephemeral range): HA logs that it could
    not bind it and starts in recovery mode, which falls back to 8123 on every address.
    The start ends at once with a clear error and stops HA, instead of waiting 300 s.

    A stand-in for `hass` says what Home Assistant says (its texts are pinned by the
    next test): a real one would try 8123, the clash this is about."""
    fake_hass = tmp_path / "fake-hass"
    fake_hass.write_text(
        "#!/bin/sh\n"
        f"echo 'ERROR (MainThread) [homeassistant.components.http.config] "
        f"{HTTP_FALLBACK_SIGNS[0]} in recovery mode, falling back to the default "
        "configuration: [Errno 98] address already in use'\n"
        "exec sleep 600\n"
    )
    fake_hass.chmod(0o755)
    dev = Develop(
        tmp_path / "config",
        ha_port=free_tcp_port(),
        sip_port=free_udp_port(),
        say=lambda text: None,
    )
    dev.hass_python = str(fake_hass)
    began = time.monotonic()
    try:
        with pytest.raises(DevelopError, match=f"could not listen on 127.0.0.1:{dev.ha_port}"):
            dev.start(add_line=False)
        assert time.monotonic() - began < 60
        assert dev.hass is None  # stopped
        assert tagged_processes(dev.tag) == []
    finally:
        dev.stop()


def test_http_fallback_signs_are_home_assistants() -> None:
    """The log lines develop looks for are the ones this Home Assistant writes when
    its HTTP server cannot bind the configured port (components/http/config.py)."""
    from homeassistant.components.http import config as http_config

    source = inspect.getsource(http_config)
    assert all(sign in source for sign in HTTP_FALLBACK_SIGNS)


def test_a_port_in_use_is_refused_before_home_assistant_starts(
    tmp_path: Path, socket_enabled: None
) -> None:
    """A port a connection holds (not only a listener's) is refused up front."""
    ha_port = free_tcp_port()
    held = _held_by_a_connection(ha_port)
    try:
        dev = Develop(tmp_path / "config", ha_port=ha_port, sip_port=1, say=lambda text: None)
        with pytest.raises(DevelopError, match=f"port {ha_port} is in use"):
            dev.start_hass()
        assert dev.hass is None
    finally:
        for sock in held:
            sock.close()


def test_free_tcp_port_is_below_the_ephemeral_range(socket_enabled: None) -> None:
    """Server ports for the tests' Home Assistants come from outside the range outgoing
    connections take theirs from, so none can take one before HA binds it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_tcp_port() for _ in range(20)}
    assert all(10000 <= port < low for port in ports), ports
    assert len(ports) > 1  # chosen at random, not one fixed port
    assert all(port_bindable(port) for port in ports)


def test_free_udp_port_is_below_the_ephemeral_range_and_rtp(socket_enabled: None) -> None:
    """The peers' UDP ports (stand-in, SIPp) are chosen as the HTTP ports are, and below
    the engines' RTP ports (K19) too: neither an outgoing socket nor a call's RTP takes
    one before the peer binds it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_udp_port() for _ in range(20)}
    assert RTP_PORT_MIN == K19_RTP_PORT_MIN
    assert all(10000 <= port < min(low, K19_RTP_PORT_MIN) for port in ports), ports
    assert len(ports) > 1
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", port))


class _FakeApi:
    """What ensure_line asks of Home Assistant, for a line whose login is refused."""

    base_url = "http://127.0.0.1:8123"

    def __init__(self, status: str, entry_state: str = "setup_error") -> None:
        self.status = status
        self.entry_state = entry_state
        self.pointed: list[str] = []

    def entries(self, domain: str) -> list[dict[str, str]]:
        return [{"entry_id": "e1", "title": "Demo line", "state": self.entry_state}]

    def entry(self, entry_id: str) -> dict[str, str]:
        return self.entries("kpn_voip")[0]

    def point_line_at(self, entry_id: str, port: int) -> None:
        self.pointed.append(entry_id)

    def line_status_entity(self) -> str:
        return "sensor.demo_line_line_status"

    def state(self, entity_id: str) -> dict[str, str]:
        return {"state": self.status}


@pytest.mark.parametrize("status", ["auth_failed", "locked_out"])
def test_refused_demo_login_keeps_the_demo_running(tmp_path: Path, status: str) -> None:
    """A refused password is not an error: the demo goes on (the reauth screens are the
    point then) and says how to go on; it used to give up after 60 s (issue 12)."""
    said: list[str] = []
    dev = Develop(tmp_path / "config", say=said.append)
    dev.api = _FakeApi(status)  # type: ignore[assignment]
    dev._check_alive = lambda: None  # type: ignore[method-assign]
    dev.ensure_line(timeout=2.0)
    assert dev.line_status == status
    assert dev.line_entity == "sensor.demo_line_line_status"
    assert any("re-authentication" in text for text in said), said
    assert f"= {status}" in _banner(dev)


def test_no_login_outcome_is_said_not_raised(tmp_path: Path) -> None:
    """A line without an outcome (the entry waits to retry its setup) does not end the
    demo: develop says so, with the entry's state, and Home Assistant runs on."""
    said: list[str] = []
    dev = Develop(tmp_path / "config", say=said.append)
    dev.api = _FakeApi("unavailable", entry_state="setup_retry")  # type: ignore[assignment]
    dev._check_alive = lambda: None  # type: ignore[method-assign]
    dev.ensure_line(timeout=0.5)
    assert dev.line_status == "setup_retry"
    assert len(said) == 1, said
    assert "no login outcome after 0 s (setup_retry); Home Assistant runs on" in said[0]
    assert "= setup_retry" in _banner(dev)


@pytest.mark.parametrize(("code", "ends"), [(0, "stopped"), (3, "died")])
def test_home_assistant_stopping_for_good_ends_develop(
    tmp_path: Path, code: int, ends: str
) -> None:
    """Only a restart is started again: Home Assistant's own stop (exit code 0, the
    homeassistant.stop action) ends develop as Ctrl-C does, a crash (any other code)
    ends it with the log's tail."""
    dev = Develop(tmp_path / "config", say=lambda text: None)
    dev.console_log.parent.mkdir(parents=True)
    dev.console_log.write_text("the last words of Home Assistant\n")
    dev.hass = subprocess.Popen([sys.executable, "-c", f"raise SystemExit({code})"])
    if ends == "stopped":
        dev.keep_running(interval=0.05)
        assert dev.hass.returncode == 0
    else:
        with pytest.raises(DevelopError, match="exited:\nthe last words"):
            dev.keep_running(interval=0.05)


def _lockout_record(config_dir: Path, failed_at: float, reason: str = "locked_out") -> None:
    """Home Assistant's K8 record of a refused login of the demo account, as lockout.py
    stores it (a fingerprint, never the password)."""
    store = config_dir / LOCKOUT_STORE
    store.parent.mkdir(parents=True)
    record = {"time": failed_at, "reason": reason, "fingerprint": "0" * 32}
    data = {"version": 1, "key": LOCKOUT_STORAGE_KEY, "data": {DEMO_ACCOUNT.username: record}}
    store.write_text(json.dumps(data))


def test_lockout_store_is_the_integrations() -> None:
    """develop reads the file Home Assistant's lockout Store writes (K8)."""
    assert Path(".storage") / LOCKOUT_STORAGE_KEY == LOCKOUT_STORE


def test_restart_in_the_k8_wait_says_so(tmp_path: Path) -> None:
    """K8: another device locked the demo account out and Home Assistant recorded it; a
    restart of develop says the line is in its K8 wait until when, or --fresh - not that
    the stand-in refused the password (nothing was sent: this stand-in would accept it)."""
    config = tmp_path / "config"
    failed_at = time.time() - 120
    _lockout_record(config, failed_at)
    said: list[str] = []
    dev = Develop(config, say=said.append)
    dev.api = _FakeApi("locked_out")  # type: ignore[assignment]
    dev._check_alive = lambda: None  # type: ignore[method-assign]
    dev.ensure_line(timeout=2.0)
    # In Home Assistant's time zone, as its reauth form says it (not this machine's).
    until = datetime.fromtimestamp(
        failed_at + K8_LOCKOUT_SECONDS, ZoneInfo(DEMO_TIME_ZONE)
    ).strftime("%H:%M")
    assert len(said) == 1, said
    assert "K8 wait (locked_out)" in said[0]
    assert f"no login until {until}." in said[0]
    assert "--fresh" in said[0]
    assert "refused the demo line's login" not in said[0]
    assert DEMO_ACCOUNT.password not in said[0]  # not the password's fault


@pytest.mark.parametrize(
    "failed", [10.0, -K8_LOCKOUT_SECONDS - 1.0], ids=["in_this_run", "wait_over"]
)
def test_refused_now_still_blames_the_password(tmp_path: Path, failed: float) -> None:
    """A login refused in this run (the record is newer than the start), or a K8 wait
    that is over: the stand-in refused the password, and develop says so as before."""
    config = tmp_path / "config"
    said: list[str] = []
    dev = Develop(config, say=said.append)
    _lockout_record(config, dev.hass_started + failed, "auth_failed")
    dev.api = _FakeApi("auth_failed")  # type: ignore[assignment]
    dev._check_alive = lambda: None  # type: ignore[method-assign]
    dev.ensure_line(timeout=2.0)
    assert len(said) == 1, said
    assert "refused the demo line's login (auth_failed)" in said[0]
    assert "K8 wait" not in said[0]


@pytest.mark.parametrize("text", ["", "{", '{"data": {}}', '{"data": {"x": 1}}'])
def test_k8_wait_from_a_missing_or_damaged_file_is_none(tmp_path: Path, text: str) -> None:
    """No file, or one without the demo account's record: no K8 wait."""
    assert k8_wait_until(tmp_path, DEMO_ACCOUNT.username, before=time.time()) is None
    (tmp_path / LOCKOUT_STORE).parent.mkdir()
    (tmp_path / LOCKOUT_STORE).write_text(text)
    assert k8_wait_until(tmp_path, DEMO_ACCOUNT.username, before=time.time()) is None
