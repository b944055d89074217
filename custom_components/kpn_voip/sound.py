"""Sound on the line, Home Assistant's side: media in, recordings out.

* `async_prepare_media`: a media source id (local media, TTS via
  `media-source://tts/...`, anything media_source resolves) becomes a
  16-bit PCM mono WAV file at 8 kHz (K14) that the engine plays.  The
  conversion is Home Assistant's ffmpeg integration's binary
  (`get_ffmpeg_manager(hass).binary`), never a decoder of our own.
* `recording_path`: where the engine records a call: the `kpn_voip` folder of
  Home Assistant's first media folder (the media browser shows it as
  "My media / kpn_voip"), named by time and the other party's number
  (`20261130-142501_0612345678.wav`): nothing secret.
* `LineSound`: one line's converted files (deleted when their playback
  ends) and the plays waiting for a dialled call to be answered.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Collection
import contextlib
from dataclasses import dataclass, field
from datetime import datetime
import os
from pathlib import Path
import re
import shutil
import tempfile
from typing import Any, Final
import uuid

from homeassistant.components.ffmpeg import get_ffmpeg_manager
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util import dt as dt_util

from .const import DOMAIN, K14_CLOCK_RATE, LOGGER
from .kpn_line.protocol import CallerId
from .kpn_line.wavfile import CompletedWav, WavHeaderError, complete_header

CONVERT_TIMEOUT: Final = 60.0  # seconds an ffmpeg conversion may take
RECORDINGS_FOLDER: Final = DOMAIN  # inside Home Assistant's media folder
MAX_DIGITS: Final = 64  # digits kept per call (a PIN is far shorter; a caller may press on)
ENDED_CALLS_KEPT: Final = 16  # call ids of ended calls LineSound remembers
MEDIA_SOURCE_LOCAL: Final = "media-source://media_source"
_TTS_PREFIX: Final = "media-source://tts/"
_UNSAFE: Final = re.compile(r"[^0-9A-Za-z+]")


@dataclass(frozen=True, slots=True)
class Recording:
    """Where a recording goes: its file, and its id in Home Assistant's media browser."""

    path: Path
    media_content_id: str


def _recordings_folder(hass: HomeAssistant) -> tuple[str, Path] | None:
    """(media source id, folder) where recordings go: RECORDINGS_FOLDER in Home
    Assistant's first media folder; None if it has none."""
    if not hass.config.media_dirs:
        return None
    source, folder = next(iter(hass.config.media_dirs.items()))
    return source, Path(folder) / RECORDINGS_FOLDER


def recording_path(hass: HomeAssistant, caller: CallerId, when: datetime) -> Recording:
    """The file of a new recording, named by local time and the other party's number.

    The other party: the national form of its number, else the number,
    else "anonymous" (K16).  Raises HomeAssistantError if Home Assistant has
    no media folder.
    """
    if (media := _recordings_folder(hass)) is None:
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="no_media_folder")
    source, folder = media
    party = "anonymous" if caller.anonymous else (caller.national or caller.number or "unknown")
    stamp = dt_util.as_local(when).strftime("%Y%m%d-%H%M%S")
    name = f"{stamp}_{_UNSAFE.sub('', party)[:20] or 'unknown'}.wav"
    path = folder / name
    return Recording(
        path=path,
        media_content_id=f"{MEDIA_SOURCE_LOCAL}/{source}/{RECORDINGS_FOLDER}/{name}",
    )


def complete_cut_off_recordings(hass: HomeAssistant) -> list[tuple[str, CompletedWav]]:
    """Complete the header of every recording a dead engine left open; (name, result) each.

    For Home Assistant's start, before any line's engine runs (so no file is
    being written): a recording cut off with Home Assistant itself (killed, a
    power cut) was never completed by the line (coordinator:
    `_async_complete_recordings`).  Files that are no WAV are left alone.  File
    I/O: run it in an executor.
    """
    if (media := _recordings_folder(hass)) is None:
        return []
    _, folder = media
    completed = []
    for path in sorted(folder.glob("*.wav")):
        try:
            result = complete_header(str(path))
        except (OSError, WavHeaderError):
            continue
        if result.completed:
            completed.append((path.name, result))
    return completed


def _free_path(path: Path, taken: Collection[str]) -> Path:
    """Make the folder; `path`, or `<stem>-2.wav`, `-3`, ... if that file exists or is
    being recorded (`taken`): a second recording in the same second from the same number."""
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = path, 1
    while candidate.exists() or str(candidate) in taken:
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


async def async_make_recording_folder(
    hass: HomeAssistant, recording: Recording, taken: Collection[str] = ()
) -> Recording:
    """Create the recording's folder (the engine writes the file); the recording with a
    name no other file has (`taken`: files being recorded).  Raises HomeAssistantError
    (recording_failed) if the folder cannot be made."""
    try:
        path = await hass.async_add_executor_job(_free_path, recording.path, taken)
    except OSError as err:
        LOGGER.warning("The folder of recording %s cannot be made: %s", recording.path, err)
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="recording_failed"
        ) from err
    if path == recording.path:
        return recording
    folder = recording.media_content_id.rsplit("/", 1)[0]
    return Recording(path=path, media_content_id=f"{folder}/{path.name}")


def tts_media_id(
    hass: HomeAssistant,
    message: str,
    *,
    engine: str | None = None,
    language: str | None = None,
    voice: str | None = None,
) -> str:
    """The TTS media source id that says `message` (kpn_voip.say is a thin wrapper on it).

    K14: TTS is asked for what the line plays (8 kHz mono 16-bit WAV); the
    conversion before playing then has nothing left to do but copy.  Raises
    ServiceValidationError: empty_message for a message of blanks only,
    tts_unavailable without TTS, or for an unknown engine, language or voice.
    """
    if not message.strip():  # nothing to say: HA's TTS would fail on it, with an error
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="empty_message")
    options: dict[str, Any] = {
        "preferred_format": "wav",
        "preferred_sample_rate": K14_CLOCK_RATE,
        "preferred_sample_channels": 1,
        "preferred_sample_bytes": 2,
    }
    if voice is not None:
        options["voice"] = voice
    try:
        from homeassistant.components import tts

        return tts.generate_media_source_id(
            hass, message, engine=engine, language=language, options=options
        )
    except (HomeAssistantError, KeyError, ImportError) as err:
        # Home Assistant's own words are English: they go to the log, not into the text.
        LOGGER.warning("Text-to-speech cannot say the message: %s", str(err) or repr(err))
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="tts_unavailable"
        ) from err


async def async_prepare_media(
    hass: HomeAssistant, media_id: str, workdir: Path, source: MediaSource | None = None
) -> Path:
    """`media_id` as a new 8 kHz mono 16-bit WAV file in `workdir` (K14).

    `source`: what async_media_source gave for it already (else it is asked here).
    Raises ServiceValidationError (invalid_media) when the id cannot be resolved,
    HomeAssistantError (media_conversion_failed) when ffmpeg cannot convert it; a
    failed or cancelled conversion leaves no file.
    """
    data, path = source or await async_media_source(hass, media_id)
    await hass.async_add_executor_job(workdir.mkdir, 0o700, True, True)
    out = workdir / f"{uuid.uuid4().hex}.wav"
    try:
        await _async_convert(hass, path, data, out)
    except BaseException:
        hass.async_add_executor_job(remove, out)
        raise
    return out


type MediaSource = tuple[bytes | None, str]  # what ffmpeg reads: (its stdin's bytes, its -i)


def is_tts_media(media_id: str) -> bool:
    """True for text-to-speech media: making it takes as long as the text (seconds for a
    long one, issue 11), where other media resolves at once."""
    return media_id.startswith(_TTS_PREFIX)


async def async_media_source(hass: HomeAssistant, media_id: str) -> MediaSource:
    """What ffmpeg reads for `media_id`: (TTS audio for its stdin, "pipe:0") or (None, a
    local file).  TTS media (`media-source://tts/...`) is rendered by Home Assistant's
    TTS; other media source ids are resolved by media_source.

    Raises ServiceValidationError (invalid_media) when `media_id` cannot be resolved,
    HomeAssistantError (tts_failed) when text-to-speech fails (its English detail goes
    to the log).
    """
    try:
        return await _async_source(hass, media_id)
    except (HomeAssistantError, ValueError, KeyError, ImportError) as err:
        if is_tts_media(media_id):
            LOGGER.warning("Text-to-speech failed: %s", str(err) or repr(err))
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="tts_failed"
            ) from err
        LOGGER.debug("Media %s cannot be played: %s", media_id, err)
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_media",
            translation_placeholders={"media": media_id[:120]},
        ) from err


async def _async_source(hass: HomeAssistant, media_id: str) -> MediaSource:
    """async_media_source's work; raises ValueError / HomeAssistantError when `media_id`
    cannot be resolved."""
    if is_tts_media(media_id):
        from homeassistant.components import tts

        _, data = await tts.async_get_media_source_audio(hass, media_id)
        return data, "pipe:0"
    from homeassistant.components import media_source

    if not media_source.is_media_source_id(media_id):
        raise ValueError("not a media source id")
    resolved = await media_source.async_resolve_media(hass, media_id, None)
    if resolved.path is None or not await hass.async_add_executor_job(resolved.path.is_file):
        raise ValueError("not a local file")
    return None, str(resolved.path)


async def _async_convert(hass: HomeAssistant, source: str, data: bytes | None, out: Path) -> None:
    """ffmpeg: `source` (a file, or `data` on stdin) -> `out`, 8 kHz mono PCM WAV."""
    binary = get_ffmpeg_manager(hass).binary
    args = [
        binary,
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        source,
        "-ac",
        "1",
        "-ar",
        str(K14_CLOCK_RATE),
        "-c:a",
        "pcm_s16le",
        "-f",
        "wav",
        str(out),
    ]
    error = ""
    try:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(data), CONVERT_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            error = "timeout"
        except asyncio.CancelledError:  # the line unloads: ffmpeg goes too
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        else:
            if proc.returncode != 0:
                error = stderr.decode(errors="replace").strip()[-200:] or f"exit {proc.returncode}"
    except FileNotFoundError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="ffmpeg_missing",
            translation_placeholders={"binary": binary},
        ) from err
    except OSError as err:
        error = err.strerror or type(err).__name__
    if error:  # ffmpeg's words (English) go to the log, not into the user's language
        LOGGER.warning("ffmpeg could not convert %s for the line: %s", source, error)
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="media_conversion_failed"
        )


@dataclass(slots=True)
class PendingPlay:
    """The sound of a dialled call: made while the call rings (the INVITE does not wait
    for text-to-speech, issue 11), played once the call is answered and it is ready."""

    hangup_after_playback: bool
    loops: int = 1  # 0: until the call ends
    file: Path | None = None  # the converted file, once it is made
    ended: bool = False  # the call ended before the sound played
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # set: answered, or ended
    task: asyncio.Task[None] | None = None  # makes the file, then plays it


class LineSound:
    """One line's converted media files and the plays waiting for an answer."""

    def __init__(self) -> None:
        """A private working folder for converted files, made on first use."""
        self.workdir = Path(tempfile.gettempdir()) / f"kpn_voip-{uuid.uuid4().hex[:12]}"
        self.playing: dict[tuple[str, str], Path] = {}  # (call id, file) -> converted file
        self.pending: dict[str, PendingPlay] = {}  # call id -> to play when answered
        self.recordings: dict[str, str] = {}  # file being recorded -> its media content id
        self.recording: dict[str, str] = {}  # call id -> the file it is being recorded to
        # file -> its call id, from the record until its recording_saved, which may come
        # after the call's end (the engine completes the file first), or never: the
        # engine died (coordinator: _async_complete_recordings)
        self.unsaved: dict[str, str] = {}
        self.digits: dict[str, str] = {}  # call id -> the digits it received (K15), in order
        # The last calls that ended: one may end before dial's reply is handled.
        self.ended_calls: deque[str] = deque(maxlen=ENDED_CALLS_KEPT)

    def keyed(self, call_id: str, digit: str) -> str:
        """A digit arrived on a call: the digits received on it so far, this one last.

        Kept until the call ends (`ended`), so that an automation needs no loop that
        re-arms between digits of a burst; at most the last MAX_DIGITS are kept.
        """
        digits = (self.digits.get(call_id, "") + digit)[-MAX_DIGITS:]
        self.digits[call_id] = digits
        return digits

    def played(self, call_id: str, file: str) -> Path | None:
        """A playback ended: its converted file, to remove (`remove`)."""
        return self.playing.pop((call_id, file), None)

    def ended(self, call_id: str) -> None:
        """A call ended: the sound that waited for it is told (its task removes its file
        once it is made: text-to-speech is not cancelled, Home Assistant shares it
        between the requests of the same message)."""
        self.recording.pop(call_id, None)
        self.digits.pop(call_id, None)
        self.ended_calls.append(call_id)
        if (pending := self.pending.pop(call_id, None)) is not None:
            pending.ended = True
            pending.settled.set()

    def close(self) -> None:
        """Remove every converted file (the line is unloaded)."""
        self.playing.clear()
        self.pending.clear()
        self.digits.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


def remove(path: Path) -> None:
    """Remove a converted file (in an executor: file I/O)."""
    with contextlib.suppress(OSError):
        os.unlink(path)
