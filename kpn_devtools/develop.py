"""A demo Home Assistant with kpn_voip against the local KPN stand-in.

Used by scripts/develop (`python -m kpn_devtools develop`) and by the tests
(tests/kpn_devtools/test_develop.py, tests/browser/), so both start HA the
same way: loopback only (also its mDNS: HASS_LOOPBACK), the stand-in of kamailio.py
(the code behind scripts/standin), `hass -c CONFIG --skip-pip` with the integration linked into
CONFIG/custom_components, onboarding done through HA's onboarding REST API
with a documented demo login, and a KPN VoIP entry created through the
config-flow REST API.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection, Iterator, Sequence
import contextlib
from datetime import datetime
from http import HTTPStatus
import json
import os
from pathlib import Path
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request
from zoneinfo import ZoneInfo

from . import REPO_ROOT, host_path
from .config_lock import LOCK_NAME, ConfigInUseError, ConfigLock
from .demo_phone import PHONE_NAME, PushReceiver, ensure_demo_phone
from .kamailio import DEMO_ACCOUNT, Kamailio
from .line import lockout_until
from .ports import port_bindable
from .sipp import Sipp, SippUas

HOST = "127.0.0.1"
DEFAULT_HA_PORT = 8123
# Above 1024 so the stand-in never needs root on a user's machine.
DEFAULT_SIP_PORT = 5070
DEMO_NAME = "Demo"
DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password-ha"  # noqa: S105  a documented demo value, loopback only
DEMO_LINE_NAME = "Demo line"
# The demo Home Assistant's time zone: its forms say times in it, so develop does too.
DEMO_TIME_ZONE = "Europe/Amsterdam"
DEFAULT_CONFIG_DIR = REPO_ROOT / ".develop" / "config"  # gitignored
ONLINE_ONLY_DOMAINS = frozenset({"google_translate", "met", "radio_browser"})
# Line statuses that end the wait for the demo line: registered, or a refused login
# (the demo goes on, so the re-authentication screens can be tried).
LINE_OUTCOMES = frozenset({"registered", "auth_failed", "locked_out"})
# `Develop.line_status` when the stored login was refused as Home Assistant set the
# entry up: no line status sensor then, a reauth flow instead (ConfigEntryAuthFailed).
LOGIN_FAILED_AT_START = "login refused at start, entry not set up"
# Home Assistant's K8 lockout records (custom_components/kpn_voip/lockout.py; the
# file of its Store LOCKOUT_STORAGE_KEY), read to tell a K8 wait from a refused password.
LOCKOUT_STORE = Path(".storage") / "kpn_voip.lockout"
# The demo's "phone" for calls placed by the line (kpn_voip.dial) rings this long.
CALLEE_ANSWER_AFTER = 3.0
# Home Assistant's log lines (components/http) when it could not bind the port it was
# given: in recovery mode it then binds its default 8123 on every address.
HTTP_FALLBACK_SIGNS = (
    "The HTTP configuration could not be applied",
    "Failed to create HTTP server at port",
)
# Every process this module starts (and their children) carries this variable:
# stop() sweeps whatever still has it, and tests/kpn_devtools/test_develop.py looks for it.
TAG_VARIABLE = "KPN_DEVELOP_TAG"

CONFIGURATION_YAML = """\
# Written by scripts/develop: a demo Home Assistant, on loopback only.
homeassistant:
  name: KPN VoIP demo
  country: NL
  language: en
  time_zone: @@TIME_ZONE@@
  unit_system: metric
  currency: EUR
  latitude: 52.3731
  longitude: 4.8922
  elevation: 0
logger:
  default: warning
  logs:
    homeassistant.bootstrap: info
    custom_components.kpn_voip: debug
    # Set up by Home Assistant for everyone, unrelated to the line, and without
    # their system libraries here: their start-up errors are noise in the demo.
    haffmpeg: critical
    homeassistant.components.camera.img_util: critical
    aiohttp_fast_zlib: error
frontend:
config:
history:
logbook:
recorder:
  commit_interval: 1
automation: !include automations.yaml
# An offline text-to-speech engine (kpn_devtools/demo_speech: ffmpeg's flite voice,
# English), so kpn_voip.say and the README's jobs can be tried on the demo line.
media_source:
tts:
  - platform: demo_speech
# The companion app's integration: the answering machine blueprint notifies a phone with
# it (kpn_devtools/demo_phone.py registers "Demo phone", whose notifications develop prints).
mobile_app:
""".replace("@@TIME_ZONE@@", DEMO_TIME_ZONE)

# How develop runs Home Assistant (`python -c HASS_LOOPBACK -c CONFIG ...`, any Python with
# Home Assistant: no import of this package).  Home Assistant's aiohttp helper makes its
# zeroconf (mDNS) instance on the network integration's adapters, and that always has a
# listener on 0.0.0.0:5353 - on every address, whatever the configuration says (zeroconf
# is no integration the configuration could leave out).  The demo is loopback only, so
# that instance is made in unicast mode on 127.0.0.1 (no multicast listener; .local names
# do not resolve, and nothing in the demo needs them).  A private function of Home
# Assistant: tests/kpn_devtools/test_develop.py checks it is the one used.
HASS_LOOPBACK = """\
import sys
from homeassistant.components import zeroconf
from zeroconf import IPVersion
zeroconf._async_get_zc_args = lambda hass: {
    "interfaces": ["127.0.0.1"], "unicast": True, "ip_version": IPVersion.V4Only
}
from homeassistant.__main__ import main
sys.exit(main())
"""


class DevelopError(RuntimeError):
    """Home Assistant or the stand-in did not come up as expected."""


class HttpError(DevelopError):
    """Home Assistant answered with an HTTP error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def env_port(name: str, default: int) -> int:
    """A port from the environment (KPN_HA_PORT / KPN_SIP_PORT) or the default."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    port = int(value)
    if not 0 < port < 65536:
        raise DevelopError(f"{name} must be a port number, not {value!r}")
    return port


def write_config(config_dir: Path, ha_port: int, extra: str = "") -> None:
    """configuration.yaml (+ `extra` YAML: more integrations), the integration and
    the demo TTS engine linked into custom_components."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "configuration.yaml").write_text(CONFIGURATION_YAML + extra)
    write_http_config(config_dir, ha_port)
    write_onboarding_steps(config_dir)
    automations = config_dir / "automations.yaml"
    if not automations.exists():
        automations.write_text("[]\n")
    custom = config_dir / "custom_components"
    custom.mkdir(exist_ok=True)
    _link(custom / "kpn_voip", REPO_ROOT / "custom_components" / "kpn_voip")
    _link(custom / "demo_speech", Path(__file__).with_name("demo_speech"))
    install_blueprints(config_dir)


def install_blueprints(config_dir: Path) -> list[Path]:
    """The checkout's blueprints (blueprints/automation/kpn_voip/*.yaml) in CONFIG's
    blueprints folder, where Home Assistant's blueprint UI lists them; the copies made.

    Copies, refreshed at each start (a link would let Home Assistant's "re-import"
    or a delete in the UI change the checkout).  Home Assistant fills a blueprints
    folder with its own examples only when it does not exist yet: since this one
    makes it, those are copied too (once, as Home Assistant would).
    """
    from homeassistant.components import automation

    folder = config_dir / "blueprints" / "automation"
    examples = Path(automation.__file__).with_name("blueprints")
    if not (folder / "homeassistant").exists() and examples.is_dir():
        shutil.copytree(examples, folder / "homeassistant")
    ours = folder / "kpn_voip"
    ours.mkdir(parents=True, exist_ok=True)
    copies = []
    for source in sorted((REPO_ROOT / "blueprints" / "automation" / "kpn_voip").glob("*.yaml")):
        copies.append(Path(shutil.copyfile(source, ours / source.name)))
    return copies


def _link(link: Path, target: Path) -> None:
    """`link` -> the folder `target`, replacing whatever `link` was.

    A link, not a copy: edits in the checkout are live after an HA restart.
    """
    if link.is_symlink() or link.exists():
        if link.is_symlink() and link.resolve() == target.resolve():
            return
        if link.is_symlink() or link.is_file():
            link.unlink()
        else:
            shutil.rmtree(link)
    link.symlink_to(target, target_is_directory=True)


def write_http_config(config_dir: Path, ha_port: int) -> None:
    """Bind HA's HTTP server to loopback:ha_port through its config store.

    Since 2026.x HA keeps the HTTP settings in .storage/http (YAML is migrated
    once into a "pending" trial that reverts itself after 5 minutes unless
    confirmed in the UI), so the confirmed ("stable") slot is written here,
    validated by HA's own schema.
    """
    from homeassistant.components.http import config as http_config
    from homeassistant.util import dt as dt_util

    stable = dict(http_config.HTTP_STORAGE_SCHEMA({"server_host": [HOST], "server_port": ha_port}))
    stable.update(created_at=dt_util.utcnow().isoformat(), error=None, error_message=None)
    storage = config_dir / ".storage"
    storage.mkdir(exist_ok=True)
    (storage / http_config.STORAGE_KEY).write_text(
        json.dumps(
            {
                "version": http_config.STORAGE_VERSION,
                "minor_version": http_config.STORAGE_MINOR_VERSION,
                "key": http_config.STORAGE_KEY,
                "data": {"stable": stable, "pending": None, "yaml_migration_done": True},
            },
            indent=2,
        )
    )


def write_onboarding_steps(config_dir: Path) -> None:
    """A new config dir starts with every onboarding step but the user's done.

    Finishing the core_config step through the API would start the flows of
    Google Translate, Met.no and Radio Browser, whose libraries are not here
    (--skip-pip) and which need the internet: their errors would open the log.
    The owner is still made through the onboarding API (`Api.onboard`).
    """
    from homeassistant.components.onboarding import STORAGE_KEY, STORAGE_VERSION, const

    path = config_dir / ".storage" / STORAGE_KEY
    if path.exists():
        return
    path.parent.mkdir(exist_ok=True)
    done = [step for step in const.STEPS if step != const.STEP_USER]
    path.write_text(
        json.dumps(
            {
                "version": STORAGE_VERSION,
                "minor_version": 1,
                "key": STORAGE_KEY,
                "data": {"done": done},
            }
        )
    )


class Api:
    """A tiny client for HA's REST API on loopback."""

    def __init__(self, base_url: str) -> None:
        if not base_url.startswith(f"http://{HOST}:"):
            raise ValueError("only loopback Home Assistant URLs")
        self.base_url = base_url
        self.token: str | None = None

    @property
    def client_id(self) -> str:
        """The OAuth client id the frontend would use."""
        return self.base_url + "/"

    def request(
        self,
        method: str,
        path: str,
        data: Any = None,
        *,
        form: dict[str, str] | None = None,
        auth: bool = True,
        timeout: float = 30.0,
    ) -> Any:
        """One request; JSON in and out. Raises DevelopError on HTTP errors."""
        headers = {}
        body: bytes | None = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif data is not None:
            body = json.dumps(data).encode()
            headers["Content-Type"] = "application/json"
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        # The URL is always http://127.0.0.1:PORT (checked in __init__).
        req = urllib.request.Request(  # noqa: S310
            self.base_url + path, data=body, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                raw = resp.read()
                is_json = resp.headers.get_content_type() == "application/json"
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:500]
            raise HttpError(f"{method} {path}: HTTP {err.code} {detail}", err.code) from None
        if not is_json:  # /api/template answers text/plain
            return raw.decode()
        return json.loads(raw) if raw else None

    def _token_from_code(self, code: str) -> None:
        tokens = self.request(
            "POST",
            "/auth/token",
            form={"grant_type": "authorization_code", "code": code, "client_id": self.client_id},
            auth=False,
        )
        self.token = tokens["access_token"]

    def onboard(self, *, name: str, username: str, password: str) -> bool:
        """Finish onboarding (or log in when it is done) and keep a token.

        True when this call did the core_config step.
        """
        try:
            reply = self.request("GET", "/api/onboarding", auth=False)
        except HttpError as err:
            if err.status != 404:
                raise
            # Onboarded: HA no longer serves the onboarding views.
            steps = dict.fromkeys(("user", "core_config", "analytics", "integration"), True)
        else:
            steps = {step["step"]: step["done"] for step in reply}
        if not steps.get("user"):
            reply = self.request(
                "POST",
                "/api/onboarding/users",
                {
                    "client_id": self.client_id,
                    "name": name,
                    "username": username,
                    "password": password,
                    "language": "en",
                },
                auth=False,
            )
            self._token_from_code(reply["auth_code"])
        else:
            self.login(username, password)
        did_core_config = not steps.get("core_config")
        if did_core_config:
            self.request("POST", "/api/onboarding/core_config", {})
        if not steps.get("analytics"):
            self.request("POST", "/api/onboarding/analytics", {})
        if not steps.get("integration"):
            self.request(
                "POST",
                "/api/onboarding/integration",
                {"client_id": self.client_id, "redirect_uri": self.client_id + "?auth_callback=1"},
            )
        return did_core_config

    def remove_online_only_entries(self, wait: float) -> None:
        """Remove what onboarding adds that needs the internet (the demo is offline).

        The core_config step starts flows for Google Translate TTS, Met.no and
        Radio Browser; their libraries are not installed (HA runs with
        --skip-pip) and would fetch from the internet anyway.
        """
        deadline = time.monotonic() + wait
        while True:
            entries: list[dict[str, Any]] = self.request("GET", "/api/config/config_entries/entry")
            found = [e for e in entries if e["domain"] in ONLINE_ONLY_DOMAINS]
            for entry in found:
                self.request("DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}")
            if found or time.monotonic() > deadline:
                return
            time.sleep(0.5)

    def login(self, username: str, password: str) -> None:
        """Log in through the login flow, as the frontend does."""
        flow = self.request(
            "POST",
            "/auth/login_flow",
            {
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": self.client_id,
            },
            auth=False,
        )
        result = self.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": self.client_id, "username": username, "password": password},
            auth=False,
        )
        if result.get("type") != "create_entry":
            raise DevelopError(f"demo login refused: {result.get('errors')}")
        self._token_from_code(result["result"])

    def entry(self, entry_id: str) -> dict[str, Any]:
        """One config entry (state, reason, error_reason_translation_key, ...)."""
        found = [
            e
            for e in self.request("GET", "/api/config/config_entries/entry")
            if e["entry_id"] == entry_id
        ]
        if not found:
            raise DevelopError(f"config entry {entry_id} is gone")
        entry: dict[str, Any] = found[0]
        return entry

    def entries(self, domain: str) -> list[dict[str, Any]]:
        """Config entries of a domain."""
        entries: list[dict[str, Any]] = self.request(
            "GET", f"/api/config/config_entries/entry?domain={domain}"
        )
        return entries

    def add_demo_line(self, sip_port: int) -> dict[str, Any]:
        """Add the stand-in's demo account through the config flow (user step)."""
        flow = self.request(
            "POST", "/api/config/config_entries/flow", {"handler": "kpn_voip"}, timeout=60
        )
        if flow.get("type") != "form":
            raise DevelopError(f"the KPN VoIP config flow did not show its form: {flow}")
        result = self.request(
            "POST",
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            {
                "number": DEMO_ACCOUNT.number,
                "username": DEMO_ACCOUNT.username,
                "password": DEMO_ACCOUNT.password,
                "display_name": DEMO_LINE_NAME,
                "advanced": {"proxy_host": HOST, "proxy_port": sip_port},
            },
            timeout=60,
        )
        result = self.follow_progress(result)
        if result.get("type") != "create_entry":
            raise DevelopError(
                f"adding the demo line failed: {result.get('errors') or result.get('reason')}"
            )
        entry: dict[str, Any] = result["result"]
        return entry

    def follow_progress(self, result: dict[str, Any], timeout: float = 90.0) -> dict[str, Any]:
        """A config flow's result after its progress steps (the login test shows one, K8).

        Polls the flow as the frontend does (GET moves it on once its task is
        done) until it shows something else than progress; DevelopError after
        `timeout` s (the flow announces at most 51 s).
        """
        deadline = time.monotonic() + timeout
        while result.get("type") in ("progress", "progress_done"):
            if time.monotonic() > deadline:
                raise DevelopError(f"the config flow stayed in progress: {result}")
            if result["type"] == "progress":
                time.sleep(0.2)
            flow_id = result["flow_id"]
            try:
                result = self.request(
                    "GET", f"/api/config/config_entries/flow/{flow_id}", timeout=60
                )
            except HttpError as err:
                # Home Assistant's own configure call, made when the login task ends,
                # finished the flow at the same moment (config_flow.async_step_login_done):
                # the entry it made is the result.
                if err.status != HTTPStatus.NOT_FOUND:
                    raise
                entries = self.request("GET", "/api/config/config_entries/entry?domain=kpn_voip")
                made = [e for e in entries if e.get("title") == DEMO_LINE_NAME]
                if not made:
                    raise
                return {"type": "create_entry", "result": made[-1]}
        return result

    def point_line_at(self, entry_id: str, sip_port: int) -> None:
        """Options flow: the existing entry's proxy = this stand-in."""
        flow = self.request(
            "POST", "/api/config/config_entries/options/flow", {"handler": entry_id}
        )
        if flow.get("type") != "form":
            raise DevelopError(f"the KPN VoIP options flow did not show its form: {flow}")
        values = {
            field["name"]: (field.get("description") or {}).get("suggested_value")
            for field in flow.get("data_schema", [])
        }
        values = {key: value for key, value in values.items() if value is not None}
        values.update({"proxy_host": HOST, "proxy_port": sip_port})
        result = self.request(
            "POST", f"/api/config/config_entries/options/flow/{flow['flow_id']}", values
        )
        if result.get("type") != "create_entry":
            raise DevelopError(f"updating the demo line failed: {result.get('errors')}")

    def render(self, template: str) -> str:
        """Render a template on the server."""
        text: str = self.request("POST", "/api/template", {"template": template})
        return text

    def line_status_entity(self) -> str | None:
        """The line status sensor's entity id (via the entity registry)."""
        text = self.render(
            "{{ integration_entities('kpn_voip') | select('match', 'sensor\\..*line_status')"
            " | list | first | default('') }}"
        )
        return text.strip() or None

    def state(self, entity_id: str) -> dict[str, Any] | None:
        """One entity's state object."""
        try:
            state: dict[str, Any] = self.request("GET", f"/api/states/{entity_id}")
        except HttpError as err:
            if err.status == 404:
                return None
            raise
        return state


class Develop:
    """The stand-in plus Home Assistant; start() then stop() (idempotent)."""

    def __init__(
        self,
        config_dir: Path = DEFAULT_CONFIG_DIR,
        *,
        ha_port: int | None = None,
        sip_port: int | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        self.config_dir = config_dir.resolve()
        self.ha_port = ha_port or env_port("KPN_HA_PORT", DEFAULT_HA_PORT)
        self.sip_port = sip_port or env_port("KPN_SIP_PORT", DEFAULT_SIP_PORT)
        self.say = say
        self.standin: Kamailio | None = None
        self.sipp: Sipp | None = None
        self.callee: SippUas | None = None
        self.hass: subprocess.Popen[bytes] | None = None
        self.phone: PushReceiver | None = None
        self.api = Api(f"http://{HOST}:{self.ha_port}")
        self.tag = os.environ.get(TAG_VARIABLE) or secrets.token_hex(8)
        self.console_log = self.config_dir / "hass-console.log"
        self.line_entity: str | None = None
        self.line_status: str | None = None
        self._console_start = 0  # where the running HA's output starts in console_log
        self.hass_started = time.time()  # this run's start, epoch seconds (K8 waits before it)
        # tests/wheels: another Python, HA's own requirement installs, an index.
        self.hass_python = sys.executable
        self.hass_args = ["--skip-pip"]
        self.hass_env: dict[str, str] = {}
        # More configuration.yaml (kpn_devtools/screenshots.py: media, TTS).
        self.extra_config = ""

    @property
    def url(self) -> str:
        """Where the user's browser goes."""
        return self.api.base_url

    # -- life cycle ------------------------------------------------------------------

    def start(self, *, add_line: bool = True, timeout: float = 300.0) -> None:
        """Stand-in, HA, onboarding, the demo line; on any failure stop() first."""
        try:
            self.check_ha_port()  # before the stand-in: nothing starts for a start refused
            with _environ(TAG_VARIABLE, self.tag):  # Kamailio inherits the tag
                self.start_standin()
            self.start_hass()
            self.wait_http(timeout)
            fresh = self.api.onboard(name=DEMO_NAME, username=DEMO_USER, password=DEMO_PASSWORD)
            self.wait_loaded(timeout)
            if fresh:
                self.api.remove_online_only_entries(wait=10.0)
            self.start_demo_phone()
            if add_line:
                self.ensure_line()
        except BaseException:
            self.stop()
            raise

    def start_demo_phone(self) -> None:
        """ "Demo phone" (demo_phone.py): a companion-app phone whose notifications are
        printed here, for the answering machine blueprint."""
        self.phone = PushReceiver(self.say)
        self.phone.start()
        try:
            registered = ensure_demo_phone(self.api, self.config_dir, self.phone.url)
        except DevelopError as err:  # e.g. mobile_app not set up: the demo runs without it
            self.say(
                f"WARNING: {PHONE_NAME!r} is not registered (the answering machine has "
                f"no phone to notify): {err}"
            )
            return
        if registered:
            self.say(f"Registered {PHONE_NAME!r} (mobile_app): its notifications show here")

    def start_callee(self) -> None:
        """A SIPp "phone" that calls placed by the line reach; it answers after 3 s."""
        if shutil.which("sipp") is None:
            self.say("WARNING: sipp is missing: calls placed by the line will fail (503)")
            return
        self.sipp = Sipp(Path(tempfile.mkdtemp(prefix="kpn-develop-sipp-")))
        self.callee = self.sipp.uas(answer_after=CALLEE_ANSWER_AFTER)

    def start_standin(self) -> None:
        """The KPN stand-in with the demo account (K8 lockout on, like KPN)."""
        self.start_callee()
        forward = None if self.callee is None else (HOST, self.callee.port)
        self.standin = Kamailio(accounts=[DEMO_ACCOUNT], port=self.sip_port, forward_to=forward)
        try:
            self.standin.start()
        except Exception as err:
            raise DevelopError(
                f"the KPN stand-in could not start on udp {HOST}:{self.sip_port} "
                f"(is something else using it? set KPN_SIP_PORT): {err}"
            ) from err
        self.say(
            f"KPN stand-in (Kamailio) on udp {HOST}:{self.sip_port}, "
            f"log {host_path(self.standin.log_path)}"
        )

    def start_hass(self) -> None:
        """`hass -c CONFIG --skip-pip` (HASS_LOOPBACK) in a process group of its own."""
        self.check_ha_port()  # again: the stand-in took a while
        write_config(self.config_dir, self.ha_port, self.extra_config)
        self._spawn_hass()

    def check_ha_port(self) -> None:
        """DevelopError if Home Assistant's port is taken (ports.port_bindable)."""
        if not port_bindable(self.ha_port):
            raise DevelopError(
                f"port {self.ha_port} is in use: stop the other Home Assistant or set KPN_HA_PORT"
            )

    def _spawn_hass(self) -> None:
        """The `hass` process itself, its output appended to the console log."""
        # The engine processes HA starts inherit the tag too.  No PYTHONPATH: HA
        # finds the integration only in CONFIG/custom_components, never in the
        # checkout that our own PYTHONPATH (scripts/develop) names.
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        env[TAG_VARIABLE] = self.tag
        log = self.console_log.open("ab")
        self._console_start = log.tell()  # this process's output starts here
        try:
            self.hass = subprocess.Popen(
                [
                    self.hass_python,
                    "-c",
                    HASS_LOOPBACK,
                    "-c",
                    str(self.config_dir),
                    *self.hass_args,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.config_dir,
                env={**env, **self.hass_env},
            )
        finally:
            log.close()
        self.say(
            f"Home Assistant starting (pid {self.hass.pid}), config {host_path(self.config_dir)}"
        )

    def keep_running(self, interval: float = 1.0, timeout: float = 300.0) -> None:
        """Watch Home Assistant until it stops for good.

        A restart asked for in Home Assistant (Settings -> System -> Restart, the
        homeassistant.restart action) ends its process with RESTART_EXIT_CODE for
        its runner to start it again: this does (`restart_hass`), with the same
        config folder and port, the stand-in and the test phone left running.
        Returns when it stopped by itself (exit code 0: the homeassistant.stop
        action); raises DevelopError, with the log's tail, on any other exit.
        Polls every `interval` s; `timeout` s for each restart to be RUNNING.
        """
        from homeassistant.const import RESTART_EXIT_CODE

        while True:
            assert self.hass is not None
            code = self.hass.poll()
            if code is None:
                time.sleep(interval)
            elif code == RESTART_EXIT_CODE:
                self.restart_hass(timeout)
            elif code == 0:
                return
            else:
                self._check_alive()  # raises, with the log's tail

    def restart_hass(self, timeout: float = 300.0) -> None:
        """Start Home Assistant again after it exited to restart; until it is RUNNING.

        The config folder is not written again (a restart applies the user's
        changes to it).  What the old process left in its group (an engine that
        did not stop) is killed first.  Raises DevelopError if it does not come back.
        """
        old = self.hass
        assert old is not None
        began = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(old.pid, signal.SIGKILL)
        self.say(f"Home Assistant (pid {old.pid}) exited to restart: starting it again")
        self._spawn_hass()
        self.wait_http(timeout)
        self.wait_loaded(timeout)
        assert self.hass is not None
        self.say(
            f"Home Assistant restarted (pid {self.hass.pid}) in "
            f"{time.monotonic() - began:.1f} s: {self.url}"
        )

    def _http_fell_back(self) -> bool:
        """Whether this HA process logged that it could not bind its HTTP port."""
        try:
            with self.console_log.open("rb") as log:
                log.seek(self._console_start)
                text = log.read().decode(errors="replace")
        except OSError:
            return False
        return any(sign in text for sign in HTTP_FALLBACK_SIGNS)

    def _check_alive(self) -> None:
        if self.hass is None or self.hass.poll() is not None:
            tail = ""
            with contextlib.suppress(OSError):
                tail = self.console_log.read_text(errors="replace")[-3000:]
            raise DevelopError(f"Home Assistant exited:\n{tail}")

    def wait_http(self, timeout: float) -> None:
        """Until HA answers on its HTTP port.

        Raises DevelopError at once when HA could not bind it (taken after
        start_hass checked it): HA then starts in recovery mode, which falls back
        to port 8123 on every address, not loopback only.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            if self._http_fell_back():
                raise DevelopError(
                    f"Home Assistant could not listen on {HOST}:{self.ha_port} (taken after "
                    "it was checked) and fell back to its default port 8123 on every "
                    "address: stopped it; set KPN_HA_PORT to a free port"
                )
            try:
                self.api.request("GET", "/manifest.json", auth=False, timeout=5)
                return
            except HttpError:
                return  # it answers
            except OSError:
                if time.monotonic() > deadline:
                    raise DevelopError(
                        f"Home Assistant did not answer within {timeout:.0f} s"
                    ) from None
                time.sleep(0.5)

    def wait_loaded(self, timeout: float) -> None:
        """Until HA is RUNNING (custom integrations can then be set up)."""
        deadline = time.monotonic() + timeout
        while self.api.request("GET", "/api/config")["state"] != "RUNNING":
            self._check_alive()
            if time.monotonic() > deadline:
                raise DevelopError("Home Assistant did not finish starting")
            time.sleep(0.5)

    def ensure_line(self, timeout: float = 60.0) -> None:
        """The demo line exists, points at this stand-in and has a login outcome.

        Registered, or refused: then the demo goes on and says how to re-authenticate
        (trying those screens is what a refused password is good for here), also when
        the stored password failed at this start and the entry is not set up at all.
        No outcome within `timeout` s is said, not raised: Home Assistant runs on.
        """
        entries = self.api.entries("kpn_voip")
        # The REST API does not show unique ids: the demo line is the entry
        # named so, else the only/first one (this config dir is the demo's).
        demo = [e for e in entries if e["title"] == DEMO_LINE_NAME] or entries[:1]
        if not demo:
            entry_id = self.api.add_demo_line(self.sip_port)["entry_id"]
            self.say("Added the demo line (KPN VoIP entry) against the stand-in")
        else:
            entry_id = demo[0]["entry_id"]
            if demo[0].get("state") != "loaded" or not self.standin_has_contact(10.0):
                # Reloads the entry only if the stand-in's address changed.
                self.api.point_line_at(entry_id, self.sip_port)
        self.line_entity = self.wait_line_outcome(entry_id, timeout)
        if self.line_status == "registered":
            return
        until = k8_wait_until(self.config_dir, DEMO_ACCOUNT.username, before=self.hass_started)
        if until is not None:
            # K8: a login refused before this start (another device locked the
            # account out, or an earlier run): Home Assistant sends none until
            # the wait ends, not even to this new stand-in.  Not the password.
            self.say(
                f"The demo line is in its K8 wait ({self.line_status}): a login was refused "
                "before this start (another device on the demo account, or an earlier run), "
                "so Home Assistant sends no login until "
                f"{_clock(until)}. Wait until then, "
                "or restart with --fresh (a new config dir has no K8 wait)"
            )
        elif self.line_status in LINE_OUTCOMES or self.line_status == LOGIN_FAILED_AT_START:
            # Refused in this run: the stored password is wrong (or the stand-in blocks
            # the account).  HA's reauth flow holds a new one until the K8 block ends.
            held = k8_wait_until(self.config_dir, DEMO_ACCOUNT.username)
            hold = (
                f"; the form holds it until {_clock(held)} (K8 hold: a refused login blocks "
                "the account for about 15 minutes, as KPN does)"
                if held is not None
                else ""
            )
            self.say(
                f"The stand-in refused the demo line's login ({self.line_status}): "
                "Home Assistant offers the re-authentication under Settings -> "
                f"Devices & services; the stand-in's password is {DEMO_ACCOUNT.password!r}" + hold
            )
        else:
            self.say(
                f"The demo line has no login outcome after {timeout:.0f} s "
                f"({self.line_status}); Home Assistant runs on: see its log and "
                "Settings -> Devices & services"
            )

    def wait_line_outcome(self, entry_id: str, timeout: float) -> str | None:
        """Until the line has a login outcome (LINE_OUTCOMES, kept in `line_status`);
        the line status sensor's entity id, None if the entry is not set up.

        An entry whose stored login was refused when Home Assistant set it up is
        not set up (ConfigEntryAuthFailed: no entities, a reauth flow instead):
        `line_status` is then LOGIN_FAILED_AT_START.  After `timeout` s without
        either, `line_status` is the entry's state (e.g. "setup_retry").
        Raises DevelopError only when Home Assistant exits.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            entity = self.api.line_status_entity()
            state = self.api.state(entity) if entity is not None else None
            if state is not None and state["state"] in LINE_OUTCOMES:
                self.line_status = state["state"]
                return entity
            entry = self.api.entry(entry_id)
            if (
                entry.get("state") == "setup_error"
                and entry.get("error_reason_translation_key") in LINE_OUTCOMES
            ):
                self.line_status = LOGIN_FAILED_AT_START
                return None
            if time.monotonic() > deadline:
                self.line_status = str(entry.get("state"))
                return entity
            time.sleep(0.5)

    def standin_has_contact(self, timeout: float) -> bool:
        """Whether the demo number registers with the stand-in within `timeout`."""
        assert self.standin is not None
        try:
            self.standin.wait_registered(DEMO_ACCOUNT.number, timeout=timeout)
        except TimeoutError:
            return False
        return True

    def wait_line_status(self, wanted: str | Collection[str], timeout: float) -> str:
        """Until the line status sensor shows `wanted` (or one of them); its entity id.

        The status it showed is kept in `line_status`.
        """
        if isinstance(wanted, str):
            wanted = {wanted}
        deadline = time.monotonic() + timeout
        status = None
        while True:
            self._check_alive()
            entity = self.api.line_status_entity()
            if entity is not None:
                state = self.api.state(entity)
                status = state["state"] if state else None
                if status in wanted:
                    self.line_status = status
                    return entity
            if time.monotonic() > deadline:
                raise DevelopError(f"the line status stayed {status!r}, not {wanted!r}")
            time.sleep(0.5)

    def stop(self) -> list[int]:
        """Stop HA (gracefully, then its group), the stand-in, and any straggler.

        Returns the pids that had to be killed by the final sweep (none, normally).
        """
        hass, self.hass = self.hass, None
        if hass is not None:
            children = descendants(hass.pid)
            _stop_group(hass, grace=60.0)
            for pid in children:  # e.g. an engine that left HA's group
                _kill_pid(pid)
        phone, self.phone = self.phone, None
        if phone is not None:
            phone.stop()
        standin, self.standin = self.standin, None
        if standin is not None:
            standin.cleanup()
        sipp, self.sipp, self.callee = self.sipp, None, None
        if sipp is not None:
            sipp.stop_all()
            shutil.rmtree(sipp.workdir, ignore_errors=True)
        leftovers = tagged_processes(self.tag, exclude={os.getpid()})
        for pid in leftovers:
            _kill_pid(pid)
        return leftovers


def k8_wait_until(config_dir: Path, username: str, *, before: float | None = None) -> float | None:
    """When Home Assistant's K8 wait for `username` ends (epoch seconds), if a login was
    refused (before `before`, epoch seconds, if given) and the wait still runs; else None.

    Read from the lockout records Home Assistant keeps in `config_dir` (LOCKOUT_STORE:
    per user name the newest failure's `time`, and no password, K9).  A missing or
    damaged file is no wait.
    """
    try:
        record = json.loads((config_dir / LOCKOUT_STORE).read_text())["data"][username]
        failed_at = float(record["time"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    until = lockout_until(failed_at)
    refused_before = before is None or failed_at < before
    return until if refused_before and time.time() < until else None


def _clock(epoch: float) -> str:
    """HH:MM of an epoch time in the demo's time zone, as Home Assistant's forms say it
    (the reauth form's "blocked until"), whatever this machine's own zone is."""
    return datetime.fromtimestamp(epoch, ZoneInfo(DEMO_TIME_ZONE)).strftime("%H:%M")


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    """os.environ[name] = value for the block (children started in it inherit it)."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def descendants(pid: int) -> list[int]:
    """All descendants of `pid` (from /proc), children first."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def tagged_processes(tag: str, exclude: set[int] | None = None) -> list[int]:
    """Pids of live processes whose environment carries TAG_VARIABLE=tag."""
    needle = f"{TAG_VARIABLE}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (exclude or set()):
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _kill_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _stop_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the group (HA shuts down cleanly), SIGKILL after `grace`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def next_call_command(sip_port: int) -> str:
    """The scripts/call command that rings the demo line on the stand-in at `sip_port`:
    scripts/call's own default is KPN_SIP_PORT or 5070, and another terminal may not
    have the KPN_SIP_PORT this demo was started with, so a port not 5070 is named."""
    port = "" if sip_port == DEFAULT_SIP_PORT else f" --port {sip_port}"
    return f"scripts/call{port} +31612345678 'Jan'"


def _line_summary(dev: Develop) -> str:
    """The banner's line about the demo line."""
    if dev.line_entity:
        return f"  line status:     {dev.line_entity} = {dev.line_status}"
    if dev.line_status == LOGIN_FAILED_AT_START:
        return (
            f"  demo line:       {dev.line_status}: re-authenticate it under "
            "Settings -> Devices & services"
        )
    if dev.line_status:
        return f"  demo line:       {dev.line_status}"
    return "  demo line:       not added (--no-line): add it in the UI"


def _banner(dev: Develop) -> str:
    return "\n".join(
        [
            "",
            "=" * 72,
            f"  Home Assistant:  {dev.url}",
            f"  demo login:      user {DEMO_USER!r}, password {DEMO_PASSWORD!r}",
            f"  KPN stand-in:    udp {HOST}:{dev.sip_port}  (line {DEMO_ACCOUNT.number},",
            f"                   user {DEMO_ACCOUNT.username}, password {DEMO_ACCOUNT.password!r})",
            _line_summary(dev),
            f"  calls placed by the line (kpn_voip.dial) ring a SIPp test phone on udp "
            f"{HOST}:{dev.callee.port}, answered after {CALLEE_ANSWER_AFTER:g} s"
            if dev.callee
            else "  calls placed by the line fail: no test phone (sipp missing)",
            "  blueprints:      Settings -> Automations & scenes -> Blueprints (kpn_voip);",
            f"                   notifications to {PHONE_NAME!r} (mobile_app) are printed here",
            f"  HA log:          {host_path(dev.config_dir / 'home-assistant.log')}",
            "",
            f"  next: {next_call_command(dev.sip_port)}      (Ctrl-C here stops everything)",
            "  a restart from Home Assistant (Settings -> System -> Restart) starts it again",
            "=" * 72,
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """scripts/develop: start everything, print the banner, wait for Ctrl-C."""
    parser = argparse.ArgumentParser(prog="scripts/develop", description=__doc__)
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("KPN_DEVELOP_CONFIG") or DEFAULT_CONFIG_DIR),
        help="HA config dir (default: .develop/config in the checkout; kept between runs)",
    )
    parser.add_argument("--fresh", action="store_true", help="start from an empty config dir")
    parser.add_argument(
        "--no-line", action="store_true", help="do not add the demo line (add it in the UI)"
    )
    args = parser.parse_args(argv)

    def on_signal(signum: int, frame: object) -> None:
        # Once: a Ctrl-C reaches this process both from the terminal and as
        # forwarded by scripts/develop; the second must not cut the clean-up.
        for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(stop_signal, signal.SIG_IGN)
        raise KeyboardInterrupt

    # scripts/develop starts this in the background, where SIGINT arrives
    # ignored: Ctrl-C (and SIGINT to scripts/develop's pid) must still stop everything.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    config_dir = args.config.resolve()
    try:
        # Before anything is written (a second develop on a folder in use wrote its
        # port into the first one's configuration), and held until develop ends.
        lock = ConfigLock(config_dir)
    except ConfigInUseError as err:
        print(f"ERROR: {err}", file=sys.stderr, flush=True)
        return 1
    if args.fresh:
        _empty_folder(config_dir, keep=LOCK_NAME)
    dev = Develop(config_dir, say=lambda text: print(text, flush=True))
    lock.describe(url=dev.url)
    try:
        dev.start(add_line=not args.no_line)
        if args.no_line:
            dev.line_entity = None
        print(_banner(dev), flush=True)
        dev.keep_running()
        print("\nHome Assistant was stopped from inside it (exit code 0): stopping ...", flush=True)
        return 0
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    except DevelopError as err:
        print(f"ERROR: {err}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup
        leftovers = dev.stop()
        lock.release()
        if leftovers:
            print(f"WARNING: killed leftover processes {leftovers}", file=sys.stderr, flush=True)
        print("stopped: Home Assistant and the KPN stand-in", flush=True)


def _empty_folder(folder: Path, keep: str) -> None:
    """--fresh: remove everything in `folder` but the file `keep` (develop's lock)."""
    for entry in folder.iterdir():
        if entry.name == keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
