"""Media through the REAL ffmpeg (issue 11): an MP3 file and a TTS engine that speaks MP3.

Home Assistant's ffmpeg integration runs Debian's ffmpeg here (scripts/setup
installs it), not the stand-in of test_sound.py.  An MP3 (44.1 kHz stereo, as
music files come) in the media folder and the MP3 of a TTS engine (24 kHz
mono, as cloud engines give; Home Assistant's TTS converts it once with
ffmpeg, the line's conversion once more) become what the engine plays: a
16-bit PCM mono WAV at 8 kHz (K14) of the source's length (within 5 %)
holding the source's sound.  End to end, both play on a call the line
dials, and so does a notify.send_message to a call target; the far end (a
second pjsua2) gets them: the G.711 it got is compared with the source
(normalised cross-correlation, as the engine's sound tests do).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
import shutil
import subprocess
import time
from typing import Any
import wave

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kpn_voip import sound
from custom_components.kpn_voip.const import DOMAIN
from kpn_devtools.farend import FarEnd
from kpn_devtools.kamailio import Kamailio
from kpn_devtools.sound import RATE, chirp, similarity, similarity_in_frames, write_wav
from tests.kpn_line.test_engine_sound import (
    MIN_SIMILARITY,
    assert_same_audio,
    line_rtp,
    pcma_audio,
)

from .conftest import ChirpProvider, with_call_target
from .test_e2e import (  # the same set-up as the other end-to-end tests
    _entry,
    _no_secrets_logged,  # noqa: F401  (autouse fixture)
    _real_pjsua2_check,  # noqa: F401  (autouse fixture)
    _setup_registered,
    _state,
    _unload,
    _wait,
    events,  # noqa: F401  (fixture)
)

# Audio similarity on real calls: alone, after the parallel pass (scripts/test).
pytestmark = [pytest.mark.timeout(120), pytest.mark.serial]

CALL_STATE = "sensor.thuis_call_state"
MAX_LENGTH_ERROR = 0.05  # the converted file's length may differ from the source's by 5 %
# A music file (up-sweep) and what the TTS engine says (down-sweep): told apart on the wire.
SONG = chirp(2.0, lead=0.1, tail=0.1)
SPEECH = chirp(1.5, start_hz=3000.0, end_hz=400.0, lead=0.1, tail=0.1)


def ffmpeg_binary() -> str:
    """Debian's ffmpeg (scripts/setup installs it: a missing one is a broken environment)."""
    binary = shutil.which("ffmpeg")
    assert binary, "no ffmpeg on PATH: run scripts/setup"
    return binary


def mp3(samples: list[int], workdir: Path, name: str, *encoding: str) -> Path:
    """`samples` (8 kHz) encoded by ffmpeg's libmp3lame with `encoding` options."""
    source = write_wav(workdir / f"{name}-source.wav", samples)
    out = workdir / f"{name}.mp3"
    subprocess.run(
        [
            ffmpeg_binary(),
            *("-hide_banner", "-loglevel", "error", "-i", str(source)),
            *encoding,
            *("-c:a", "libmp3lame", "-y", str(out)),
        ],
        check=True,
        timeout=60,
    )
    return out


@pytest.fixture(autouse=True)
async def ffmpeg_stand_in(hass: HomeAssistant) -> None:
    """Home Assistant's ffmpeg integration with the real binary (overrides the stand-in)."""
    assert await async_setup_component(hass, "ffmpeg", {"ffmpeg": {"ffmpeg_bin": ffmpeg_binary()}})


@pytest.fixture
def tts_audio(tmp_path: Path) -> tuple[str, bytes]:
    """The offline TTS engine speaks SPEECH as an MP3 (24 kHz mono, 64 kbit/s)."""
    path = mp3(SPEECH, tmp_path, "speech", "-ar", "24000", "-ac", "1", "-b:a", "64k")
    return "mp3", path.read_bytes()


@pytest.fixture
def song(media_dir: Path) -> str:
    """SONG as an MP3 in the media folder (44.1 kHz stereo, 128 kbit/s); its media id."""
    mp3(SONG, media_dir, "song", "-ar", "44100", "-ac", "2", "-b:a", "128k")
    return "media-source://media_source/local/song.mp3"


def assert_line_wav(path: Path, source: list[int]) -> float:
    """`path` is what the engine plays (16-bit PCM mono 8 kHz WAV, K14), as long as
    `source` (within 5 %) and with its sound; its length in seconds."""
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)
        assert wav.getcomptype() == "NONE"
        frames = wav.readframes(wav.getnframes())
    samples = list(memoryview(frames).cast("h"))
    seconds = len(samples) / RATE
    expected = len(source) / RATE
    assert abs(seconds - expected) <= MAX_LENGTH_ERROR * expected, (seconds, expected)
    score, _ = similarity(source, samples)
    assert score >= MIN_SIMILARITY, score
    return seconds


async def test_mp3_and_tts_mp3_converted_by_real_ffmpeg(
    hass: HomeAssistant, speech: ChirpProvider, song: str, tmp_path: Path
) -> None:
    """The line's conversion path (sound.async_prepare_media) with the real ffmpeg: an MP3
    file and a TTS engine's MP3 become 8 kHz mono 16-bit WAVs of the source's length."""
    workdir = tmp_path / "converted"
    started = time.perf_counter()
    converted = await sound.async_prepare_media(hass, song, workdir)
    song_ms = (time.perf_counter() - started) * 1000
    song_seconds = await hass.async_add_executor_job(assert_line_wav, converted, SONG)
    started = time.perf_counter()
    converted = await sound.async_prepare_media(hass, sound.tts_media_id(hass, "Wake up"), workdir)
    tts_ms = (time.perf_counter() - started) * 1000
    tts_seconds = await hass.async_add_executor_job(assert_line_wav, converted, SPEECH)
    assert [spoken[0] for spoken in speech.spoken] == ["Wake up"]
    print(
        f"real ffmpeg: MP3 {len(SONG) / RATE:.3f} s -> {song_seconds:.3f} s in {song_ms:.0f} ms;"
        f" TTS MP3 {len(SPEECH) / RATE:.3f} s -> {tts_seconds:.3f} s in {tts_ms:.0f} ms"
    )


async def _far_end_got(hass: HomeAssistant, cap: Any, far: FarEnd) -> tuple[list[int], str]:
    """The line's G.711 to the far end in the capture, decoded; and a summary of what
    was seen (said when the sound is not there: a failure is then readable)."""
    await hass.async_add_executor_job(
        lambda: cap.wait_for(lambda pkts: bool(pkts), timeout=2, settle=0.3)
    )
    packets = cap.packets()
    rtp = line_rtp(packets, far)
    received = pcma_audio(rtp)
    ssrcs: dict[int, int] = {}
    for pkt in rtp:
        ssrcs[pkt.ssrc] = ssrcs.get(pkt.ssrc, 0) + 1
    seen = (
        f"{len(rtp)} RTP packets (by SSRC {ssrcs}) of {len(packets)} captured, loudest"
        f" {max(map(abs, received), default=0)}, far end {far.events}"
    )
    return received, seen


def _assert_heard(reference: list[int], received: list[int], seen: str) -> float:
    """`received` holds `reference` (the sound tests' check: >= MIN_SIMILARITY after
    aligning frame by frame, a few frames slipped at most); its score.  `seen` is said
    when not."""
    try:
        return assert_same_audio(reference, received)
    except AssertionError as err:
        raise AssertionError(f"{err}; global {similarity(reference, received)}; {seen}") from None


def _fired(events: list[dict[str, Any]], kind: str) -> Callable[[], bool]:  # noqa: F811
    return lambda: any(e["event_type"] == kind for e in events)


async def _far_end_call(
    hass: HomeAssistant,
    kamailio_factory: Callable[..., Kamailio],
    capture: Any,
    entry_for: Callable[[Kamailio], MockConfigEntry],
    act: Callable[[], Awaitable[None]],
) -> tuple[list[int], str, FarEnd]:
    """The line (`entry_for` the stand-in) set up and registered; `act()` makes it dial a
    far end that answers; until the line has hung up.  _far_end_got() and the far end."""
    far = FarEnd(answer_after=0.3)
    try:
        kam = kamailio_factory(forward_to=far.address)
        entry = entry_for(kam)
        await _setup_registered(hass, entry)
        try:
            cap = capture(bpf="udp")
            await act()
            await _wait(hass, lambda: _state(hass, CALL_STATE) == "idle", what="hung up")
            await far.async_wait_exit()
        finally:
            await _unload(hass, entry)
        received, seen = await _far_end_got(hass, cap, far)
    finally:
        far.stop()
    return received, seen, far


@pytest.mark.peers
async def test_mp3_and_tts_played_on_a_call_reach_the_far_end(
    hass: HomeAssistant,
    kamailio_factory: Callable[..., Kamailio],
    capture: Any,
    speech: ChirpProvider,
    song: str,
    events: list[dict[str, Any]],  # noqa: F811
) -> None:
    """kpn_voip.dial with the MP3 as `media`, then kpn_voip.say on the answered call (TTS
    MP3) with hangup_after_playback: the far end gets both, in order, through the real
    engine and the stand-in; the call ends after the speech."""

    async def act() -> None:
        response = await hass.services.async_call(
            DOMAIN,
            "dial",
            {"number": "0612345678", "media": song},
            blocking=True,
            return_response=True,
        )
        assert response is not None
        await _wait(hass, _fired(events, "playback_finished"), what="the song played")
        await hass.services.async_call(
            DOMAIN,
            "say",
            {"call_id": response["call_id"], "message": "Wake up", "hangup_after_playback": True},
            blocking=True,
        )

    received, seen, _ = await _far_end_call(hass, kamailio_factory, capture, _entry, act)
    finished = [e for e in events if e["event_type"] == "playback_finished"]
    assert [e["reason"] for e in finished] == ["finished", "finished"], finished
    song_score = _assert_heard(SONG, received, seen)
    speech_score = _assert_heard(SPEECH, received, seen)
    print(f"far end got: song {song_score:.3f}, speech {speech_score:.3f}")
    # where each starts (frame by frame: a slipped frame does not move it), song first
    song_at = similarity_in_frames(SONG, received)[1][0]
    speech_at = similarity_in_frames(SPEECH, received)[1][0]
    assert song_at + len(SONG) <= speech_at + RATE // 10, (song_at, speech_at, seen)


@pytest.mark.peers
async def test_notify_message_reaches_the_far_end(
    hass: HomeAssistant,
    kamailio_factory: Callable[..., Kamailio],
    capture: Any,
    speech: ChirpProvider,
    events: list[dict[str, Any]],  # noqa: F811
) -> None:
    """notify.send_message on a call target (how most users use the line): the line dials
    its number; once the far end answers, the TTS engine's MP3 (through the real ffmpeg)
    plays, and the line hangs up after it."""

    async def act() -> None:
        await hass.services.async_call(
            "notify",
            "send_message",
            {"entity_id": "notify.mobile_jan", "title": "Alarm", "message": "Smoke"},
            blocking=True,
        )
        await _wait(hass, _fired(events, "playback_finished"), what="the message played")

    received, seen, far = await _far_end_call(
        hass, kamailio_factory, capture, lambda kam: with_call_target(_entry(kam)), act
    )
    assert [spoken[0] for spoken in speech.spoken] == ["Alarm. Smoke"]
    _speech_heard_then_hung_up(received, seen, far)


def _speech_heard_then_hung_up(received: list[int], seen: str, far: FarEnd) -> None:
    """The far end got SPEECH, and the line ended the call after it (the far end never
    hangs up by itself)."""
    _assert_heard(SPEECH, received, seen)
    assert [e["event"] for e in far.events][-2:] == ["ended", "exit"], far.events


SLOW_SPEECH_SECONDS = 2.0  # what the TTS engine takes (a long message; issue 11: 15.8 s)
MAX_INVITE_DELAY = 0.5  # seconds from the dial action to its INVITE on the wire


@pytest.mark.peers
async def test_dial_sends_the_invite_while_a_slow_message_is_spoken(
    hass: HomeAssistant,
    kamailio_factory: Callable[..., Kamailio],
    capture: Any,
    speech: ChirpProvider,
    events: list[dict[str, Any]],  # noqa: F811
) -> None:
    """kpn_voip.dial with a message whose text-to-speech takes SLOW_SPEECH_SECONDS: the
    INVITE leaves at once (within MAX_INVITE_DELAY of the action, not after the speech
    and its ffmpeg conversion); the far end answers after 0.3 s, before the speech is
    ready, and gets it once it is; then the line hangs up (hangup_after_playback)."""
    speech.delay = SLOW_SPEECH_SECONDS
    captures: list[Any] = []
    acted = 0.0

    def kept(**kwargs: Any) -> Any:
        captures.append(capture(**kwargs))
        return captures[-1]

    async def act() -> None:
        nonlocal acted
        acted = time.time()
        await hass.services.async_call(
            DOMAIN,
            "dial",
            {"number": "0612345678", "message": "Wake up", "hangup_after_playback": True},
            blocking=True,
        )
        await _wait(hass, _fired(events, "playback_finished"), within=30, what="the message")

    received, seen, far = await _far_end_call(hass, kamailio_factory, kept, _entry, act)
    invites = [p.time for p, text in captures[0].sip() if text.startswith("INVITE sip:0612345678@")]
    invite_ms = (min(invites) - acted) * 1000
    print(
        f"INVITE on the wire {invite_ms:.0f} ms after the dial action (TTS {SLOW_SPEECH_SECONDS} s)"
    )
    assert invite_ms < MAX_INVITE_DELAY * 1000, seen
    finished = [e["reason"] for e in events if e["event_type"] == "playback_finished"]
    assert finished == ["finished"], events
    _speech_heard_then_hung_up(received, seen, far)
