"""The README's automation and the blueprint fire on the first call after set-up (issue 12).

Both trigger on the call event entity's state.  A new entity is `unknown`
until its first event; after a restart it comes back from `unavailable` with
its last event.  So `unknown` -> event must fire, `unavailable` -> event must
not (that was the papercut: `not_from: [unavailable, unknown]` swallowed the
first call).
"""

from __future__ import annotations

from pathlib import Path
import re
from typing import Any

from homeassistant.components.automation import DOMAIN as AUTOMATION_DOMAIN
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.setup import async_setup_component
from homeassistant.util import yaml as yaml_util
import pytest

ROOT = Path(__file__).resolve().parents[1]
BLUEPRINT = ROOT / "blueprints" / "automation" / "kpn_voip" / "notify_incoming_call.yaml"
ENTITY = "event.thuis_call"
RINGING = {"event_type": "incoming_call", "number": "+31612345678", "anonymous": False}


def _readme_automation() -> dict[str, Any]:
    """The README's first automation example."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = next(
        match
        for match in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
        if "event.thuis_call" in match and "triggers:" in match
    )
    config = yaml_util.parse_yaml(block)
    assert isinstance(config, dict)
    return config


def _blueprint_automation() -> dict[str, Any]:
    """The blueprint as an automation: its call_event filled in, the other inputs empty."""
    text = BLUEPRINT.read_text(encoding="utf-8").replace("!input call_event", ENTITY)
    text = re.sub(r"!input \w+", '""', text)
    config = yaml_util.parse_yaml(text)
    assert isinstance(config, dict)
    config.pop("blueprint")
    return config


@pytest.mark.parametrize(
    "automation", [_readme_automation(), _blueprint_automation()], ids=["readme", "blueprint"]
)
async def test_first_call_after_setup_fires(
    hass: HomeAssistant, automation: dict[str, Any]
) -> None:
    """unknown -> event fires; unavailable -> event (a restart) does not; event -> event fires."""
    fired: list[Event] = []

    @callback
    def _fired(event: Event) -> None:
        fired.append(event)

    hass.bus.async_listen("kpn_test_fired", _fired)
    hass.states.async_set(ENTITY, STATE_UNKNOWN)
    assert await async_setup_component(
        hass,
        AUTOMATION_DOMAIN,
        # Triggers, conditions and variables as written; only the actions are ours.
        {AUTOMATION_DOMAIN: {**automation, "actions": [{"event": "kpn_test_fired"}]}},
    )
    await hass.async_block_till_done()

    hass.states.async_set(ENTITY, "2026-11-30T14:00:00.000+00:00", RINGING)
    await hass.async_block_till_done()
    assert len(fired) == 1, "the first call after set-up did not fire"

    hass.states.async_set(ENTITY, STATE_UNAVAILABLE)
    hass.states.async_set(ENTITY, "2026-11-30T14:00:00.000+00:00", RINGING)
    await hass.async_block_till_done()
    assert len(fired) == 1, "a restart fired as if it were a call"

    hass.states.async_set(ENTITY, "2026-11-30T14:05:00.000+00:00", RINGING)
    await hass.async_block_till_done()
    assert len(fired) == 2
