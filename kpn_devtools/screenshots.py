"""The README's pictures of the three jobs, taken from a real Home Assistant (issue 11).

`scripts/screenshots [--out DIR]` (`python -m kpn_devtools screenshots`)
starts the demo of scripts/develop (kpn_devtools/develop.py: the KPN stand-in,
Home Assistant with the demo line) in a fresh temporary config dir, with media,
an offline TTS engine (kpn_devtools/demo_speech: ffmpeg's flite voice) and the
README's automations and blueprints loaded, then plays the jobs with real
calls and photographs them in headless Chromium (Debian's, driven by
Playwright; every request that is not for 127.0.0.1 is refused):

* the gate intercom blueprint as an automation (`blueprint_gate.png`);
* a caller keying in the PIN: the digits as `dtmf` events in the logbook,
  the gate opened (`logbook_dtmf.png`), by a second pjsua2 phone
  (kpn_devtools/farend.py) that calls the line through the stand-in and sends
  RFC 2833 digits (K15);
* the answering machine: a call nobody answers is picked up, greeted and
  recorded; the notification (`notification.png`) and the recording in the
  media browser (`media_browser.png`);
* the README's alarm call to the test phone, and the device page after it all
  (`device_sound.png`).

PNGs go to docs/images/ (or --out), cropped to the part that matters.
Everything started is stopped at the end (Develop.stop).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
import contextlib
from pathlib import Path
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import yaml

from . import REPO_ROOT
from .develop import DEMO_PASSWORD, DEMO_USER, HOST, Api, Develop
from .farend import FarEnd

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize
from .kamailio import DEMO_ACCOUNT
from .ports import free_tcp_port, free_udp_port
from .sound import read_wav

DEFAULT_OUT = REPO_ROOT / "docs" / "images"
# The run's temporary folder (config dir, sounds); removed after a good run (tidy_work).
WORK_PREFIX = "kpn-screenshots-"
FAILURE_PICTURE = "failure.png"  # what the browser showed when a job failed: kept
K1_DOMAIN = "ims.imscore.net"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Loopback only: no name resolves except 127.0.0.1.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)
# What the demo Home Assistant gets on top of scripts/develop's configuration.
EXTRA_CONFIG = """\
input_boolean:
  gate:
    name: Gate
    icon: mdi:gate
"""
VIEWPORT: ViewportSize = {"width": 1100, "height": 760}
SIDEBAR = 256  # px: Home Assistant's sidebar, left out of the pictures
PIN = "4711"
# What the caller says on the answering machine (after the greeting is over).
CALLER_MESSAGE = "Hello, this is Jan. Please call me back about the parcel."
GATE = "gate_intercom"
MACHINE = "answering_machine"
ALARM = "alarm_call"


def _readme_automations() -> dict[str, dict[str, Any]]:
    """The README's automations by alias (tests/kpn_voip/test_readme_jobs.py runs them)."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```yaml\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    configs = [yaml.safe_load(block) for block in blocks]
    return {c["alias"]: c for c in configs if isinstance(c, dict) and "triggers" in c}


def automations(event_entity: str) -> list[dict[str, Any]]:
    """automations.yaml: the gate blueprint with a PIN, the README's answering machine
    and alarm call, aimed at `event_entity` (the README writes event.thuis_call)."""
    readme = _readme_automations()

    def ours(alias: str, automation_id: str) -> dict[str, Any]:
        config = yaml.safe_load(
            yaml.safe_dump(readme[alias]).replace("event.thuis_call", event_entity)
        )
        return {"id": automation_id, **config}

    gate = {
        "id": GATE,
        "alias": "Gate intercom",
        "description": "Answers, asks for the PIN, opens the gate.",
        "use_blueprint": {
            "path": "kpn_voip/gate_intercom_pin.yaml",
            "input": {
                "call_event": event_entity,
                "pin": PIN,
                "open_action": [
                    {
                        "action": "input_boolean.turn_on",
                        "target": {"entity_id": "input_boolean.gate"},
                    }
                ],
            },
        },
    }
    return [gate, ours("Answering machine", MACHINE), ours("Alarm - call my mobile", ALARM)]


def prepare(config_dir: Path) -> None:
    """The config dir before Home Assistant starts: the media folder (scripts/develop's
    configuration brings the TTS engine and the blueprints: develop.install_blueprints)."""
    (config_dir / "media").mkdir(parents=True)


def speech_wav(text: str, path: Path, lead_seconds: float) -> Path:
    """`text` spoken by ffmpeg's flite voice as an 8 kHz mono WAV, after `lead_seconds`
    of silence (the far end plays it as soon as the call is answered)."""
    text_file = path.with_suffix(".txt")
    text_file.write_text(text)  # a file: nothing in the text reaches the filter syntax
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"flite=textfile={text_file}:voice=slt",
            "-af",
            # then silence (still RTP) long enough for the recording's silence end
            f"adelay={int(lead_seconds * 1000)}:all=1,apad=pad_dur=10",
            "-ar",
            "8000",
            "-ac",
            "1",
            "-c:a",
            "pcm_s16le",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.3)
    return result


class Shooter:
    """One demo Home Assistant, its API as the demo user, and a Chromium page on it."""

    def __init__(self, dev: Develop, page: Any, out: Path) -> None:
        self.dev = dev
        self.page = page
        self.out = out
        self.api = Api(dev.url)
        self.api.login(DEMO_USER, DEMO_PASSWORD)
        self.written: list[str] = []

    def shot(self, name: str, clip: dict[str, int] | None = None) -> None:
        """Save `clip` of the page (default: right of the sidebar) as `name`."""
        self.out.mkdir(parents=True, exist_ok=True)
        if clip is None:
            clip = {"x": SIDEBAR, "y": 0, "width": VIEWPORT["width"] - SIDEBAR, "height": 760}
        self.page.screenshot(path=str(self.out / name), clip=clip, animations="disabled")
        self.written.append(name)
        print(f"  {name}", flush=True)

    def call(self, action: str, data: dict[str, Any]) -> Any:
        """A service call through the REST API."""
        domain, service = action.split(".")
        return self.api.request("POST", f"/api/services/{domain}/{service}", data)

    def attribute(self, entity_id: str, name: str) -> Any:
        state = self.api.state(entity_id)
        return None if state is None else state["attributes"].get(name)

    def only(self, automation_id: str) -> None:
        """Exactly one of the demo's automations on."""
        for other in (GATE, MACHINE, ALARM):
            action = "automation.turn_on" if other == automation_id else "automation.turn_off"
            self.call(action, {"entity_id": f"automation.{self.automation_entity(other)}"})

    def automation_entity(self, automation_id: str) -> str:
        template = (
            "{{ states.automation | selectattr('attributes.id', 'eq', ID) "
            "| map(attribute='object_id') | first }}"
        )
        entity: str = self.api.render(template.replace("ID", repr(automation_id))).strip()
        return entity

    def login(self) -> None:
        page = self.page
        page.goto(self.dev.url)
        page.get_by_label("Username").fill(DEMO_USER)
        page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r".*/(home|lovelace)/.*"))


@contextlib.contextmanager
def browser(chromium: str, viewport: ViewportSize | None = None) -> Iterator[Any]:
    """A headless Chromium page (fresh profile) that can reach only Home Assistant on
    loopback; also tests/browser/test_ui.py's."""
    from playwright.sync_api import sync_playwright

    def route(route: Any) -> None:
        url = urlparse(route.request.url)
        # The frontend asks for brand images Home Assistant would fetch from the
        # internet: only our own (local, custom_components/kpn_voip/brand) may load.
        brands = url.path.startswith("/api/brands/")
        ours = url.path.startswith("/api/brands/integration/kpn_voip/")
        if url.hostname == HOST and (not brands or ours):
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport=viewport or VIEWPORT,
            locale="en-US",
            timezone_id="Europe/Amsterdam",
        )
        try:
            context.route("**/*", route)
            context.set_default_timeout(30_000)
            yield context.new_page()
        finally:
            context.close()


def gate_job(s: Shooter, event_entity: str, work: Path) -> None:
    """A caller keys in the PIN; the blueprint opens the gate and hangs up."""
    s.only(GATE)
    # (the far end sends silence around its RFC 2833 digits, as a phone does)
    far = FarEnd(
        call=f"sip:{DEMO_ACCOUNT.number}@{K1_DOMAIN}",
        proxy=f"{HOST}:{s.dev.sip_port}",
        dtmf=PIN,
        dtmf_at=5.0,
        dtmf_gap=1.5,  # keyed in by a person
        timeout=60,
    )
    try:
        _wait(lambda: (s.api.state("input_boolean.gate") or {}).get("state") == "on", 40, "gate")
        far.wait_event(lambda e: e["event"] == "ended", 30)
    finally:
        far.stop()
    _wait(lambda: s.attribute(event_entity, "event_type") == "call_ended", 20, "call end")


def machine_job(s: Shooter, event_entity: str, work: Path) -> None:
    """Nobody answers: picked up after 20 s, greeted, the caller's message recorded."""
    s.only(MACHINE)
    message = speech_wav(CALLER_MESSAGE, work / "caller.wav", lead_seconds=7.0)
    far = FarEnd(
        call=f"sip:{DEMO_ACCOUNT.number}@{K1_DOMAIN}",
        proxy=f"{HOST}:{s.dev.sip_port}",
        play=message,
        timeout=90,
    )
    try:
        far.wait_event(lambda e: e["event"] == "ended", 80)
    finally:
        far.stop()
    (recording,) = _wait(
        lambda: list((s.dev.config_dir / "media" / "kpn_voip").glob("*.wav")), 20, "recording"
    )
    samples, _ = read_wav(recording)
    if max(map(abs, samples), default=0) < 1000:  # the caller's words, not only silence
        raise RuntimeError(f"the recording {recording.name} holds no sound")


def alarm_job(s: Shooter, event_entity: str) -> None:
    """The README's alarm call, run by hand: the test phone answers after 3 s."""
    s.only(ALARM)
    s.call("automation.trigger", {"entity_id": f"automation.{s.automation_entity(ALARM)}"})
    _wait(lambda: s.attribute(event_entity, "direction") == "outgoing", 30, "the alarm call")
    _wait(lambda: s.attribute(event_entity, "event_type") == "call_ended", 60, "its end")


def shoot(s: Shooter, event_entity: str, work: Path) -> None:
    """Run the jobs and photograph them."""
    page = s.page
    base = s.dev.url
    s.login()

    page.goto(f"{base}/config/automation/edit/{GATE}")
    page.get_by_text("Action for the right PIN").filter(visible=True).first.wait_for()
    page.wait_for_timeout(800)
    s.shot("blueprint_gate.png")

    gate_job(s, event_entity, work)
    page.goto(f"{base}/logbook?entity_id={event_entity},input_boolean.gate")
    page.get_by_text("Gate").filter(visible=True).first.wait_for()
    page.wait_for_timeout(800)
    s.shot("logbook_dtmf.png")

    machine_job(s, event_entity, work)
    page.goto(f"{base}/lovelace/0")
    page.locator("ha-sidebar").get_by_text("Notifications").click()
    page.get_by_text("New message from").first.wait_for()
    page.wait_for_timeout(800)
    s.shot("notification.png", {"x": 0, "y": 0, "width": 560, "height": 300})  # the drawer
    page.get_by_role("link", name="listen in the media browser").click()
    page.get_by_text(".wav").first.wait_for()
    page.wait_for_timeout(800)
    s.shot("media_browser.png", {"x": SIDEBAR, "y": 0, "width": 844, "height": 200})

    alarm_job(s, event_entity)
    entity = s.dev.line_entity
    assert entity is not None
    device_id = s.api.render(f"{{{{ device_id('{entity}') }}}}").strip()
    page.goto(f"{base}/config/devices/device/{device_id}")
    page.get_by_text("Last caller").filter(visible=True).first.wait_for()
    page.wait_for_timeout(800)
    s.shot("device_sound.png")


def main(argv: Sequence[str] | None = None) -> int:
    """scripts/screenshots: start the demo, run the jobs, write the PNGs, stop."""
    parser = argparse.ArgumentParser(prog="scripts/screenshots", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the PNGs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary config dir")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("ERROR: no chromium on PATH (Debian's chromium package)", file=sys.stderr)
        return 1
    if shutil.which("ffmpeg") is None:
        print("ERROR: no ffmpeg on PATH (the sound needs it)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
    config_dir = work / "config"
    prepare(config_dir)
    dev = Develop(
        config_dir,
        ha_port=free_tcp_port(),
        sip_port=free_udp_port(),
        say=lambda text: print(text, flush=True),
    )
    dev.extra_config = EXTRA_CONFIG
    try:
        dev.start()
        api = Api(dev.url)
        api.login(DEMO_USER, DEMO_PASSWORD)
        event_entity = api.render(
            "{{ integration_entities('kpn_voip') | select('match', 'event\\.') | first }}"
        ).strip()
        (config_dir / "automations.yaml").write_text(yaml.safe_dump(automations(event_entity)))
        api.request("POST", "/api/services/automation/reload", {})
        with browser(chromium) as page:
            shooter = Shooter(dev, page, args.out)
            written = shooter.written
            try:
                shoot(shooter, event_entity, work)
            except BaseException:
                page.screenshot(path=str(work / FAILURE_PICTURE))
                print(f"what the browser showed: {work / FAILURE_PICTURE}", file=sys.stderr)
                raise
    finally:
        leftovers = dev.stop()
        if leftovers:
            print(f"WARNING: killed leftover processes {leftovers}", file=sys.stderr)
        tidy_work(work, keep=args.keep)
    print(f"{len(written)} pictures written", flush=True)
    return 0


def tidy_work(work: Path, *, keep: bool) -> None:
    """Remove the temporary folder `work` of a run; with `keep` (--keep) leave all of it.

    After a failure the browser's picture (FAILURE_PICTURE, named on stderr) and the
    sounds stay for a look; only the config dir goes, as before.
    """
    if keep:
        print(f"kept: {work}", flush=True)
    elif (work / FAILURE_PICTURE).exists():
        shutil.rmtree(work / "config", ignore_errors=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
