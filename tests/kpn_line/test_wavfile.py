"""wavfile.complete_header: the header a dead engine left open (sizes 0) gets the sizes of
what reached the disk; a complete file, or none, is left alone (pure, no pjsua2)."""

from __future__ import annotations

from pathlib import Path
import struct
import wave

import pytest

from custom_components.kpn_voip.kpn_line.wavfile import (
    CompletedWav,
    WavHeaderError,
    complete_header,
    wav_seconds,
)
from kpn_devtools.sound import write_wav

RATE = 8000  # K14: what the engine records


def _fmt(channels: int = 1, rate: int = RATE, bits: int = 16, tag: int = 1) -> bytes:
    align = channels * bits // 8
    body = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    return b"fmt " + struct.pack("<I", len(body)) + body


def open_wav(audio: bytes, *, extra: bytes = b"", channels: int = 1) -> bytes:
    """A WAV file as pjmedia's writer leaves it until the recorder closes: RIFF and data
    sizes 0, the audio after the header; `extra`: chunks between fmt and data."""
    return b"RIFF\0\0\0\0WAVE" + _fmt(channels) + extra + b"data\0\0\0\0" + audio


def samples(n: int) -> bytes:
    return struct.pack(f"<{n}h", *((i * 37) % 20000 - 10000 for i in range(n)))


def test_an_open_header_gets_the_sizes_of_the_audio_on_disk(tmp_path: Path) -> None:
    """pjmedia's open header (44 bytes, sizes 0) + 1.5 s of audio: the sizes are written,
    every byte of audio is kept, wave reads it back whole."""
    audio = samples(12000)
    path = tmp_path / "cut.wav"
    path.write_bytes(open_wav(audio))
    assert wav_seconds(str(path)) == 0.0  # unreadable as it is
    done = complete_header(str(path))
    assert done == CompletedWav(seconds=1.5, audio_bytes=24000, completed=True)
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (RATE, 1, 2)
        assert wav.readframes(wav.getnframes()) == audio
    data = path.read_bytes()
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    assert wav_seconds(str(path)) == 1.5


def test_a_part_of_a_sample_frame_at_the_end_is_cut(tmp_path: Path) -> None:
    """The writer died in the middle of a stereo frame: the part frame goes, the rest stays."""
    audio = samples(802)  # 401 stereo frames
    path = tmp_path / "cut.wav"
    path.write_bytes(open_wav(audio + b"\x01\x02\x03", channels=2))
    done = complete_header(str(path))
    assert (done.audio_bytes, done.completed) == (1604, True)
    with wave.open(str(path), "rb") as wav:
        assert wav.getnframes() == 401
        assert wav.readframes(401) == audio


def test_chunks_before_the_data_are_skipped(tmp_path: Path) -> None:
    """A LIST chunk of odd length (padded to even) between fmt and data."""
    audio = samples(800)
    listing = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\0"
    path = tmp_path / "cut.wav"
    path.write_bytes(open_wav(audio, extra=listing))
    assert complete_header(str(path)) == CompletedWav(0.1, 1600, True)
    with wave.open(str(path), "rb") as wav:
        assert wav.readframes(800) == audio


def test_header_only_is_a_valid_empty_recording(tmp_path: Path) -> None:
    """Killed before any audio reached the disk: a 0 s file that plays (nothing)."""
    path = tmp_path / "cut.wav"
    path.write_bytes(open_wav(b""))
    assert complete_header(str(path)) == CompletedWav(0.0, 0, True)
    with wave.open(str(path), "rb") as wav:
        assert wav.getnframes() == 0


def test_a_complete_file_is_left_alone(tmp_path: Path) -> None:
    """The recorder closed it (sizes right): not one byte changes."""
    path = write_wav(tmp_path / "done.wav", [i % 300 for i in range(4000)])
    before = path.read_bytes()
    assert complete_header(str(path)) == CompletedWav(0.5, 8000, False)
    assert path.read_bytes() == before


def test_a_closed_empty_file_is_left_alone(tmp_path: Path) -> None:
    """A recording closed with no audio (data size 0, RIFF size 36) is complete."""
    path = write_wav(tmp_path / "empty.wav", [])
    assert complete_header(str(path)) == CompletedWav(0.0, 0, False)


def test_a_data_size_past_the_end_is_corrected(tmp_path: Path) -> None:
    """A data size larger than the file (it was cut after the header was written)."""
    audio = samples(800)
    raw = bytearray(open_wav(audio))
    struct.pack_into("<I", raw, 4, 99999)
    struct.pack_into("<I", raw, 40, 99999)
    path = tmp_path / "cut.wav"
    path.write_bytes(bytes(raw))
    assert complete_header(str(path)) == CompletedWav(0.1, 1600, True)


@pytest.mark.parametrize(
    "content",
    [
        b"",  # the engine died as it made the file
        b"RIFF\0\0",
        b"RIFX\0\0\0\0WAVE",
        b"RIFF\0\0\0\0WAVE",  # no chunks
        b"RIFF\0\0\0\0WAVE" + b"data\0\0\0\0" + b"\0" * 8,  # data before fmt
        b"RIFF\0\0\0\0WAVE" + b"fmt \x04\0\0\0abcd",  # a fmt chunk too short
        b"RIFF\0\0\0\0WAVE" + _fmt(tag=0x55) + b"data\0\0\0\0" + b"\0" * 6,  # MP3 in WAV
    ],
    ids=["empty", "short", "rifx", "no_chunks", "data_first", "short_fmt", "not_pcm"],
)
def test_no_wav_header_to_complete(tmp_path: Path, content: bytes) -> None:
    """Nothing recognisable: WavHeaderError, not a broken guess."""
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(WavHeaderError):
        complete_header(str(path))


def test_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        complete_header(str(tmp_path / "none.wav"))
