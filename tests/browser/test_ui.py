"""The user's first ten minutes, in Home Assistant's real web UI.

Home Assistant is started the way scripts/develop starts it
(kpn_devtools/develop.py: the KPN stand-in, `hass --skip-pip`, onboarding with
the demo login) but without the demo line: the test adds "KPN VoIP" through
Settings -> Devices & services like a user, sees the device page with line
status "Registered", places a call with scripts/call and finds it in the
logbook.  Headless Chromium from Debian (never `playwright install`), driven
by Playwright; every request that is not for 127.0.0.1 is refused.
The README's dashboard is saved as a dashboard of its own and photographed.
Screenshots go to a temporary folder; with KPN_UPDATE_SCREENSHOTS=1 they
replace the README's pictures in docs/images/ (so a test run never dirties
the checkout).
"""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import re
import shutil
import subprocess
import tempfile
from typing import Any

import pytest
import yaml

from kpn_devtools.develop import (
    DEMO_LINE_NAME,
    DEMO_PASSWORD,
    DEMO_USER,
    HOST,
    Api,
    Develop,
)
from kpn_devtools.kamailio import DEMO_ACCOUNT
from kpn_devtools.ports import free_tcp_port, free_udp_port
from kpn_devtools.screenshots import browser

ROOT = Path(__file__).resolve().parents[2]
IMAGES = (
    ROOT / "docs" / "images"
    if os.environ.get("KPN_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "kpn_voip-screenshots"
)
INTEGRATION = ROOT / "custom_components" / "kpn_voip"
FAILURE_DIR = Path(tempfile.gettempdir()) / "kpn_voip-browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.peers,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no chromium on PATH: install Debian's chromium package "
        "(scripts/setup does, where Debian testing can install it)",
    ),
]


@pytest.fixture
def ha(tmp_path: Path, socket_enabled: None) -> Iterator[Develop]:
    """HA + stand-in as scripts/develop starts them, without the demo line."""
    dev = Develop(
        tmp_path / "config",
        ha_port=free_tcp_port(),
        sip_port=free_udp_port(),
        say=lambda text: print(text),
    )
    try:
        dev.start(add_line=False)
        yield dev
    finally:
        leftovers = dev.stop()
        assert leftovers == [], f"processes left behind: {leftovers}"


@pytest.fixture
def page(ha: Develop) -> Iterator[Any]:
    """A fresh headless Chromium page that can reach only HA on loopback."""
    assert CHROMIUM is not None
    with browser(CHROMIUM, {"width": 1280, "height": 800}) as page:
        yield page


def _shot(page: Any, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / name))


def _login(page: Any, base: str) -> None:
    page.goto(base)
    page.get_by_label("Username").fill(DEMO_USER)
    page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/(home|lovelace)/.*"))


def _api(ha: Develop) -> Api:
    api = Api(ha.url)
    api.login(DEMO_USER, DEMO_PASSWORD)
    return api


@pytest.mark.slow
def test_add_line_see_registered_and_call_in_logbook(ha: Develop, page: Any) -> None:
    try:
        _user_story(ha, page)
    except BaseException:
        # What the browser showed when it went wrong, for the failure report.
        FAILURE_DIR.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(FAILURE_DIR / "failure.png"))
        print(f"screenshot of the failure: {FAILURE_DIR / 'failure.png'}")
        raise


def _user_story(ha: Develop, p: Any) -> None:
    base = ha.url
    _login(p, base)

    # Settings -> Devices & services -> Add integration -> KPN VoIP
    p.goto(f"{base}/config/integrations/dashboard")
    p.get_by_role("button", name="Add integration").click()
    p.get_by_placeholder("Search for a brand name").fill("KPN VoIP")
    p.get_by_text("KPN VoIP", exact=True).last.wait_for()
    p.wait_for_timeout(300)  # the list animates while it filters
    _shot(p, "add_integration.png")
    p.get_by_text("KPN VoIP", exact=True).last.click()

    # The user step: what KPN's servicetool gives, plus the stand-in as proxy
    # (folded away under "Advanced settings").  HA's inputs carry the field
    # name; the labels the user reads are checked as text.
    p.get_by_text("KPN Vast Bellen line").wait_for()
    p.locator("input[name='number']").wait_for()
    for label in ("Phone number", "SIP user name", "SIP password", "Display name"):
        p.get_by_text(label, exact=False).first.wait_for(timeout=5_000)
    p.locator("input[name='number']").fill("020 123 4567")
    p.locator("input[name='username']").fill(DEMO_ACCOUNT.username.split("@")[0])
    p.locator("input[name='password']").fill(DEMO_ACCOUNT.password)
    p.locator("input[name='display_name']").fill(DEMO_LINE_NAME)
    p.wait_for_timeout(500)  # let the floating labels settle for the screenshot
    _shot(p, "config_flow.png")
    p.get_by_text("Advanced settings").click()
    p.locator("input[name='proxy_host']").fill(HOST)
    p.locator("ha-form-expandable ha-selector-number input").fill(str(ha.sip_port))
    p.get_by_role("button", name="Submit").click()

    # One test login against the stand-in (K8), then HA's "Name and assign"
    # step for the new device -> finish.
    p.get_by_text(re.compile("Name and assign|Created configuration|Success")).first.wait_for(
        timeout=60_000
    )
    p.get_by_role("button", name=re.compile("Finish|Skip", re.IGNORECASE)).first.click()

    # The device page shows line status "Registered".
    api = _api(ha)
    entity = ha.wait_line_status("registered", timeout=60)
    device_id = api.render(f"{{{{ device_id('{entity}') }}}}").strip()
    assert re.fullmatch(r"[0-9a-f]{32}", device_id), device_id
    p.goto(f"{base}/config/devices/device/{device_id}")
    p.get_by_text("Line status").filter(visible=True).first.wait_for()
    # The state is slotted text of the row (not an element of its own).
    p.locator("hui-generic-entity-row", has_text="Line status").filter(
        has_text="Registered"
    ).first.wait_for()
    _shot(p, "device.png")

    # A call comes in through the stand-in (scripts/call, as the README says).
    env = {**os.environ, "KPN_SIP_PORT": str(ha.sip_port)}
    call = subprocess.run(
        [str(ROOT / "scripts" / "call"), "+31612345678", "Jan", "--ring", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert call.returncode == 0, call.stdout + call.stderr
    event_entity = api.render(
        "{{ integration_entities('kpn_voip') | select('match', 'event\\.') | first }}"
    ).strip()
    state = api.state(event_entity)
    assert state is not None
    assert state["attributes"]["name"] == "Jan"

    # The logbook ("Activity") shows the call: the event and the last caller (K16).
    p.goto(f"{base}/logbook")
    p.get_by_text("0612345678").filter(visible=True).first.wait_for()
    # One entry per call event, the Call entity's, which the frontend words with the
    # integration's translation of its event type.  A page opened soon after the line
    # was set up may render without them (raw "incoming_call", "idle"; seen in 1 of 2
    # runs) and keep that: reloaded until they are there.
    for _ in range(5):
        if p.get_by_text("Incoming call").filter(visible=True).count():
            break
        p.wait_for_timeout(2_000)
        p.reload()
        p.get_by_text("0612345678").filter(visible=True).first.wait_for()
    p.get_by_text("Incoming call").filter(visible=True).first.wait_for()
    p.get_by_text("Missed call").filter(visible=True).first.wait_for()
    _shot(p, "logbook.png")

    # The README's dashboard (missed calls + the call history as a calendar list),
    # saved as the default dashboard with this line's entity ids (issue 12).
    slug = event_entity.removeprefix("event.").removesuffix("_call")
    views = _readme_dashboard().replace(".thuis_", f".{slug}_")
    p.evaluate(
        """async config => {
            const hass = document.querySelector('home-assistant').hass;
            try {
                await hass.callWS({type: 'lovelace/dashboards/create', url_path: 'kpn-phone',
                                   title: 'Phone', icon: 'mdi:phone', mode: 'storage',
                                   require_admin: false, show_in_sidebar: true});
                await hass.callWS({type: 'lovelace/config/save', url_path: 'kpn-phone', config});
            } catch (err) {
                throw new Error(JSON.stringify(err));
            }
        }""",
        yaml.safe_load(views),
    )
    p.goto(f"{base}/kpn-phone/0")
    p.get_by_text("Missed calls").filter(visible=True).first.wait_for()
    p.get_by_text("Missed call from Jan (0612345678)").filter(visible=True).first.wait_for()
    p.wait_for_timeout(500)  # the calendar lays itself out
    _shot(p, "dashboard.png")


def _readme_dashboard() -> str:
    """The README's dashboard YAML (the block with the call calendar)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    return next(block for block in blocks if "type: calendar" in block)
