"""The blueprints work as a user imports them: by their URL, through Home Assistant's UI API.

Settings -> Blueprints -> Import blueprint sends `blueprint/import` with the
file's GitHub URL (the README links each; `source_url` says the same): Home
Assistant fetches the raw file (answered here from the checkout, no network),
validates it and suggests a file name; `blueprint/save` stores it under
blueprints/automation/.  An automation made from the saved copy with example
inputs then sets up and does its job on a ringing call of the scripted line:
the caller notification notifies, the gate intercom answers and asks for the
PIN, the answering machine picks up after its time and greets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import patch
from urllib.parse import unquote

from homeassistant.const import EVENT_CALL_SERVICE
from homeassistant.core import Event, HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from homeassistant.util import yaml as yaml_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_mock_service,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.kpn_voip.kpn_line.protocol import (
    CallState,
    DtmfEvent,
    PlaybackEnd,
    PlaybackFinishedEvent,
    RecordingEnd,
    RecordingSavedEvent,
)
from custom_components.kpn_voip.sound import MEDIA_SOURCE_LOCAL, RECORDINGS_FOLDER

from .conftest import (
    ChirpProvider,
    FakeEngine,
    FakeEngineFactory,
    call_event,
    emit_until,
    phone_device,
    until,
)

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "blueprints" / "automation" / "kpn_voip"
EVENT_ENTITY = "event.thuis_call"
GITHUB = "https://github.com/"
RAW = "https://raw.githubusercontent.com/"


def _raw_url(source_url: str) -> str:
    """Where Home Assistant's importer fetches a GitHub file URL from."""
    assert source_url.startswith(GITHUB), source_url
    owner_repo, _, rest = source_url.removeprefix(GITHUB).partition("/blob/")
    return f"{RAW}{owner_repo}/{rest}"


def _inputs(name: str, phone: str) -> dict[str, Any]:
    """Example inputs, as a user fills in the form."""
    return {
        "notify_incoming_call": {"call_event": EVENT_ENTITY, "notify_device": phone},
        "gate_intercom_pin": {
            "call_event": EVENT_ENTITY,
            "pin": "4711",
            "open_action": [{"action": "test.open_gate"}],
        },
        "answering_machine": {
            "call_event": EVENT_ENTITY,
            "answer_after": 1,
            "notify_device": phone,
        },
    }[name]


@pytest.fixture
async def engine(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    speech: ChirpProvider,
    tmp_path: Path,
) -> FakeEngine:
    """The line "Thuis" on the scripted engine; Home Assistant's config folder in tmp_path
    (the imported blueprints are saved there)."""
    hass.config.config_dir = str(tmp_path)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    return fake_engine.last


async def _import(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    aioclient_mock: AiohttpClientMocker,
    name: str,
) -> str:
    """Import blueprint `name` by its URL and save it, as the UI does; its saved path."""
    text = (FOLDER / f"{name}.yaml").read_text(encoding="utf-8")
    url = yaml_util.parse_yaml(text.replace("!input", "input"))["blueprint"]["source_url"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"blueprints/automation/kpn_voip/{name}.yaml)" in readme
    aioclient_mock.get(_raw_url(url), text=text)
    assert await async_setup_component(hass, "automation", {})
    client = await hass_ws_client(hass)

    await client.send_json_auto_id({"type": "blueprint/import", "url": url})
    imported = await client.receive_json()
    assert imported["success"], imported
    result = imported["result"]
    assert result["validation_errors"] is None
    assert result["blueprint"]["metadata"]["source_url"] == url
    assert result["raw_data"] == text
    await client.send_json_auto_id(
        {
            "type": "blueprint/save",
            "domain": "automation",
            "path": result["suggested_filename"],
            "yaml": result["raw_data"],
            "source_url": url,
        }
    )
    saved = await client.receive_json()
    assert saved["success"], saved
    path = f"{result['suggested_filename']}.yaml"
    assert (Path(hass.config.path("blueprints", "automation")) / path).is_file()
    return path


async def _use(hass: HomeAssistant, name: str, path: str, inputs: dict[str, Any]) -> None:
    """An automation from the saved blueprint, as the automation editor saves it."""
    config = {"automation": [{"id": name, "use_blueprint": {"path": path, "input": inputs}}]}
    with patch("homeassistant.config.load_yaml_config_file", return_value=config):
        await hass.services.async_call("automation", "reload", blocking=True)
    await hass.async_block_till_done()
    automations = hass.states.async_all("automation")
    assert [state.state for state in automations] == ["on"], automations


@pytest.mark.parametrize("name", ["notify_incoming_call", "gate_intercom_pin", "answering_machine"])
async def test_import_by_url_then_use(
    hass: HomeAssistant,
    engine: FakeEngine,
    hass_ws_client: WebSocketGenerator,
    aioclient_mock: AiohttpClientMocker,
    phone_app: None,
    name: str,
) -> None:
    """Import by the README's URL, save, make an automation, ring: it acts."""
    path = await _import(hass, hass_ws_client, aioclient_mock, name)
    opened = async_mock_service(hass, "test", "open_gate")
    notified = async_mock_service(hass, "notify", "mobile_app_phone")
    await _use(hass, name, path, _inputs(name, phone_device(hass)))

    engine.emit(call_event(CallState.RINGING))
    if name == "notify_incoming_call":
        await until(lambda: bool(notified))
        assert notified[0].data["title"] == "Incoming call"
        assert notified[0].data["message"] == "Jan - 0612345678"
    else:  # the gate at once, the answering machine after its second
        await until(lambda: any(c[0] == "play" for c in engine.sound))
        assert ("answer", "c1") in engine.sound
        assert not opened
    if name == "gate_intercom_pin":
        # The PIN in one burst (one dialDtmf "4711" at the far end): all four dtmf
        # events in the same loop turn; the gate opens all the same.
        for digit in "4711":
            engine.emit(DtmfEvent(call_id="c1", digit=digit))
        await until(lambda: bool(opened))
        await until(lambda: sum(c[0] == "play" for c in engine.sound) == 2)
        assert len(opened) == 1


async def test_answering_machine_notification(
    hass: HomeAssistant,
    engine: FakeEngine,
    hass_ws_client: WebSocketGenerator,
    aioclient_mock: AiohttpClientMocker,
    phone_app: None,
    media_dir: Path,
) -> None:
    """The imported answering machine to its end: the notification gives the message's
    length (not the call's, whose call_ended the hang-up fires first) and opens the
    media browser on the recordings' folder."""
    path = await _import(hass, hass_ws_client, aioclient_mock, "answering_machine")
    notified = async_mock_service(hass, "notify", "mobile_app_phone")
    await _use(hass, "machine", path, _inputs("answering_machine", phone_device(hass)))
    hangup = engine.hangup

    async def hangup_and_end(call_id: str | None = None) -> int:
        ended = await hangup(call_id)  # as the engine does: the call ends at once
        engine.emit(call_event(CallState.ENDED, call_id=call_id or "c1", duration=31.0))
        return ended

    engine.hangup = hangup_and_end  # type: ignore[method-assign]
    engine.emit(call_event(CallState.RINGING))
    await until(lambda: any(c[0] == "play" for c in engine.sound))
    greeting = next(c for c in engine.sound if c[0] == "play")[2]
    finished = PlaybackFinishedEvent(call_id="c1", file=greeting, reason=PlaybackEnd.FINISHED)
    await emit_until(engine, finished, lambda: any(c[0] == "record" for c in engine.sound))
    file = next(c for c in engine.sound if c[0] == "record")[2]
    saved = RecordingSavedEvent(call_id="c1", file=file, duration=7.4, reason=RecordingEnd.SILENCE)
    await emit_until(engine, saved, lambda: bool(notified))
    assert engine.hangups == ["c1"]
    data = notified[0].data
    assert data["message"] == "7 s, in the media browser: kpn_voip"
    link = data["data"]["url"]
    assert data["data"]["clickAction"] == link
    assert link.startswith("/media-browser/browser/")
    levels = [unquote(level).split(",", 1) for level in link.split("/")[3:]]
    assert levels[0] == ["app", MEDIA_SOURCE_LOCAL]
    assert levels[-1] == ["", f"{MEDIA_SOURCE_LOCAL}/local/{RECORDINGS_FOLDER}"]
    assert Path(file).parent == media_dir / RECORDINGS_FOLDER
    # The same link as the README's answering machine, which scripts/screenshots
    # follows in the real frontend (tests/browser/test_screenshots.py).
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"]({link})" in readme


async def _intercom(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    aioclient_mock: AiohttpClientMocker,
) -> Callable[[], int]:
    """The gate intercom imported by its URL and in use (PIN 4711, 5 s to key it in);
    how many of its runs are under way (the automation's `current`)."""
    path = await _import(hass, hass_ws_client, aioclient_mock, "gate_intercom_pin")
    inputs = _inputs("gate_intercom_pin", phone_device(hass)) | {"timeout": 5}
    await _use(hass, "gate_intercom_pin", path, inputs)
    entity_id = hass.states.async_all("automation")[0].entity_id
    return lambda: int(hass.states.get(entity_id).attributes.get("current", 0))


def _said_after(calls: list[Event], start: int) -> list[dict[str, Any]]:
    """The line's actions (say, answer, ...) called after the first `start` service calls."""
    return [dict(c.data) for c in calls[start:] if c.data["domain"] == "kpn_voip"]


async def test_gate_pin_during_the_greeting_nothing_on_the_ended_call(
    hass: HomeAssistant,
    engine: FakeEngine,
    hass_ws_client: WebSocketGenerator,
    aioclient_mock: AiohttpClientMocker,
) -> None:
    """The caller keys the PIN while the greeting is still being said: the gate opens, the
    welcome is said, the line hangs up after it - and the run that said the greeting,
    finished only then, says nothing more (its wait saw the PIN and the end; it used to
    time out and say the refusal on the ended call, failing silently)."""
    running = await _intercom(hass, hass_ws_client, aioclient_mock)
    opened = async_mock_service(hass, "test", "open_gate")
    calls = async_capture_events(hass, EVENT_CALL_SERVICE)
    greeting_said = asyncio.Event()
    play = engine.play

    async def slow_greeting(call_id: str, file: str, **kwargs: Any) -> None:
        first = not any(c[0] == "play" for c in engine.sound)
        await play(call_id, file, **kwargs)
        if first:  # the greeting (its speech still being made, say)
            await greeting_said.wait()

    engine.play = slow_greeting  # type: ignore[method-assign]
    engine.emit(call_event(CallState.RINGING))
    await until(lambda: any(c[0] == "play" for c in engine.sound))
    for digit in "4711":
        engine.emit(DtmfEvent(call_id="c1", digit=digit))
    await until(lambda: sum(c[0] == "play" for c in engine.sound) == 2)
    assert len(opened) == 1
    assert [c[0] for c in engine.sound].count("play") == 2
    assert engine.sound[-1][4] is True  # the welcome, then the line hangs up
    engine.emit(call_event(CallState.ENDED))  # as the engine does after the welcome
    ended = len(calls)
    greeting_said.set()
    await until(lambda: running() == 0)
    assert _said_after(calls, ended) == []


async def test_gate_caller_gone_while_the_gate_opens(
    hass: HomeAssistant,
    engine: FakeEngine,
    hass_ws_client: WebSocketGenerator,
    aioclient_mock: AiohttpClientMocker,
) -> None:
    """The right PIN, then the caller hangs up while the open action runs: the gate still
    opens (the PIN was right), but no welcome is said on the ended call."""
    running = await _intercom(hass, hass_ws_client, aioclient_mock)
    calls = async_capture_events(hass, EVENT_CALL_SERVICE)
    opened: list[ServiceCall] = []
    ended: list[int] = []

    async def open_gate(call: ServiceCall) -> None:
        opened.append(call)
        engine.emit(call_event(CallState.ENDED))  # the caller hangs up meanwhile
        ended.append(len(calls))
        await asyncio.sleep(0.05)  # a gate takes its time

    hass.services.async_register("test", "open_gate", open_gate)
    engine.emit(call_event(CallState.RINGING))
    await until(lambda: any(c[0] == "play" for c in engine.sound))
    for digit in "4711":
        engine.emit(DtmfEvent(call_id="c1", digit=digit))
    await until(lambda: bool(opened))
    await until(lambda: running() == 0)
    assert len(opened) == 1
    assert _said_after(calls, ended[0]) == []
    assert [c[0] for c in engine.sound].count("play") == 1  # the greeting only
