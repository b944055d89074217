"""The WAV files of recordings: their length, and the header a dead engine left open.

pjmedia's WAV writer (pjsua2 AudioMediaRecorder) writes a header whose RIFF
and data chunk sizes are 0 when it opens the file, the audio as its buffer
fills, and the two sizes only when the recorder is closed.  An engine killed
mid-recording (SIGKILL, a crash) leaves such a header: every reader takes the
file for broken, though the audio that reached the disk is in it.
`complete_header` writes the two sizes from the file's length, so that the
file plays again.  The header is read and written with `struct` (RIFF,
Microsoft's "Multimedia Programming Interface and Data Specifications 1.0"),
the result is checked by the standard library's `wave`; nothing here decodes
audio.  Pure Python, no pjsua2: Home Assistant runs it after the engine died.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
import struct
from typing import Final
import wave

_RIFF: Final = struct.Struct("<4sI4s")  # "RIFF", size of what follows, "WAVE"
_CHUNK: Final = struct.Struct("<4sI")  # chunk id, size of its body
_SIZE: Final = struct.Struct("<I")
_BLOCK_ALIGN: Final = struct.Struct("<H")  # bytes per sample frame, at 12 in "fmt "
_MAX_SIZE: Final = 0xFFFFFFFF  # RIFF sizes are 32-bit


class WavHeaderError(ValueError):
    """The file is no RIFF/WAVE file with a "fmt " and a "data" chunk (nothing to complete)."""


@dataclass(frozen=True, slots=True)
class CompletedWav:
    """A recording's file after `complete_header`.

    `seconds`: its length (wave's frames / rate, rounded to ms); `audio_bytes`:
    the size of its data chunk; `completed`: True if the header had to be
    written (the recorder never closed the file).
    """

    seconds: float
    audio_bytes: int
    completed: bool


def wav_seconds(path: str) -> float:
    """The length of a WAV file in seconds (0.0 if it cannot be read)."""
    try:
        with wave.open(path, "rb") as wav:
            return round(wav.getnframes() / wav.getframerate(), 3)
    except (OSError, EOFError, wave.Error):
        return 0.0


def complete_header(path: str) -> CompletedWav:
    """Write the RIFF and data sizes of a WAV file whose recorder never closed it.

    A header whose RIFF size is 0, or whose data size is 0 with audio after it
    or runs past the end of the file, gets the sizes the file's length gives; a trailing part of a
    sample frame is cut off.  A complete header is left alone.  Raises OSError
    (the file cannot be opened or written), WavHeaderError (no WAV header to
    complete: e.g. an empty file, when the engine died before writing it).
    """
    with open(path, "r+b") as file:
        size = os.fstat(file.fileno()).st_size
        head = file.read(_RIFF.size)
        if len(head) < _RIFF.size:
            raise WavHeaderError("no RIFF header")
        riff, riff_size, form = _RIFF.unpack(head)
        if riff != b"RIFF" or form != b"WAVE":
            raise WavHeaderError("not a RIFF/WAVE file")
        block_align = 0
        pos = _RIFF.size
        while pos + _CHUNK.size <= size:
            file.seek(pos)
            chunk_id, chunk_size = _CHUNK.unpack(file.read(_CHUNK.size))
            start = pos + _CHUNK.size
            if chunk_id == b"fmt ":
                body = file.read(min(chunk_size, 16))
                if len(body) < 16:
                    raise WavHeaderError("short fmt chunk")
                (block_align,) = _BLOCK_ALIGN.unpack_from(body, 12)
            elif chunk_id == b"data":
                if not block_align:
                    raise WavHeaderError("data before fmt")
                available = min(size - start, _MAX_SIZE - start)
                # pjmedia writes RIFF size 0 until it closes; a data size 0 with audio
                # after it, or past the end, is no closed file's either
                open_header = (
                    riff_size == 0 or chunk_size > available or chunk_size == 0 < available
                )
                if open_header:
                    chunk_size = available - available % block_align
                    file.seek(pos + 4)
                    file.write(_SIZE.pack(chunk_size))
                    file.seek(4)
                    file.write(_SIZE.pack(start + chunk_size - 8))
                    file.truncate(start + chunk_size)
                break
            pos = start + chunk_size + (chunk_size & 1)  # RIFF chunks are word-aligned
        else:
            raise WavHeaderError("no data chunk")
    try:
        with wave.open(path, "rb") as wav:
            seconds = round(wav.getnframes() / wav.getframerate(), 3)
    except (EOFError, wave.Error) as err:
        raise WavHeaderError(str(err)) from err
    return CompletedWav(seconds=seconds, audio_bytes=chunk_size, completed=open_header)
