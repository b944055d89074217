"""Nothing is lost when the engine goes mid-call: a playback ends with playback_finished,
a recording's file is completed and saved with recording_saved (Home Assistant knows what
was on; the engine that died never tells).

The engine is the scripted FakeEngine; the recording's file is written here as
pjmedia's WAV writer leaves it when its process is killed (RIFF and data sizes 0).
test_e2e_recording.py does the same with the real engine, killed by SIGKILL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
import wave

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kpn_voip.const import DOMAIN
from custom_components.kpn_voip.kpn_line.protocol import (
    CallState,
    PlaybackEnd,
    PlaybackFinishedEvent,
    RecordingEnd,
    RecordingSavedEvent,
)
from kpn_devtools.sound import write_wav

from .conftest import (
    ChirpProvider,
    FakeEngineFactory,
    Line,
    call_event,
    open_wav,
    setup_entry,
)

EVENT_ENTITY = "event.thuis_call"
RATE = 8000  # K14: the engine records 8 kHz mono 16-bit


@pytest.fixture
def fired(hass: HomeAssistant) -> list[dict[str, Any]]:
    """The call event entity's events in order (their attributes)."""
    events: list[dict[str, Any]] = []

    @callback
    def remember(event: Event) -> None:
        new, old = event.data["new_state"], event.data["old_state"]
        if event.data["entity_id"] != EVENT_ENTITY or new is None:
            return
        if new.attributes.get("event_type") and (old is None or old.state != new.state):
            events.append(dict(new.attributes))

    hass.bus.async_listen(EVENT_STATE_CHANGED, remember)
    return events


async def _answered_and_recording(line: Line, speech: ChirpProvider) -> tuple[str, str, str]:
    """Call c1 answered, a greeting playing into it and its message being recorded:
    (the recording's file, its media content id, the playing file)."""
    hass = line.hass
    await line.emit(call_event(CallState.RINGING), call_event(CallState.ANSWERED))
    await hass.services.async_call(
        DOMAIN, "say", {"call_id": "c1", "message": "Leave a message"}, blocking=True
    )
    response = await hass.services.async_call(
        DOMAIN, "record", {"call_id": "c1"}, blocking=True, return_response=True
    )
    assert response is not None
    playing = next(c[2] for c in line.engine.sound if c[0] == "play")
    return response["file"], response["media_content_id"], playing


async def test_engine_death_mid_recording_saves_what_reached_the_file(
    line: Line, speech: ChirpProvider, media_dir: Path, fired: list[dict[str, Any]]
) -> None:
    """The engine dies (SIGKILL) while c1 plays and records: playback_finished (cut_off),
    call_ended, then recording_saved (cut_off) with the real length of the audio in the
    file, whose header is now complete; the history's call links the recording; the new
    engine knows nothing of it."""
    file, media_content_id, playing = await _answered_and_recording(line, speech)
    audio = open_wav(Path(file), int(2.5 * RATE))
    fired.clear()
    await line.die()
    assert [(e["event_type"], e.get("reason")) for e in fired] == [
        ("playback_finished", "cut_off"),
        ("call_ended", "engine stopped"),
        ("recording_saved", "cut_off"),
    ]
    saved = fired[-1]
    assert saved["call_id"] == "c1"
    assert saved["file"] == file
    assert saved["media_content_id"] == media_content_id
    assert saved["duration"] == 2.5
    with wave.open(file, "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (RATE, 1, 2)
        assert wav.readframes(wav.getnframes()) == audio  # every byte that was written
    assert not Path(playing).exists()  # the converted greeting went with its playback
    assert line.coordinator.calls.history[-1].recording == file
    sound = line.coordinator.sound
    assert not sound.unsaved
    assert not sound.playing
    assert not sound.recordings
    # the next engine's events of a call c1 are a new call; nothing is saved again
    await line.advance(60)
    assert line.engine is not line.engines.started[0]
    fired.clear()
    await line.emit(call_event(CallState.RINGING))
    assert [e["event_type"] for e in fired] == ["incoming_call"]


async def test_recording_saved_by_the_engine_before_it_died_is_not_saved_again(
    line: Line, speech: ChirpProvider, media_dir: Path, fired: list[dict[str, Any]]
) -> None:
    """The engine's own recording_saved and playback_finished came before its death:
    they are the only ones."""
    file, _, playing = await _answered_and_recording(line, speech)
    fired.clear()
    await line.emit(
        PlaybackFinishedEvent(call_id="c1", file=playing, reason=PlaybackEnd.FINISHED),
        call_event(CallState.ENDED, duration=3.0),
        RecordingSavedEvent(call_id="c1", file=file, duration=2.0, reason=RecordingEnd.ENDED),
    )
    await line.die()
    assert [(e["event_type"], e.get("reason")) for e in fired] == [
        ("playback_finished", "finished"),
        ("call_ended", None),
        ("recording_saved", "ended"),
    ]


async def test_recording_saved_after_the_call_ended_when_the_engine_died_between(
    line: Line, speech: ChirpProvider, media_dir: Path, fired: list[dict[str, Any]]
) -> None:
    """The call ended (the engine closes the file, then says recording_saved) and the
    engine died before it said so: the file (complete) is saved with reason ended."""
    file, _, _ = await _answered_and_recording(line, speech)
    write_wav(Path(file), [0] * 4000)  # what the engine's closed recorder left
    await line.emit(call_event(CallState.ENDED, duration=3.0))
    fired.clear()
    await line.die()
    assert [(e["event_type"], e.get("reason"), e.get("duration")) for e in fired] == [
        ("playback_finished", "cut_off", None),
        ("recording_saved", "ended", 0.5),
    ]


async def test_a_recording_without_a_file_is_saved_empty(
    line: Line,
    speech: ChirpProvider,
    media_dir: Path,
    fired: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The engine died before it made the file: recording_saved all the same (an
    automation waiting for it goes on), 0 s, cut_off; a warning says why."""
    file, _, _ = await _answered_and_recording(line, speech)
    await line.die()
    saved = fired[-1]
    assert (saved["event_type"], saved["reason"], saved["duration"]) == (
        "recording_saved",
        "cut_off",
        0.0,
    )
    assert saved["file"] == file
    assert "has no audio" in caplog.text


async def test_unload_mid_recording_saves_it(
    line: Line, speech: ChirpProvider, media_dir: Path
) -> None:
    """The line is unloaded while c1 records: the engine stops (its own recording_saved
    is no longer listened to); the file, closed by the engine, still goes to the call's
    history."""
    hass = line.hass
    file, _, _ = await _answered_and_recording(line, speech)
    write_wav(Path(file), [0] * 800)  # closed by the engine as it stopped
    coordinator = line.coordinator
    assert await hass.config_entries.async_unload(line.entry.entry_id)
    await hass.async_block_till_done()
    assert line.entry.state is ConfigEntryState.NOT_LOADED
    assert coordinator.calls.history[-1].recording == file
    assert not coordinator.sound.unsaved


async def test_recordings_cut_off_with_home_assistant_are_completed_at_its_start(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    media_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Home Assistant itself was killed mid-recording (its engine with it): at the next
    start, before any engine runs, the open header is completed (a warning names the
    file); complete files and files that are no WAV are left as they were."""
    folder = media_dir / "kpn_voip"
    folder.mkdir()
    audio = open_wav(folder / "20261130-142501_0612345678.wav", 12000)
    complete = write_wav(folder / "20261130-120000_0201234567.wav", [0] * 800).read_bytes()
    (folder / "notes.wav").write_bytes(b"not a recording")
    await setup_entry(hass, mock_config_entry)
    with wave.open(str(folder / "20261130-142501_0612345678.wav"), "rb") as wav:
        assert wav.readframes(wav.getnframes()) == audio
    assert (folder / "20261130-120000_0201234567.wav").read_bytes() == complete
    assert (folder / "notes.wav").read_bytes() == b"not a recording"
    assert "20261130-142501_0612345678.wav was cut off" in caplog.text
    assert "1.5 s are kept" in caplog.text
    assert "20261130-120000_0201234567.wav was cut off" not in caplog.text


async def test_recordings_are_forgotten_with_the_event_entity_disabled(
    line: Line, speech: ChirpProvider, media_dir: Path, fired: list[dict[str, Any]]
) -> None:
    """The user disabled the call event entity: nobody reads a recording's media content
    id from its recording_saved, yet the line forgets it (no entry kept per recording for
    the life of the line), for a recording the engine saved and for one cut off by the
    engine's death; the history still links both."""
    hass, entry = line.hass, line.entry
    er.async_get(hass).async_update_entity(EVENT_ENTITY, disabled_by=er.RegistryEntryDisabler.USER)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(EVENT_ENTITY) is None
    sound = line.coordinator.sound
    file, _, _ = await _answered_and_recording(line, speech)
    assert list(sound.recordings) == [file]
    open_wav(Path(file), RATE)  # what the engine wrote
    await line.emit(
        RecordingSavedEvent(call_id="c1", file=file, duration=2.0, reason=RecordingEnd.ENDED),
        call_event(CallState.ENDED, duration=3.0),
    )
    assert not sound.recordings
    assert line.coordinator.calls.history[-1].recording == file
    second, _, _ = await _answered_and_recording(line, speech)
    assert second != file
    open_wav(Path(second), RATE)
    await line.die()
    assert not sound.recordings
    assert not sound.unsaved
    assert line.coordinator.calls.history[-1].recording == second
    assert fired == []
