"""Sound on the line in Home Assistant (issue 11): the actions answer, play, say,
stop_playback, record, send_dtmf, dial with a message, and the call event entity's
dtmf / playback_finished / recording_saved events.

The engine is the scripted FakeEngine; media goes through Home Assistant's
media_source and TTS and is converted by the ffmpeg integration's binary,
here `fake_ffmpeg.py` (fast, WAV only; test_sound_ffmpeg.py converts MP3 and a
TTS engine's MP3 with the real ffmpeg).
TTS is an offline test provider that speaks a chirp as WAV.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
import time
from types import SimpleNamespace
from typing import Any
import wave

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util import dt as dt_util
import pytest

from custom_components.kpn_voip import sound
from custom_components.kpn_voip.const import DOMAIN
from custom_components.kpn_voip.coordinator import SHOWN_CALL_ID_LENGTH
from custom_components.kpn_voip.kpn_line.client import EngineError
from custom_components.kpn_voip.kpn_line.protocol import (
    CallState,
    Direction,
    DtmfEvent,
    ErrorCode,
    PlaybackEnd,
    PlaybackFinishedEvent,
    RecordingEnd,
    RecordingSavedEvent,
)

from .conftest import ChirpProvider, Line, call_event
from .test_services import _dutch

EVENT_ENTITY = "event.thuis_call"


@pytest.fixture
async def talking(line: Line) -> Line:
    """The line with an incoming call c1 that rings."""
    await line.emit(call_event(CallState.RINGING))
    return line


async def _call(hass: HomeAssistant, action: str, data: dict[str, Any]) -> Any:
    return await hass.services.async_call(
        DOMAIN, action, data, blocking=True, return_response=action in ("record", "stop_playback")
    )


async def _refused(
    hass: HomeAssistant, action: str, data: dict[str, Any], key: str
) -> HomeAssistantError:
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, action, data)
    assert err.value.translation_key == key, err.value
    assert err.value.translation_domain == DOMAIN
    return err.value


async def _until(hass: HomeAssistant, check: Callable[[], object], what: str) -> None:
    """`check()` (run in an executor: it may read files) holds within ~10 s: files are
    removed in executor jobs, a dialled call's sound is made in a task of its own (the
    clock is frozen: no asyncio sleeping)."""
    for _ in range(1000):
        if await hass.async_add_executor_job(check):
            return
        await hass.async_block_till_done()
        await hass.async_add_executor_job(time.sleep, 0.01)
    raise AssertionError(what)


async def _gone(hass: HomeAssistant, path: Path) -> None:
    """`path` is removed soon."""
    await _until(hass, lambda: not path.exists(), f"{path} is still there")


def _played(line: Line) -> list[tuple[Any, ...]]:
    return [c for c in line.engine.sound if c[0] == "play"]


async def test_answer_and_send_dtmf(talking: Line) -> None:
    """answer and send_dtmf go to the engine; digits are checked first (K15)."""
    hass = talking.hass
    await _call(hass, "answer", {"call_id": "c1"})
    await _call(hass, "send_dtmf", {"call_id": "c1", "digits": "12 3a#*"})
    assert talking.engine.sound == [("answer", "c1"), ("send_dtmf", "c1", "123A#*")]
    for digits in ("12x", "", "1" * 33):
        err = await _refused(
            hass, "send_dtmf", {"call_id": "c1", "digits": digits}, "invalid_dtmf_digits"
        )
        assert isinstance(err, ServiceValidationError)


@pytest.mark.parametrize(
    ("code", "key"),
    [
        (ErrorCode.NO_SUCH_CALL, "no_such_call"),
        (ErrorCode.NOT_ANSWERED, "not_answered"),
        (ErrorCode.NO_DTMF, "no_dtmf"),
        (ErrorCode.BAD_FILE, "bad_file"),
        (ErrorCode.ALREADY_RECORDING, "already_recording"),
        (ErrorCode.NOT_RINGING, "not_ringing"),
        (ErrorCode.INTERNAL, "engine_internal"),
    ],
)
async def test_engine_refusals_are_translated(talking: Line, code: str, key: str) -> None:
    """Each engine error of the sound commands is a translated error (en + nl); the
    call that is not there is named."""
    talking.engines.sound_error = EngineError(code, "detail")
    for action, data in (
        ("answer", {"call_id": "c1"}),
        ("send_dtmf", {"call_id": "c1", "digits": "1"}),
        ("stop_playback", {"call_id": "c1"}),
    ):
        err = await _refused(talking.hass, action, data, key)
        if key == "no_such_call":
            assert err.translation_placeholders == {"call_id": "c1"}


async def test_play_media_converted_with_ffmpeg(
    talking: Line, speech: ChirpProvider, media_dir: Path
) -> None:
    """A file from the media browser is converted to 8 kHz mono (K14) and played; its
    converted copy goes when the playback ends."""
    hass = talking.hass
    media = {"media_content_id": "media-source://media_source/local/greeting.wav"}
    await _call(hass, "play", {"call_id": "c1", "media": media, "loops": 2})
    (_, call_id, file, loops, then_hangup) = _played(talking)[0]
    assert (call_id, loops, then_hangup) == ("c1", 2, False)
    with wave.open(file, "rb") as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (1, 8000, 2)
        assert wav.getnframes() == 2400  # 0.3 s
    await talking.emit(PlaybackFinishedEvent(call_id="c1", file=file, reason=PlaybackEnd.FINISHED))
    await _gone(hass, Path(file))
    state = hass.states.get(EVENT_ENTITY)
    assert state is not None
    assert state.attributes["event_type"] == "playback_finished"
    assert state.attributes["reason"] == "finished"


async def test_play_refusals(
    talking: Line, speech: ChirpProvider, media_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Media that is no media source id, that does not exist or that ffmpeg cannot read."""
    hass = talking.hass
    for media in ("/etc/passwd", "media-source://media_source/local/missing.wav"):
        err = await _refused(hass, "play", {"call_id": "c1", "media": media}, "invalid_media")
        assert isinstance(err, ServiceValidationError)
    # The newcomer's "not a url cannot be played": the message reads as a sentence.
    err = await _refused(hass, "play", {"call_id": "c1", "media": "not a url"}, "invalid_media")
    assert str(err).startswith('The media "not a url" cannot be played: it is not a sound file')
    err = await _refused(
        hass,
        "play",
        {"call_id": "c1", "media": "media-source://media_source/local/broken.wav"},
        "media_conversion_failed",
    )
    # ffmpeg's own (English) words go to the log, not into the user's language
    assert not err.translation_placeholders
    assert str(err).startswith("ffmpeg could not convert the media for the phone line: it")
    nl = await _dutch(hass, err)
    assert nl.startswith("ffmpeg kon de media niet voor de telefoonlijn omzetten: het is")
    assert "ffmpeg could not convert " in caplog.text
    talking.engines.sound_error = EngineError(ErrorCode.NOT_ANSWERED, "no audio yet")
    await _refused(
        hass,
        "play",
        {"call_id": "c1", "media": "media-source://media_source/local/greeting.wav"},
        "not_answered",
    )
    assert not list(talking.coordinator.sound.workdir.glob("*.wav"))  # nothing left behind


async def test_say_uses_the_tts_media_source(talking: Line, speech: ChirpProvider) -> None:
    """say = TTS's media source with engine, language and voice, then play."""
    hass = talking.hass
    await _call(
        hass,
        "say",
        {
            "call_id": "c1",
            "message": "Press 1 to open the gate",
            "tts_engine": "test",
            "language": "nl",
            "voice": "anna",
            "hangup_after_playback": True,
        },
    )
    (message, language, options) = speech.spoken[0]
    assert (message, language, options["voice"]) == ("Press 1 to open the gate", "nl", "anna")
    (_, _, file, loops, then_hangup) = _played(talking)[0]
    assert (loops, then_hangup) == (1, True)
    assert Path(file).is_file()
    err = await _refused(
        hass,
        "say",
        {"call_id": "c1", "message": "hi", "tts_engine": "tts.nothing"},
        "tts_unavailable",
    )
    assert isinstance(err, ServiceValidationError)
    await _refused(
        hass, "say", {"call_id": "c1", "message": "hi", "language": "xx"}, "tts_unavailable"
    )


@pytest.mark.parametrize("message", ["", "   ", "\n"])
async def test_an_empty_message_is_refused(
    talking: Line, speech: ChirpProvider, message: str
) -> None:
    """say, and dial with a message: nothing to say is a translated error (HA's TTS
    would fail on it and log an error); nothing is played or dialled."""
    await _refused(talking.hass, "say", {"call_id": "c1", "message": message}, "empty_message")
    await _refused(talking.hass, "dial", {"number": "112", "message": message}, "empty_message")
    assert talking.engine.dialled == []


async def test_say_without_tts(talking: Line) -> None:
    """No TTS set up: a translated error, not a crash."""
    await _refused(talking.hass, "say", {"call_id": "c1", "message": "hi"}, "tts_unavailable")


async def test_dial_with_a_message_plays_it_once_answered(
    line: Line, speech: ChirpProvider
) -> None:
    """dial + message: made while the call rings, played when the far end answers, then
    hung up (hangup_after_playback)."""
    hass = line.hass
    response = await hass.services.async_call(
        DOMAIN,
        "dial",
        {"number": "0612345678", "message": "The alarm went off", "hangup_after_playback": True},
        blocking=True,
        return_response=True,
    )
    assert response == {"call_id": "out1"}
    assert not _played(line)
    await line.emit(call_event(CallState.ANSWERED, call_id="out1", direction=Direction.OUTGOING))
    await _until(hass, lambda: _played(line), "nothing played")
    (_, call_id, _, loops, then_hangup) = _played(line)[0]
    assert (call_id, loops, then_hangup) == ("out1", 1, True)
    assert speech.spoken[0][0] == "The alarm went off"
    # a second dial whose call is never answered: its converted file goes with the call
    await hass.services.async_call(
        DOMAIN, "dial", {"number": "0612345678", "message": "Again"}, blocking=True
    )
    pending = line.coordinator.sound.pending["out2"]
    await _until(hass, lambda: pending.file is not None, "no file made")
    assert pending.file is not None
    assert pending.file.is_file()
    await line.emit(call_event(CallState.ENDED, call_id="out2", direction=Direction.OUTGOING))
    await _gone(hass, pending.file)
    assert line.coordinator.sound.pending == {}


async def test_dial_repeats_its_media_loops_times(
    line: Line, speech: ChirpProvider, media_dir: Path
) -> None:
    """dial + media + loops (issue 11 job 1: "optionally repeats it"): once answered the
    engine is told to play the file `loops` times, then hang up; without loops it is once
    (the test above)."""
    hass = line.hass
    media = "media-source://media_source/local/greeting.wav"
    await hass.services.async_call(
        DOMAIN,
        "dial",
        {"number": "0612345678", "media": media, "loops": 3, "hangup_after_playback": True},
        blocking=True,
    )
    assert line.coordinator.sound.pending["out1"].loops == 3
    await line.emit(call_event(CallState.ANSWERED, call_id="out1", direction=Direction.OUTGOING))
    await _until(hass, lambda: _played(line), "nothing played")
    (_, call_id, file, loops, then_hangup) = _played(line)[0]
    assert (call_id, loops, then_hangup) == ("out1", 3, True)
    assert Path(file).is_file()


async def test_record_into_the_media_folder(talking: Line, media_dir: Path) -> None:
    """record: a file in <media>/kpn_voip named by time and caller (nothing secret); the
    recording_saved event links it for the media browser."""
    hass = talking.hass
    response = await _call(
        hass, "record", {"call_id": "c1", "max_seconds": 30, "silence_seconds": 3}
    )
    file = response["file"]
    name = dt_util.now().strftime("%Y%m%d-%H%M%S") + "_0612345678.wav"  # local time, national
    assert file == str(media_dir / "kpn_voip" / name)
    assert response["media_content_id"] == f"media-source://media_source/local/kpn_voip/{name}"
    assert talking.engine.sound == [("record", "c1", file, 30.0, 3.0)]
    assert (media_dir / "kpn_voip").is_dir()
    await talking.emit(
        RecordingSavedEvent(call_id="c1", file=file, duration=12.5, reason=RecordingEnd.SILENCE)
    )
    state = hass.states.get(EVENT_ENTITY)
    assert state is not None
    assert state.attributes["event_type"] == "recording_saved"
    assert state.attributes["media_content_id"] == response["media_content_id"]
    assert state.attributes["duration"] == 12.5
    # another call from the same number, the same second: a name of its own
    Path(file).write_bytes(b"")  # the engine made c1's file
    await talking.emit(call_event(CallState.RINGING, call_id="c2"))
    second = await _call(hass, "record", {"call_id": "c2"})
    assert second["file"] == str(media_dir / "kpn_voip" / name.replace(".wav", "-2.wav"))
    assert second["media_content_id"].endswith("/kpn_voip/" + name.replace(".wav", "-2.wav"))
    err = await _refused(hass, "record", {"call_id": "c9"}, "no_such_call")
    assert err.translation_placeholders == {"call_id": "c9"}
    assert "no call c9 on the line" in str(err)
    # the folder cannot be made
    hass.config.media_dirs = {"local": str(media_dir / "kpn_voip" / name / "sub")}
    # (c1's file is where the folder's parent would be)
    err = await _refused(hass, "record", {"call_id": "c1"}, "recording_failed")
    assert not err.translation_placeholders  # not "NotADirectoryError": that is in the log
    assert str(err).startswith("The recording could not be started: its folder in the media")
    nl = await _dutch(hass, err)
    assert nl.startswith("De opname kon niet worden gestart: de map ervoor in de mediamap")
    hass.config.media_dirs = {}
    await _refused(hass, "record", {"call_id": "c1"}, "no_media_folder")


@pytest.mark.parametrize(
    ("data", "placeholders"),
    [
        (
            {"max_seconds": 30, "silence_seconds": 60},
            {"silence_seconds": "60", "max_seconds": "30"},
        ),
        (
            {"max_seconds": 10, "silence_seconds": 30},
            {"silence_seconds": "30", "max_seconds": "10"},
        ),
        (
            {"max_seconds": 2.5, "silence_seconds": 2.5},
            {"silence_seconds": "2.5", "max_seconds": "2.5"},
        ),
    ],
)
async def test_record_silence_not_shorter_than_max_is_refused(
    talking: Line, media_dir: Path, data: dict[str, Any], placeholders: dict[str, str]
) -> None:
    """silence_seconds that can never end a recording before max_seconds does would be
    ignored: a translated error naming both, and nothing is recorded."""
    err = await _refused(
        talking.hass, "record", {"call_id": "c1", **data}, "silence_not_shorter_than_max"
    )
    assert err.translation_placeholders == placeholders
    assert f"(max_seconds, {placeholders['max_seconds']} s)" in str(err)
    assert talking.engine.sound == []
    await _call(
        talking.hass, "record", {"call_id": "c1", "max_seconds": 10, "silence_seconds": 9.5}
    )
    assert [c[0] for c in talking.engine.sound] == ["record"]


async def test_record_twice(talking: Line, media_dir: Path) -> None:
    """A second record of a call that is being recorded is a clear error, not the
    engine's bad_request nor a FileExistsError; once the recording is saved, a new one in
    the same second gets a name of its own."""
    hass = talking.hass
    first = (await _call(hass, "record", {"call_id": "c1"}))["file"]
    Path(first).write_bytes(b"RIFF")  # the engine has made the file
    err = await _refused(hass, "record", {"call_id": "c1"}, "already_recording")
    assert isinstance(err, ServiceValidationError)
    assert len(talking.engine.sound) == 1  # the engine was not asked again
    await talking.emit(
        RecordingSavedEvent(call_id="c1", file=first, duration=1.0, reason=RecordingEnd.MAX_LENGTH)
    )
    second = (await _call(hass, "record", {"call_id": "c1"}))["file"]
    assert second == first.replace(".wav", "-2.wav")
    # the call ends: a new call with the same id may be recorded
    await talking.emit(call_event(CallState.ENDED))
    await talking.emit(call_event(CallState.RINGING))
    assert (await _call(hass, "record", {"call_id": "c1"}))["file"] != second


async def test_record_refused_by_the_engine_as_already_recording(
    talking: Line, media_dir: Path
) -> None:
    """The engine's own already_recording (a recording Home Assistant does not know of)
    is the same translated error; nothing is taken as being recorded, so a record after
    the engine's recording ended goes to the engine."""
    hass = talking.hass
    talking.engines.sound_error = EngineError(ErrorCode.ALREADY_RECORDING, "recording already")
    err = await _refused(hass, "record", {"call_id": "c1"}, "already_recording")
    assert isinstance(err, ServiceValidationError)
    assert err.translation_placeholders in (None, {})
    talking.engines.sound_error = None
    response = await _call(hass, "record", {"call_id": "c1"})
    assert talking.engine.sound == [("record", "c1", response["file"], 120.0, None)]


async def test_answer_only_a_ringing_incoming_call(talking: Line) -> None:
    """answer on an outgoing or an answered call says what is wrong, not "no such call"."""
    hass = talking.hass
    await talking.emit(call_event(CallState.ALERTING, call_id="out1", direction=Direction.OUTGOING))
    err = await _refused(hass, "answer", {"call_id": "out1"}, "not_ringing")
    assert isinstance(err, ServiceValidationError)
    await talking.emit(call_event(CallState.ANSWERED))
    await _refused(hass, "answer", {"call_id": "c1"}, "not_ringing")
    await _refused(hass, "answer", {"call_id": "c9"}, "no_such_call")
    assert talking.engine.sound == []


async def test_second_answer_before_answered_is_not_ringing(talking: Line) -> None:
    """Two automations answer the same call back to back: Home Assistant still shows it
    ringing (the `answered` event is still to come), the engine refuses the second as
    not_ringing: the user gets "only a ringing incoming call can be answered", not
    "there is no call" nor an engine error, and the call is not hung up."""
    hass = talking.hass
    await _call(hass, "answer", {"call_id": "c1"})
    assert talking.engine.sound == [("answer", "c1")]
    talking.engines.sound_error = EngineError(ErrorCode.NOT_RINGING, "call 'c1' is not ringing")
    err = await _refused(hass, "answer", {"call_id": "c1"}, "not_ringing")
    assert isinstance(err, ServiceValidationError)
    assert talking.engine.hangups == []


async def test_stop_playback_of_an_unknown_call(talking: Line) -> None:
    """stop_playback of a call that is not on the line is no_such_call, like the other
    actions; a call on the line goes to the engine."""
    hass = talking.hass
    err = await _refused(hass, "stop_playback", {"call_id": "c9"}, "no_such_call")
    assert isinstance(err, ServiceValidationError)
    assert err.translation_placeholders == {"call_id": "c9"}
    # A long paste is named by its start only.
    err = await _refused(hass, "stop_playback", {"call_id": "x" * 500}, "no_such_call")
    assert err.translation_placeholders == {"call_id": "x" * SHOWN_CALL_ID_LENGTH + "…"}
    assert talking.engine.sound == []
    assert await _call(hass, "stop_playback", {"call_id": "c1"}) is not None


async def test_play_and_say_name_an_unknown_call_first(talking: Line) -> None:
    """play / say on a call that is not on the line: no_such_call, before the media or
    the TTS engine is looked at (a bogus media id or a missing TTS engine would hide
    the real mistake); nothing goes to the engine."""
    hass = talking.hass
    await _refused(hass, "play", {"call_id": "nope", "media": "media-source://x"}, "no_such_call")
    await _refused(
        hass,
        "say",
        {"call_id": "nope", "message": "hallo", "tts_engine": "tts.none"},
        "no_such_call",
    )
    assert talking.engine.sound == []


async def test_play_without_ffmpeg(
    talking: Line, speech: ChirpProvider, media_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ffmpeg binary: the error says ffmpeg is not installed (not "No such file")."""
    monkeypatch.setattr(
        sound, "get_ffmpeg_manager", lambda hass: SimpleNamespace(binary="kpn-no-such-ffmpeg")
    )
    media = "media-source://media_source/local/greeting.wav"
    err = await _refused(talking.hass, "play", {"call_id": "c1", "media": media}, "ffmpeg_missing")
    assert err.translation_placeholders == {"binary": "kpn-no-such-ffmpeg"}
    assert _played(talking) == []


async def test_dtmf_events_in_order(talking: Line) -> None:
    """K15: each digit the caller presses is one dtmf event of the call event entity."""
    hass = talking.hass
    seen: list[str] = []

    @callback  # on the loop, in order (a plain function runs in the executor)
    def remember(event: Any) -> None:
        if event.data["new_state"] is not None:
            seen.append(event.data["new_state"].attributes.get("digit"))

    hass.bus.async_listen("state_changed", remember)
    for digit in "1234#":
        await talking.emit(DtmfEvent(call_id="c1", digit=digit))
    assert seen == list("1234#")
    state = hass.states.get(EVENT_ENTITY)
    assert state is not None
    assert state.attributes["event_type"] == "dtmf"
    assert state.attributes["call_id"] == "c1"


async def test_dtmf_events_carry_the_digits_so_far(talking: Line) -> None:
    """Each dtmf event also carries `digits`: every digit of its call so far, this one
    last, per call; a burst (all digits in one loop turn) is whole in its last event;
    the call's digits go when it ends (a new call starts empty); the last MAX_DIGITS."""
    hass = talking.hass
    seen: list[tuple[str, str]] = []

    @callback  # on the loop, in order (a plain function runs in the executor)
    def remember(event: Any) -> None:
        state = event.data["new_state"]
        if state is not None and state.attributes.get("event_type") == "dtmf":
            seen.append((state.attributes["call_id"], state.attributes["digits"]))

    hass.bus.async_listen("state_changed", remember)
    await talking.emit(
        DtmfEvent(call_id="c1", digit="4"),
        DtmfEvent(call_id="c2", digit="9"),
        DtmfEvent(call_id="c1", digit="7"),
        DtmfEvent(call_id="c1", digit="1"),
        DtmfEvent(call_id="c1", digit="1"),
    )
    assert seen == [("c1", "4"), ("c2", "9"), ("c1", "47"), ("c1", "471"), ("c1", "4711")]
    await talking.emit(call_event(CallState.ENDED, call_id="c1"))
    assert "c1" not in talking.coordinator.sound.digits
    await talking.emit(call_event(CallState.RINGING, call_id="c1"))
    await talking.emit(DtmfEvent(call_id="c1", digit="5"))
    assert seen[-1] == ("c1", "5")
    await talking.emit(*(DtmfEvent(call_id="c2", digit="1") for _ in range(sound.MAX_DIGITS)))
    assert seen[-1] == ("c2", "1" * sound.MAX_DIGITS)


def test_translations_cover_the_sound_errors() -> None:
    """Every new error has an English and a Dutch text."""
    import json

    root = Path(__file__).resolve().parents[2] / "custom_components" / "kpn_voip"
    keys = {
        "not_answered",
        "no_dtmf",
        "bad_file",
        "invalid_media",
        "media_conversion_failed",
        "tts_unavailable",
        "tts_failed",
        "invalid_dtmf_digits",
        "no_media_folder",
        "recording_failed",
        "already_recording",
        "not_ringing",
        "ffmpeg_missing",
    }
    for name in ("strings.json", "translations/en.json", "translations/nl.json"):
        exceptions = json.loads((root / name).read_text())["exceptions"]
        assert keys <= set(exceptions), name


async def test_tts_and_file_errors_hold_no_english_detail(
    talking: Line, speech: ChirpProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """tts_unavailable, tts_failed and bad_file are whole sentences in the user's
    language (en + nl): Home Assistant's English TTS error and the engine's English
    detail go to the log, not into the (Dutch) message (issue 11's newcomer check)."""
    hass = talking.hass
    err = await _refused(
        hass,
        "say",
        {"call_id": "c1", "message": "hi", "tts_engine": "tts.nothing"},
        "tts_unavailable",
    )
    assert not err.translation_placeholders
    assert str(err).startswith("Text-to-speech cannot say this message: no text-to-speech")
    nl = await _dutch(hass, err)
    assert nl.startswith("Tekst-naar-spraak kan dit bericht niet uitspreken: er is geen")
    assert "Text-to-speech cannot say the message: " in caplog.text  # Home Assistant's words
    speech.audio = ("wav", b"no sound in here")  # the engine fails on this message
    err = await _refused(hass, "say", {"call_id": "c1", "message": "hi"}, "tts_failed")
    assert not isinstance(err, ServiceValidationError)  # not the user's input
    assert str(err).startswith("Text-to-speech could not say this message: the text-to")
    nl = await _dutch(hass, err)
    assert nl.startswith("Tekst-naar-spraak kon dit bericht niet uitspreken: de tekst-naar")
    assert "Text-to-speech failed: " in caplog.text
    talking.engines.sound_error = EngineError(ErrorCode.BAD_FILE, "no such file: /tmp/x.wav")
    err = await _refused(hass, "answer", {"call_id": "c1"}, "bad_file")
    assert not err.translation_placeholders
    assert str(err).startswith("The line engine could not use the sound file.")
    nl = await _dutch(hass, err)
    assert nl.startswith("De lijnengine kon het geluidsbestand niet gebruiken.")
    assert "no such file" not in str(err) + nl
    assert "bad_file: no such file: /tmp/x.wav" in caplog.text


def _sound_files(line: Line) -> list[Path]:
    """The line's converted files (none once every sound has played or gone)."""
    return sorted(line.coordinator.sound.workdir.glob("*"))


async def test_dial_does_not_wait_for_its_message(line: Line, speech: ChirpProvider) -> None:
    """The INVITE does not wait for text-to-speech (issue 11: a long message held it
    15.8 s): dial returns with the call placed while the message is still being spoken;
    answered before the sound is ready, the call gets it once it is."""
    hass = line.hass
    speech.delay = 0.5
    await hass.services.async_call(
        DOMAIN, "dial", {"number": "0612345678", "message": "A long text"}, blocking=True
    )
    assert line.engine.dialled == [("0612345678", False, None)]
    pending = line.coordinator.sound.pending["out1"]
    assert pending.file is None  # still being spoken
    await line.emit(call_event(CallState.ANSWERED, call_id="out1", direction=Direction.OUTGOING))
    assert not _played(line)
    await _until(hass, lambda: _played(line), "nothing played")
    [(_, call_id, file, loops, then_hangup)] = _played(line)
    assert (call_id, file, loops, then_hangup) == ("out1", str(pending.file), 1, False)
    assert line.coordinator.sound.pending == {}


async def test_a_call_that_ends_before_its_sound_is_ready(
    line: Line, speech: ChirpProvider
) -> None:
    """The far end declines while the message is being made: nothing plays; the task
    ends once the message is made (Home Assistant's TTS request is not cancelled: it is
    shared by every request of the same message) and leaves no file behind."""
    hass = line.hass
    speech.delay = 0.3
    await hass.services.async_call(
        DOMAIN, "dial", {"number": "0612345678", "message": "Too late"}, blocking=True
    )
    task = line.coordinator.sound.pending["out1"].task
    assert task is not None
    await line.emit(call_event(CallState.ENDED, call_id="out1", direction=Direction.OUTGOING))
    await _until(hass, task.done, "the sound's task goes on")
    assert not task.cancelled()
    assert task.exception() is None
    await _until(hass, lambda: not _sound_files(line), "a converted file was left")
    assert not _played(line)
    assert line.coordinator.sound.pending == {}


@pytest.mark.parametrize("hangup_after_playback", [True, False])
async def test_a_dialled_sound_that_cannot_be_made(
    line: Line,
    speech: ChirpProvider,
    caplog: pytest.LogCaptureFixture,
    hangup_after_playback: bool,
) -> None:
    """The message's conversion fails after the call was placed (here: TTS audio ffmpeg
    cannot read): the call event entity says playback_finished with reason `failed`, the
    log says why; a call that was to end after the message is hung up (it has nothing
    to say), another goes on without it; no file is left."""
    hass = line.hass
    speech.audio = ("wav", b"no sound in here")
    await hass.services.async_call(
        DOMAIN,
        "dial",
        {
            "number": "0612345678",
            "message": "Smoke",
            "hangup_after_playback": hangup_after_playback,
        },
        blocking=True,
    )
    await _until(
        hass,
        lambda: (s := hass.states.get(EVENT_ENTITY)) is not None
        and s.attributes.get("event_type") == "playback_finished",
        "no playback_finished",
    )
    state = hass.states.get(EVENT_ENTITY)
    assert state is not None
    assert (state.attributes["call_id"], state.attributes["reason"]) == ("out1", "failed")
    assert "The sound of call out1 cannot be played: Text-to-speech could not say" in caplog.text
    await _until(
        hass, lambda: line.engine.hangups == (["out1"] if hangup_after_playback else []), ""
    )
    assert line.engine.hangups == (["out1"] if hangup_after_playback else [])
    assert not _played(line)
    assert line.coordinator.sound.pending == {}
    assert not _sound_files(line)


async def test_dial_with_media_that_is_not_there_places_no_call(
    line: Line, speech: ChirpProvider, media_dir: Path
) -> None:
    """Media other than text-to-speech resolves at once: a wrong media id is the
    translated invalid_media before any call, as before (only TTS is made while the
    call rings)."""
    media = "media-source://media_source/local/missing.wav"
    await _refused(line.hass, "dial", {"number": "0612345678", "media": media}, "invalid_media")
    assert line.engine.dialled == []


@pytest.mark.parametrize("first", [CallState.ANSWERED, CallState.ENDED])
async def test_a_call_answered_or_ended_before_dial_returns(
    line: Line, speech: ChirpProvider, monkeypatch: pytest.MonkeyPatch, first: CallState
) -> None:
    """The engine's events of the call come before dial's reply is handled (they are
    read together): answered, its sound plays once made; ended, no sound is made."""
    hass = line.hass
    engine = line.engine
    dial = engine.dial

    async def dial_then_event(number: str, **kwargs: Any) -> str:
        call_id = await dial(number, **kwargs)
        engine.emit(call_event(first, call_id=call_id, direction=Direction.OUTGOING))
        return call_id

    monkeypatch.setattr(engine, "dial", dial_then_event)
    await hass.services.async_call(
        DOMAIN, "dial", {"number": "0612345678", "message": "Hello"}, blocking=True
    )
    if first is CallState.ENDED:
        assert line.coordinator.sound.pending == {}
        await hass.async_block_till_done()
        assert speech.spoken == []
        assert not _sound_files(line)
        return
    await _until(hass, lambda: _played(line), "nothing played")
    assert _played(line)[0][1] == "out1"


async def test_a_dialled_sound_the_engine_refuses(line: Line, speech: ChirpProvider) -> None:
    """The engine refuses to play the made sound (the call ended as it was answered):
    logged, and the file goes."""
    hass = line.hass
    await hass.services.async_call(
        DOMAIN, "dial", {"number": "0612345678", "message": "Hello"}, blocking=True
    )
    pending = line.coordinator.sound.pending["out1"]
    await _until(hass, lambda: pending.file is not None, "no file made")
    line.engines.sound_error = EngineError(ErrorCode.NO_SUCH_CALL, "no call out1")
    await line.emit(call_event(CallState.ANSWERED, call_id="out1", direction=Direction.OUTGOING))
    await _until(hass, lambda: not _sound_files(line), "the file was left")
    assert pending.task is not None
    await _until(hass, pending.task.done, "the task goes on")
    assert line.coordinator.sound.playing == {}


async def test_a_dialled_sound_that_fails_after_its_call_ended(
    line: Line, speech: ChirpProvider
) -> None:
    """The call ended while its message was being made, and then the message failed:
    logged only; no playback_finished for a call that is gone, no hang-up."""
    hass = line.hass
    speech.delay = 0.3
    speech.audio = ("wav", b"no sound in here")
    await hass.services.async_call(
        DOMAIN,
        "dial",
        {"number": "0612345678", "message": "Smoke", "hangup_after_playback": True},
        blocking=True,
    )
    task = line.coordinator.sound.pending["out1"].task
    assert task is not None
    await line.emit(call_event(CallState.ENDED, call_id="out1", direction=Direction.OUTGOING))
    await _until(hass, task.done, "the task goes on")
    state = hass.states.get(EVENT_ENTITY)
    assert state is not None
    assert state.attributes["event_type"] == "call_ended"
    assert line.engine.hangups == []
    assert not _sound_files(line)


async def test_unload_while_a_dialled_sound_waits(line: Line, speech: ChirpProvider) -> None:
    """The line is unloaded while a made sound waits for the answer: its task ends and
    the file goes."""
    hass = line.hass
    await hass.services.async_call(
        DOMAIN, "dial", {"number": "0612345678", "message": "Hello"}, blocking=True
    )
    pending = line.coordinator.sound.pending["out1"]
    await _until(hass, lambda: pending.file is not None, "no file made")
    assert pending.file is not None
    assert pending.task is not None
    await hass.config_entries.async_unload(line.entry.entry_id)
    await hass.async_block_till_done()
    assert pending.task.done()
    await _gone(hass, pending.file)
