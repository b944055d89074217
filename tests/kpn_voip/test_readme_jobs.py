"""The README's YAML examples are real: Home Assistant accepts them and they work (issue 11).

Every ```yaml block of README.md is one of: an automation (validated by Home
Assistant's automation config validation with the integration loaded), a single
action (script validation), the dashboard (saved and photographed by the
browser test, tests/browser/test_ui.py) or the logger settings (the logger's
schema).  A new kind of block fails here until it is covered.

The `kpn_voip.*` actions the examples use exist and take the fields written
(services.yaml, and each service's own schema when it runs); the event types
the templates compare with are the Call entity's.  Then the three jobs of the
README ("Three jobs to copy and paste") run as written, against the scripted
engine with the offline TTS engine and the ffmpeg stand-in of conftest.py:
the alarm call, the reminder said three times, the gate intercom and the
answering machine, asserting what the line was told to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
import re
from typing import Any
from urllib.parse import unquote

from homeassistant.components import logger, persistent_notification
from homeassistant.components.automation.config import async_validate_config_item
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.script import async_validate_actions_config
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util, yaml as yaml_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    async_mock_service,
)
import yaml

from custom_components.kpn_voip.const import DOMAIN
from custom_components.kpn_voip.event import DESCRIPTION
from custom_components.kpn_voip.kpn_line.protocol import (
    CallState,
    Direction,
    DtmfEvent,
    PlaybackEnd,
    PlaybackFinishedEvent,
    RecordingEnd,
    RecordingSavedEvent,
)
from custom_components.kpn_voip.sound import MEDIA_SOURCE_LOCAL, RECORDINGS_FOLDER

from .conftest import (
    INTEGRATION,
    ChirpProvider,
    FakeEngine,
    FakeEngineFactory,
    call_event,
    emit_until,
    until,
)

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
EVENT_ENTITY = "event.thuis_call"  # the README's line is named "Thuis", as the test entry
JOBS = {
    "alarm": "Alarm - call my mobile",
    "reminder": "Reminder - medicine",
    "gate": "Gate - answer and open on 1",
    "machine": "Answering machine",
}


def readme_blocks() -> list[str]:
    """Every ```yaml block of the README, in order."""
    text = README.read_text(encoding="utf-8")
    return re.findall(r"^```yaml\n(.*?)^```", text, re.DOTALL | re.MULTILINE)


def _parsed(block: str) -> dict[str, Any]:
    config = yaml_util.parse_yaml(block)
    assert isinstance(config, dict), block[:80]
    return config


def _kind(config: dict[str, Any]) -> str:
    if "triggers" in config:
        return "automation"
    if "action" in config:
        return "action"
    if "views" in config:
        return "dashboard"
    if set(config) == {"logger"}:
        return "logger"
    return "unknown"


def readme_automations() -> dict[str, dict[str, Any]]:
    """The README's automations by alias."""
    configs = [_parsed(block) for block in readme_blocks()]
    return {c["alias"]: c for c in configs if _kind(c) == "automation"}


def _actions(node: Any) -> Iterator[dict[str, Any]]:
    """Every action step (a mapping with `action:`) anywhere in `node`."""
    if isinstance(node, dict):
        if isinstance(node.get("action"), str):
            yield node
        for value in node.values():
            yield from _actions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _actions(item)


@pytest.fixture
async def loaded(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    speech: ChirpProvider,
) -> FakeEngine:
    """The README's line "Thuis" on the scripted engine, with TTS, media and notify."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(EVENT_ENTITY) is not None
    return fake_engine.last


# -- every block: valid for Home Assistant ---------------------------------------------


def test_every_block_is_covered() -> None:
    """Each YAML block is a kind this module (or the browser test) validates."""
    kinds = [_kind(_parsed(block)) for block in readme_blocks()]
    assert "unknown" not in kinds, kinds
    assert kinds.count("dashboard") == 1  # tests/browser/test_ui.py saves it
    assert set(readme_automations()) >= set(JOBS.values())


async def test_blocks_validate(hass: HomeAssistant, loaded: FakeEngine) -> None:
    """Automations, actions and the logger settings pass Home Assistant's validation."""
    for block in readme_blocks():
        config = _parsed(block)
        match _kind(config):
            case "automation":
                validated = await async_validate_config_item(hass, config["alias"], config)
                assert validated is not None
                assert validated.validation_error is None, (
                    config["alias"],
                    validated.validation_error,
                )
            case "action":
                await async_validate_actions_config(hass, cv.SCRIPT_SCHEMA([config]))
            case "logger":
                logger.CONFIG_SCHEMA(config)


async def test_actions_exist_with_these_fields(hass: HomeAssistant, loaded: FakeEngine) -> None:
    """Each kpn_voip action of the examples is registered and takes the fields used."""
    fields = yaml.safe_load((INTEGRATION / "services.yaml").read_text())
    used = [step for block in readme_blocks() for step in _actions(_parsed(block))]
    ours = [step for step in used if step["action"].startswith(f"{DOMAIN}.")]
    assert {step["action"] for step in ours} >= {
        "kpn_voip.dial",
        "kpn_voip.answer",
        "kpn_voip.say",
        "kpn_voip.record",
        "kpn_voip.hangup",
    }
    for step in ours:
        service = step["action"].removeprefix(f"{DOMAIN}.")
        assert hass.services.has_service(DOMAIN, service), step["action"]
        assert set(step.get("data", {})) <= set(fields[service]["fields"]), step


def test_event_types_exist() -> None:
    """Every event type the README's templates and triggers compare with is fired."""
    text = "\n".join(readme_blocks())
    named: set[str] = set()
    for match in re.finditer(r"event_type\W{0,3}\s*(?:==|in)\s*(\[[^\]]*\]|'[^']*')", text):
        named.update(re.findall(r"'(\w+)'", match[1]))
    assert named >= {"incoming_call", "answered", "dtmf", "playback_finished", "recording_saved"}
    assert named <= set(DESCRIPTION.event_types or ())


# -- the three jobs, run -----------------------------------------------------------------


async def _start(hass: HomeAssistant, name: str) -> None:
    config = readme_automations()[JOBS[name]]
    assert await async_setup_component(hass, "automation", {"automation": [config]})
    await hass.async_block_till_done()


def _plays(engine: FakeEngine) -> list[tuple[Any, ...]]:
    return [command for command in engine.sound if command[0] == "play"]


def _sound_tasks() -> list[asyncio.Task[Any]]:
    """The tasks that make and play the sound of a dialled call (coordinator)."""
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("kpn_voip sound of call")]


def _answered_out(call_id: str) -> Any:
    return call_event(CallState.ANSWERED, call_id=call_id, direction=Direction.OUTGOING)


async def test_alarm_call(hass: HomeAssistant, loaded: FakeEngine, speech: ChirpProvider) -> None:
    """Alarm triggered -> the mobile is dialled (60 s to answer); answered -> the
    message is said once, then the line hangs up."""
    hass.states.async_set("alarm_control_panel.home", "armed_away")
    await _start(hass, "alarm")
    hass.states.async_set("alarm_control_panel.home", "triggered")
    await until(lambda: bool(loaded.dialled))
    assert loaded.dialled == [("06 12345678", False, 60)]
    await until(lambda: bool(speech.spoken))  # said while the call rings
    assert speech.spoken[-1][0] == "The alarm at home went off."
    assert not _plays(loaded)  # nothing plays before the answer
    loaded.emit(_answered_out("out1"))
    await until(lambda: bool(_plays(loaded)))
    (_, call_id, _, loops, then_hangup) = _plays(loaded)[0]
    assert (call_id, loops, then_hangup) == ("out1", 1, True)


@pytest.mark.parametrize("answered", [True, False], ids=["answered", "not_answered"])
async def test_reminder_said_three_times(
    hass: HomeAssistant, loaded: FakeEngine, speech: ChirpProvider, answered: bool
) -> None:
    """Dial with the message and loops 3; answered -> it is played three times and the
    line hangs up after it; a call that ends unanswered plays nothing."""
    await _start(hass, "reminder")
    try:
        await _run_reminder(hass, loaded, speech, answered)
    finally:  # the daily time trigger's timer
        await hass.services.async_call(
            "automation", "turn_off", {"entity_id": "automation.reminder_medicine"}, blocking=True
        )


async def _run_reminder(
    hass: HomeAssistant, loaded: FakeEngine, speech: ChirpProvider, answered: bool
) -> None:
    await hass.services.async_call(
        "automation", "trigger", {"entity_id": "automation.reminder_medicine"}
    )
    await until(lambda: bool(loaded.dialled))
    assert loaded.dialled == [("06 12345678", False, 120)]
    await until(lambda: bool(speech.spoken))  # said while the call rings
    assert speech.spoken[-1][0] == "Good morning. Time for your medicine."
    assert not _plays(loaded)  # nothing plays before the answer
    if not answered:
        loaded.emit(
            call_event(CallState.ENDED, call_id="out1", direction=Direction.OUTGOING, duration=0)
        )
        await until(lambda: hass.states.get(EVENT_ENTITY).attributes["event_type"] == "call_ended")
        # the message, made while the call rang, is finished and dropped (not cut short:
        # Home Assistant's TTS request is shared by every request of the same message)
        await until(lambda: not _sound_tasks())
        await hass.async_block_till_done()
        assert not _plays(loaded)
        return
    await emit_until(loaded, _answered_out("out1"), lambda: bool(_plays(loaded)))
    (_, call_id, _, loops, then_hangup) = _plays(loaded)[0]
    assert (call_id, loops, then_hangup) == ("out1", 3, True)


async def test_gate_intercom(
    hass: HomeAssistant, loaded: FakeEngine, speech: ChirpProvider
) -> None:
    """Ring -> answered and asked; a 2 does nothing; a 1 opens the gate and says so,
    hanging up after it."""
    opened = async_mock_service(hass, "cover", "open_cover")
    await _start(hass, "gate")
    loaded.emit(call_event(CallState.RINGING))
    await until(lambda: len(_plays(loaded)) == 1)
    assert [c for c in loaded.sound if c[0] == "answer"] == [("answer", "c1")]
    assert speech.spoken[-1][0] == "Press 1 to open the gate."
    loaded.emit(DtmfEvent(call_id="c1", digit="2"))
    await asyncio.sleep(0.3)
    assert not opened
    assert len(_plays(loaded)) == 1
    loaded.emit(DtmfEvent(call_id="c1", digit="1"))
    await until(lambda: len(_plays(loaded)) == 2)
    assert [call.data["entity_id"] for call in opened] == [["cover.gate"]]
    assert speech.spoken[-1][0] == "The gate opens."
    assert _plays(loaded)[1][1] == "c1"
    assert _plays(loaded)[1][4] is True  # hang up after it


async def test_answering_machine(
    hass: HomeAssistant, loaded: FakeEngine, speech: ChirpProvider, media_dir: Path
) -> None:
    """A call answered elsewhere is left alone; one nobody answers for 20 s is picked up,
    greeted, recorded into the media folder until 5 s of silence, hung up, and a
    notification links to the media browser's kpn_voip folder."""
    hangup = loaded.hangup

    async def hangup_and_end(call_id: str | None = None) -> int:
        # As the engine does: the hang-up ends the call at once (call_ended, with the
        # call's duration, replaces the recording's event before the notification).
        ended = await hangup(call_id)
        loaded.emit(call_event(CallState.ENDED, call_id=call_id or "c1", duration=31.0))
        return ended

    loaded.hangup = hangup_and_end  # type: ignore[method-assign]
    await _start(hass, "machine")
    loaded.emit(call_event(CallState.RINGING, call_id="c0"))
    await asyncio.sleep(0.1)
    loaded.emit(call_event(CallState.ANSWERED, call_id="c0"))
    await asyncio.sleep(0.1)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=21))
    await asyncio.sleep(0.2)
    assert not loaded.sound

    loaded.emit(call_event(CallState.RINGING))
    await asyncio.sleep(0.1)
    assert not loaded.sound  # not before 20 s
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=21))
    await until(lambda: len(_plays(loaded)) == 1)
    assert [c for c in loaded.sound if c[0] == "answer"] == [("answer", "c1")]
    assert speech.spoken[-1][0] == "Please leave a message after the tone."
    greeting = _plays(loaded)[0][2]
    finished = PlaybackFinishedEvent(call_id="c1", file=greeting, reason=PlaybackEnd.FINISHED)
    await emit_until(loaded, finished, lambda: any(c[0] == "record" for c in loaded.sound))
    (_, call_id, file, max_seconds, silence_seconds) = next(
        c for c in loaded.sound if c[0] == "record"
    )
    assert (call_id, max_seconds, silence_seconds) == ("c1", 120, 5)
    assert Path(file).parent == media_dir / "kpn_voip"
    assert "0612345678" in Path(file).name
    saved = RecordingSavedEvent(call_id="c1", file=file, duration=7.4, reason=RecordingEnd.SILENCE)
    await emit_until(
        loaded,
        saved,
        lambda: bool(persistent_notification._async_get_or_create_notifications(hass)),
    )
    assert loaded.hangups == ["c1"]
    (notification,) = persistent_notification._async_get_or_create_notifications(hass).values()
    assert notification["title"] == "New message from 0612345678"
    assert notification["message"].startswith("7 s:")
    # The link opens the media browser in the recordings' folder: each path segment
    # after the panel is one level, "<type>,<media content id>", URL-encoded.
    link = re.search(r"\]\(/media-browser/browser/([^)]+)\)", notification["message"])
    assert link is not None
    levels = [unquote(level).split(",", 1) for level in link[1].split("/")]
    assert levels[-1][1] == f"{MEDIA_SOURCE_LOCAL}/local/{RECORDINGS_FOLDER}"
    assert Path(file).parent.name == RECORDINGS_FOLDER
