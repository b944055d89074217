"""The blueprints "gate intercom with a PIN" and "answering machine" (issue 11).

They load with Home Assistant's blueprint schema as imported (source_url points
at the file), substitute to valid automations, and run: against the scripted
engine, with the offline TTS engine and the ffmpeg stand-in of test_sound.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
import re
from typing import Any
import wave

from homeassistant.components.automation.config import async_validate_config_item
from homeassistant.components.blueprint import models as blueprint_models
from homeassistant.components.blueprint.schemas import BLUEPRINT_SCHEMA
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import selector
from homeassistant.setup import async_setup_component
from homeassistant.util import yaml as yaml_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_mock_service

from custom_components.kpn_voip.kpn_line.protocol import (
    CallState,
    DtmfEvent,
    PlaybackEnd,
    PlaybackFinishedEvent,
    RecordingEnd,
    RecordingSavedEvent,
)

from .conftest import (
    ChirpProvider,
    FakeEngine,
    FakeEngineFactory,
    call_event,
    emit_until,
    open_wav,
    phone_device,
    setup_entry,
    until,
)

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "blueprints" / "automation" / "kpn_voip"
INTERCOM = FOLDER / "gate_intercom_pin.yaml"
MACHINE = FOLDER / "answering_machine.yaml"
EVENT_ENTITY = "event.thuis_call"


def _blueprint(path: Path) -> blueprint_models.Blueprint:
    data = yaml_util.load_yaml_dict(str(path))
    return blueprint_models.Blueprint(
        data, expected_domain="automation", path=path.name, schema=BLUEPRINT_SCHEMA
    )


@pytest.mark.parametrize("path", [INTERCOM, MACHINE], ids=lambda p: p.stem)
def test_blueprint_schema(path: Path) -> None:
    """Valid as imported: Home Assistant's schema, selectors, the URL of this very file."""
    blueprint = _blueprint(path)
    assert blueprint.domain == "automation"
    assert blueprint.metadata["source_url"].endswith("/".join(path.relative_to(ROOT).parts))
    for name, spec in blueprint.inputs.items():
        selector.validate_selector(spec["selector"])
        assert spec.get("name"), name


def _automation(path: Path, inputs: dict[str, Any]) -> dict[str, Any]:
    blueprint = _blueprint(path)
    filled = blueprint_models.BlueprintInputs(
        blueprint, {"use_blueprint": {"path": path.name, "input": inputs}}
    )
    filled.validate()
    config: dict[str, Any] = filled.async_substitute()
    config.pop("blueprint", None)
    return config


async def _start(hass: HomeAssistant, config: dict[str, Any]) -> None:
    validated = await async_validate_config_item(hass, "kpn_sound", config)
    assert validated is not None
    assert validated.validation_error is None, validated.validation_error
    assert await async_setup_component(hass, "automation", {"automation": [config]})
    await hass.async_block_till_done()


def _sound(engine: FakeEngine, kind: str) -> list[tuple[Any, ...]]:
    return [c for c in engine.sound if c[0] == kind]


@pytest.fixture
async def engine(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> FakeEngine:
    """The line on the scripted engine, on the real clock (the blueprints' waits run)."""
    await setup_entry(hass, mock_config_entry)
    return fake_engine.last


@pytest.mark.parametrize(
    ("keyed", "opens", "gap"),
    [
        ("0471", True, 0.05),
        ("0472", False, 0.05),
        ("9#", False, 0.05),
        # A burst (one dialDtmf "0471" at the far end): the digits 0-2 ms apart, as
        # Home Assistant got them; no digit may be lost while a run is busy.
        ("0471", True, 0.0),
        ("0471", True, 0.002),
        ("0472", False, 0.0),
    ],
    ids=["pin", "wrong", "hash", "burst_0ms", "burst_2ms", "burst_wrong"],
)
async def test_gate_intercom(
    hass: HomeAssistant,
    engine: FakeEngine,
    speech: ChirpProvider,
    keyed: str,
    opens: bool,
    gap: float,
) -> None:
    """Ring -> answered, greeting said; the right PIN (with its leading 0) runs the
    action and says the welcome, anything else the refusal; then the line hangs up.
    Keyed slowly or in a burst alike: each dtmf event carries the call's digits so far."""
    opened = async_mock_service(hass, "test", "open_gate")
    await _start(
        hass,
        _automation(
            INTERCOM,
            {
                "call_event": EVENT_ENTITY,
                "pin": "0471",
                "open_action": [{"action": "test.open_gate"}],
            },
        ),
    )
    engine.emit(call_event(CallState.RINGING))
    await until(lambda: len(_sound(engine, "play")) == 1)
    assert _sound(engine, "answer") == [("answer", "c1")]
    assert speech.spoken[-1][0] == "Hello. Please key in your code."
    await asyncio.sleep(0.05)
    for digit in keyed:
        if gap:
            await asyncio.sleep(gap)
        engine.emit(DtmfEvent(call_id="c1", digit=digit))
    await until(lambda: len(_sound(engine, "play")) == 2)
    await asyncio.sleep(0.1)  # nothing more is said (no second verdict)
    assert len(_sound(engine, "play")) == 2
    assert len(opened) == (1 if opens else 0)
    assert hass.states.get(EVENT_ENTITY).attributes["digits"] == keyed
    said = speech.spoken[-1][0]
    assert said == ("Welcome, the gate opens." if opens else "That code is not right. Goodbye.")
    assert _sound(engine, "play")[-1][4] is True  # hang up after it


async def test_gate_intercom_no_pin_in_time(
    hass: HomeAssistant, engine: FakeEngine, speech: ChirpProvider
) -> None:
    """Too few digits within the time: the refusal is said and the line hangs up after
    it; the action never runs."""
    opened = async_mock_service(hass, "test", "open_gate")
    config = _automation(
        INTERCOM,
        {
            "call_event": EVENT_ENTITY,
            "pin": "0471",
            "open_action": [{"action": "test.open_gate"}],
            "timeout": 5,
        },
    )
    await _start(hass, config)
    engine.emit(call_event(CallState.RINGING))
    await until(lambda: len(_sound(engine, "play")) == 1)
    engine.emit(DtmfEvent(call_id="c1", digit="0"))
    engine.emit(DtmfEvent(call_id="c1", digit="4"))
    await asyncio.sleep(4)
    assert len(_sound(engine, "play")) == 1  # still waiting for the rest
    await until(lambda: len(_sound(engine, "play")) == 2, seconds=5)
    assert speech.spoken[-1][0] == "That code is not right. Goodbye."
    assert _sound(engine, "play")[-1][4] is True  # hang up after it
    assert not opened


async def _answering_machine(hass: HomeAssistant, answer_after: int) -> list[ServiceCall]:
    """The answering machine blueprint as an automation; the notifications it sends."""
    notified = async_mock_service(hass, "notify", "mobile_app_phone")
    inputs = {
        "call_event": EVENT_ENTITY,
        "answer_after": answer_after,
        "notify_device": phone_device(hass),
    }
    await _start(hass, _automation(MACHINE, inputs))
    return notified


async def _greeted_and_recording(engine: FakeEngine) -> tuple[Any, ...]:
    """Call c1 rings, is picked up and greeted; the greeting ends: the record command."""
    engine.emit(call_event(CallState.RINGING))
    await until(lambda: len(_sound(engine, "play")) == 1)
    (_, _, greeting, _, _) = _sound(engine, "play")[0]
    finished = PlaybackFinishedEvent(call_id="c1", file=greeting, reason=PlaybackEnd.FINISHED)
    await emit_until(engine, finished, lambda: bool(_sound(engine, "record")))
    return _sound(engine, "record")[0]


async def test_answering_machine(
    hass: HomeAssistant,
    engine: FakeEngine,
    speech: ChirpProvider,
    media_dir: Path,
    phone_app: None,
) -> None:
    """Not answered within the time: picked up, greeting, recording into the media folder,
    notification with the caller; an answered call is left alone."""
    notified = await _answering_machine(hass, answer_after=1)
    # a call someone answers within the time is left alone
    engine.emit(call_event(CallState.RINGING, call_id="c0"))
    await asyncio.sleep(0.1)
    engine.emit(call_event(CallState.ANSWERED, call_id="c0"))
    await asyncio.sleep(1.5)
    assert not _sound(engine, "answer")
    (_, _, file, max_seconds, silence_seconds) = await _greeted_and_recording(engine)
    assert _sound(engine, "answer") == [("answer", "c1")]
    assert (max_seconds, silence_seconds) == (120, 5)
    assert Path(file).parent == media_dir / "kpn_voip"
    saved = RecordingSavedEvent(call_id="c1", file=file, duration=7.4, reason=RecordingEnd.SILENCE)
    await emit_until(engine, saved, lambda: bool(notified))
    assert engine.hangups == ["c1"]
    assert notified[0].data["title"] == "New message from Jan - 0612345678"
    assert notified[0].data["message"].startswith("7 s")


async def test_answering_machine_notifies_of_a_message_cut_off(
    hass: HomeAssistant,
    engine: FakeEngine,
    speech: ChirpProvider,
    media_dir: Path,
    phone_app: None,
) -> None:
    """The engine dies (SIGKILL, a crash) while the caller speaks: the automation still
    goes on to the notification, which gives the length of what was kept and says the
    message was cut off; the recording plays (its header completed)."""
    notified = await _answering_machine(hass, answer_after=0)
    (_, _, file, _, _) = await _greeted_and_recording(engine)
    open_wav(Path(file), 25600)  # 3.2 s of the caller reached the file
    engine.die()
    await until(lambda: bool(notified))
    assert notified[0].data["title"] == "New message from Jan - 0612345678"
    message = notified[0].data["message"]
    assert message.startswith("3 s (cut off: the line stopped during the message), in the media")
    with wave.open(file, "rb") as wav:
        assert wav.getnframes() == 25600


def _readme_sound_examples() -> list[dict[str, Any]]:
    """The README's automation examples that use the sound actions."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    configs = [yaml_util.parse_yaml(b) for b in blocks if "kpn_voip." in b and "triggers:" in b]
    return [c for c in configs if isinstance(c, dict)]


async def test_readme_sound_examples_are_valid_automations(hass: HomeAssistant) -> None:
    """The three jobs of the README (alarm call, gate, answering machine) validate."""
    examples = _readme_sound_examples()
    assert {e["alias"] for e in examples} >= {
        "Alarm - call my mobile",
        "Gate - answer and open on 1",
        "Answering machine",
    }
    for config in examples:
        validated = await async_validate_config_item(hass, config["alias"], config)
        assert validated is not None
        assert validated.validation_error is None, (config["alias"], validated.validation_error)
