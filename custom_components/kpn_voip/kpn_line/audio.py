"""A call's sound: a steady RTP stream, playing, recording, DTMF in and out.

Everything here runs on the pjsua2 thread, except `Player.onEof2` (pjmedia's
event thread), which only queues and wakes.

* From the moment a call's audio is up (answered, dialled or incoming) until
  it ends, the null sound device's capture port (silence) is connected to
  the call: the conference bridge then hands the stream a frame every 20 ms
  and, with VAD off (pjconfig: noVad), every frame goes out as RTP (K14,
  K20).  Without a source the bridge passes "no frame" and pjmedia sends
  nothing at all.  A file that plays is mixed on top of that silence.
* `play`: a 16-bit PCM mono WAV file (any rate; the bridge resamples to
  8 kHz), `loops` times (0 = until stopped; n > 1 as a playlist of the same
  file, so that no gap falls between the loops), one playback per call (a new
  one replaces the old); a `playback_finished` event when it ends (played,
  stopped, replaced, or the call ended); `then_hangup` ends the call after
  the last loop.
* `record`: what the far end sends, to a WAV file (16-bit PCM, 8 kHz mono),
  until `max_seconds`, `silence_seconds` of silence (the bridge's received
  level below `SILENCE_LEVEL`), or the call's end; a `recording_saved` event
  with the file and its duration.
* `send_dtmf`: RFC 2833 telephone-events only (K15: Call.dialDtmf never
  falls back to SIP INFO or in-band tones); received RFC 2833 digits become
  `dtmf` events, one per digit, in order; SIP INFO digits are ignored (K15).
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
from dataclasses import dataclass
import os
import queue
import time
from typing import Any, Final

import pjsua2 as pj

from .commands import CommandError, MediaCommand, Play, Record, SendDtmf, StopPlayback
from .protocol import (
    DtmfEvent,
    ErrorCode,
    Event,
    PlaybackEnd,
    PlaybackFinishedEvent,
    RecordingEnd,
    RecordingSavedEvent,
)
from .stdio import LOGGER, guard
from .wavfile import wav_seconds

# The level (0-255, pjsua_conf_get_signal_level) of what the far end sends under
# which it counts as silence for `silence_seconds`.  Measured: digital silence
# gives 0, a chirp at half of full scale 39.
SILENCE_LEVEL: Final = 10
POLL_SECONDS: Final = 0.1  # how often a recording's silence is looked at
# pjmedia removes a conference port (and so closes a recorder's file) on its
# next clock tick: the file is complete once its header has the length.
CLOSE_POLL_SECONDS: Final = 0.02
CLOSE_WAIT_SECONDS: Final = 1.0


class Player(pj.AudioMediaPlayer):  # type: ignore[misc]
    """A WAV player whose end of file is queued for the pjsua2 thread."""

    def __init__(self, eof: queue.SimpleQueue[Player], wake: Callable[[], None]) -> None:
        """`eof`: where onEof2 puts this player; `wake`: wakes the pjsua2 thread."""
        super().__init__()
        self._eof = eof
        self._wake = wake

    def onEof2(self) -> None:  # noqa: N802  pjsua2 API
        """End of file, on pjmedia's event thread: only queue it (never call pjsua2 here)."""
        self._eof.put(self)
        self._wake()


@dataclass
class Playback:
    """One file playing into one call."""

    call_id: str
    file: str
    player: Player
    loops_left: int  # 0: ends at its (playlist's) end; -1: for ever, until stopped
    then_hangup: bool


@dataclass
class Recording:
    """One call's received audio going to one file."""

    call_id: str
    file: str
    recorder: Any  # pj.AudioMediaRecorder
    started: float  # monotonic
    max_until: float  # monotonic deadline of max_seconds
    silence_seconds: float | None
    last_sound: float  # monotonic time the far end last made a sound
    reason: RecordingEnd | None = None  # set when it ends
    closing_until: float = 0.0  # monotonic: how long to wait for the file's header


class AudioDesk:
    """The sound of every live call, by call id.

    `emit` sends a protocol event; `calls` is the call table's live calls
    (call id -> LineCall); `hangup(call)` ends a call (CallTable.hangup);
    `wake` wakes the pjsua2 thread (set by the engine once it has its waker).
    """

    def __init__(
        self,
        emit: Callable[[Event], None],
        calls: dict[str, Any],
        hangup: Callable[[Any], None],
    ) -> None:
        """No sound yet."""
        self.emit = emit
        self.calls = calls
        self.hangup = hangup
        self.wake: Callable[[], None] = lambda: None
        self.media: dict[str, Any] = {}  # call id -> the call's pj.AudioMedia, while up
        self.playbacks: dict[str, Playback] = {}
        self.recordings: dict[str, Recording] = {}
        self.closing: list[Recording] = []  # ended, the file not yet complete
        self.eof: queue.SimpleQueue[Player] = queue.SimpleQueue()

    # -- from the calls --------------------------------------------------------------

    def on_media_state(self, call: Any) -> None:
        """The call's media changed: once its audio is up, silence goes out (K20)."""
        call_id = call.record.call_id
        info = call.getInfo()
        for index, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            audio = call.getAudioMedia(index)
            if call_id not in self.media:
                silence = pj.Endpoint.instance().audDevManager().getCaptureDevMedia()
                silence.startTransmit(audio)
            self.media[call_id] = audio
            return

    def on_dtmf_digit(self, call: Any, prm: Any) -> None:
        """A digit from the far end: a `dtmf` event if it came as RFC 2833 (K15)."""
        if prm.method != pj.PJSUA_DTMF_METHOD_RFC2833:
            LOGGER.info("DTMF by SIP INFO ignored (K15: RFC 2833 only)")
            return
        self.emit(DtmfEvent(call_id=call.record.call_id, digit=str(prm.digit), time=time.time()))

    def on_call_ended(self, call_id: str) -> None:
        """The call ended: its playback and recording end with it."""
        self.media.pop(call_id, None)
        self._end_playback(call_id, PlaybackEnd.ENDED)
        self._end_recording(call_id, RecordingEnd.ENDED)

    # -- commands ----------------------------------------------------------------------

    def execute(self, command: MediaCommand) -> dict[str, Any]:
        """Run a media command; its result, or CommandError."""
        match command:
            case Play():
                return self.play(command)
            case StopPlayback():
                return {"stopped": self._end_playback(command.call_id, PlaybackEnd.STOPPED)}
            case Record():
                return self.record(command)
            case SendDtmf():
                call = self._call(command.call_id)
                self._audio(command.call_id)
                try:
                    call.dialDtmf(command.digits)  # K15: RFC 2833 only
                except pj.Error as err:
                    raise CommandError(ErrorCode.NO_DTMF, _reason(err)) from None
                return {}

    def _call(self, call_id: str) -> Any:
        call = self.calls.get(call_id)
        if call is None or call.record.ended or call.record.hanging_up:
            raise CommandError(ErrorCode.NO_SUCH_CALL, f"no call {call_id[:20]!r}")
        return call

    def _audio(self, call_id: str) -> Any:
        self._call(call_id)
        audio = self.media.get(call_id)
        if audio is None:
            raise CommandError(ErrorCode.NOT_ANSWERED, f"call {call_id[:20]!r} has no audio yet")
        return audio

    def play(self, command: Play) -> dict[str, Any]:
        """Start playing `command.file` into the call (replacing what plays)."""
        audio = self._audio(command.call_id)
        _check_readable(command.file)
        player = Player(self.eof, self.wake)
        try:
            if command.loops == 1:
                player.createPlayer(command.file, pj.PJMEDIA_FILE_NO_LOOP)
            elif command.loops == 0:  # until stopped: pjmedia rewinds by itself
                player.createPlayer(command.file, 0)
            else:
                # The same file n times as one playlist: pjmedia goes from one to
                # the next in its clock thread, without a gap between the loops.
                files = pj.StringVector()
                for _ in range(command.loops):
                    files.append(command.file)
                player.createPlaylist(files, "", pj.PJMEDIA_FILE_NO_LOOP)
        except pj.Error as err:
            raise CommandError(ErrorCode.BAD_FILE, f"file: {_reason(err)}") from None
        self._end_playback(command.call_id, PlaybackEnd.REPLACED)
        player.startTransmit(audio)
        self.playbacks[command.call_id] = Playback(
            call_id=command.call_id,
            file=command.file,
            player=player,
            loops_left=0 if command.loops else -1,
            then_hangup=command.then_hangup,
        )
        return {}

    def record(self, command: Record) -> dict[str, Any]:
        """Start recording the call's received audio to `command.file`."""
        audio = self._audio(command.call_id)
        if command.call_id in self.recordings:
            raise CommandError(ErrorCode.ALREADY_RECORDING, "this call is being recorded already")
        folder = os.path.dirname(command.file)
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            raise CommandError(
                ErrorCode.BAD_FILE, "file: its folder does not exist or is read-only"
            )
        if os.path.exists(command.file):
            raise CommandError(ErrorCode.BAD_FILE, "file: exists already")
        recorder = pj.AudioMediaRecorder()
        try:
            recorder.createRecorder(command.file)
        except pj.Error as err:
            raise CommandError(ErrorCode.BAD_FILE, f"file: {_reason(err)}") from None
        audio.startTransmit(recorder)
        now = time.monotonic()
        self.recordings[command.call_id] = Recording(
            call_id=command.call_id,
            file=command.file,
            recorder=recorder,
            started=now,
            max_until=now + command.max_seconds,
            silence_seconds=command.silence_seconds,
            last_sound=now,
        )
        return {}

    # -- timers ------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The monotonic time `tick` must run next (None: nothing to watch)."""
        if self.closing:
            return time.monotonic() + CLOSE_POLL_SECONDS
        if not self.recordings:
            return None
        return min(
            min(r.max_until, time.monotonic() + POLL_SECONDS) if r.silence_seconds else r.max_until
            for r in self.recordings.values()
        )

    def tick(self) -> None:
        """Ends of files (queued by the players), recordings' limits."""
        while True:
            try:
                player = self.eof.get_nowait()
            except queue.Empty:
                break
            guard(self._on_eof, player)
        now = time.monotonic()
        for rec in list(self.recordings.values()):
            if now >= rec.max_until:
                self._end_recording(rec.call_id, RecordingEnd.MAX_LENGTH)
            elif rec.silence_seconds:
                audio = self.media.get(rec.call_id)
                # The call port's "tx" level is what it hands the bridge: the far end's sound.
                if audio is not None and audio.getTxLevel() >= SILENCE_LEVEL:
                    rec.last_sound = now
                elif now - rec.last_sound >= rec.silence_seconds:
                    self._end_recording(rec.call_id, RecordingEnd.SILENCE)
        for rec in list(self.closing):
            duration = wav_seconds(rec.file)
            if duration > 0 or now >= rec.closing_until:
                self.closing.remove(rec)
                self._saved(rec, duration)

    def _on_eof(self, player: Player) -> None:
        playback = next((p for p in self.playbacks.values() if p.player is player), None)
        if playback is None:
            return  # stopped meanwhile
        if playback.loops_left != 0:
            return  # playing until stopped: pjmedia rewinds it by itself
        self._end_playback(playback.call_id, PlaybackEnd.FINISHED)
        call = self.calls.get(playback.call_id)
        if playback.then_hangup and call is not None and not call.record.hanging_up:
            self.hangup(call)

    # -- ends ----------------------------------------------------------------------------

    def _end_playback(self, call_id: str, reason: PlaybackEnd) -> bool:
        playback = self.playbacks.pop(call_id, None)
        if playback is None:
            return False
        audio = self.media.get(call_id)
        if audio is not None:
            with contextlib.suppress(pj.Error):
                playback.player.stopTransmit(audio)
        self.emit(
            PlaybackFinishedEvent(
                call_id=call_id, file=playback.file, reason=reason, time=time.time()
            )
        )
        return True

    def _end_recording(self, call_id: str, reason: RecordingEnd) -> None:
        rec = self.recordings.pop(call_id, None)
        if rec is None:
            return
        rec.recorder = None  # destroying the recorder has pjmedia complete the WAV header
        rec.reason = reason
        rec.closing_until = time.monotonic() + CLOSE_WAIT_SECONDS
        self.closing.append(rec)

    def _saved(self, rec: Recording, duration: float) -> None:
        assert rec.reason is not None
        self.emit(
            RecordingSavedEvent(
                call_id=rec.call_id,
                file=rec.file,
                duration=duration,
                reason=rec.reason,
                time=time.time(),
            )
        )

    def clear(self) -> None:
        """Drop every pjsua2 object (before libDestroy)."""
        for call_id in list(self.playbacks):
            self._end_playback(call_id, PlaybackEnd.ENDED)
        for call_id in list(self.recordings):
            self._end_recording(call_id, RecordingEnd.ENDED)
        for rec in self.closing:
            self._saved(rec, wav_seconds(rec.file))
        self.closing.clear()
        self.media.clear()


def _check_readable(path: str) -> None:
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise CommandError(ErrorCode.BAD_FILE, "file: not found or not readable")


def _reason(err: Any) -> str:
    return str(getattr(err, "reason", err))[:200]
