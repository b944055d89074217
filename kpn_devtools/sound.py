"""Test sound: chirps as WAV files, G.711 and RTP decoding, and the similarity check.

The sound tests compare what a peer received with what was sent: a chirp
(a sweep over the telephone band, 300-3400 Hz) is unambiguous to align.
`similarity` is the normalised cross-correlation at the best alignment
(1.0 = the same waveform, up to a gain).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
import math
from pathlib import Path
import struct
import wave

import numpy as np

RATE = 8000  # G.711 (K14)


def chirp(
    seconds: float,
    *,
    start_hz: float = 300.0,
    end_hz: float = 3000.0,
    amplitude: float = 0.5,
    lead: float = 0.0,
    tail: float = 0.0,
) -> list[int]:
    """A linear sweep of `seconds` (16-bit samples at 8 kHz), with `lead`/`tail` s of silence."""
    n = int(seconds * RATE)
    k = (end_hz - start_hz) / seconds
    peak = amplitude * 32767
    sweep = [
        round(peak * math.sin(2 * math.pi * (start_hz * t + k * t * t / 2)))
        for t in (i / RATE for i in range(n))
    ]
    return [0] * int(lead * RATE) + sweep + [0] * int(tail * RATE)


def write_wav(path: Path, samples: Sequence[int], rate: int = RATE) -> Path:
    """`samples` as a 16-bit PCM mono WAV file; returns `path`."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return path


def read_wav(path: Path | str) -> tuple[list[int], int]:
    """A 16-bit mono WAV file's samples and rate."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2, "16-bit PCM only"
        assert wav.getnchannels() == 1, "mono only"
        frames = wav.readframes(wav.getnframes())
        return list(struct.unpack(f"<{len(frames) // 2}h", frames)), wav.getframerate()


def alaw_to_linear(byte: int) -> int:
    """One G.711 A-law byte as a 16-bit sample (ITU-T G.711)."""
    a = byte ^ 0x55
    seg = (a & 0x70) >> 4
    value = (a & 0x0F) << 4
    value += 8 if seg == 0 else 0x108
    if seg > 1:
        value <<= seg - 1
    return value if a & 0x80 else -value


_ALAW = [alaw_to_linear(b) for b in range(256)]


def decode_alaw(payload: bytes) -> list[int]:
    """G.711 A-law bytes as 16-bit samples."""
    return [_ALAW[b] for b in payload]


@dataclass(frozen=True)
class Rtp:
    """One RTP packet (RFC 3550): header fields and payload, and when it was captured."""

    time: float
    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes, captured: float = 0.0) -> Rtp | None:
    """An RTP packet, or None if `data` is none (version 2, no extension handling)."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    csrc = data[0] & 0x0F
    seq, ts, ssrc = struct.unpack("!HII", data[2:12])
    return Rtp(
        time=captured,
        payload_type=data[1] & 0x7F,
        marker=bool(data[1] & 0x80),
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=data[12 + 4 * csrc :],
    )


def telephone_events(packets: Iterable[Rtp], payload_type: int) -> list[str]:
    """The digits of RFC 2833/4733 telephone-event packets, once per event, in order."""
    names = "0123456789*#ABCD"
    digits: list[str] = []
    last_start: int | None = None
    for pkt in packets:
        if pkt.payload_type != payload_type or len(pkt.payload) < 4:
            continue
        if pkt.timestamp != last_start:  # one event = one RTP timestamp
            last_start = pkt.timestamp
            event = pkt.payload[0]
            digits.append(names[event] if event < len(names) else f"<{event}>")
    return digits


def similarity(reference: Sequence[int], received: Sequence[int]) -> tuple[float, int]:
    """Normalised cross-correlation of `reference` at its best offset in `received`.

    Returns (correlation in -1..1, offset in samples).  `received` is padded
    with silence at its end, so that a reference cut short there (a call
    hung up while the last frames were still in a jitter buffer) is found too.
    """
    scores = _scores(reference, received)
    best = int(np.argmax(scores))
    return float(scores[best]), best


def _scores(reference: Sequence[int], received: Sequence[int]) -> np.ndarray:
    """The normalised cross-correlation at every offset (see `similarity`)."""
    ref = np.asarray(reference, dtype=float)
    n = len(ref)
    rec = np.concatenate([np.asarray(received, dtype=float), np.zeros(n)])
    size = 1 << (len(rec) + n).bit_length()
    corr = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)
    corr = corr[: len(rec) - n + 1]
    energy = np.concatenate([[0.0], np.cumsum(rec * rec)])
    window = energy[n:] - energy[:-n]
    norm = np.sqrt(np.maximum(window, 1e-9) * float(np.dot(ref, ref)))
    return np.asarray(corr / norm)


def similarity_in_frames(
    reference: Sequence[int], received: Sequence[int], frame: int = 160, slack: int = 4
) -> tuple[float, list[int]]:
    """`similarity` after aligning each 20 ms frame (K20) of `reference` on its own.

    A receiver's jitter buffer conceals a frame that came too late (a frame
    more) or drops one when it runs too full (a frame less), and a player
    rewinding for its next loop leaves a frame between the loops: what
    follows moves by whole frames.  So: the offset of the first quarter
    second with sound, then for each frame the best of the previous frame's
    offset +- up to `slack` frames, and the normalised cross-correlation of
    `reference` with the received frames so aligned.  Returns it and the
    frames' offsets (in samples).
    """
    ref = np.asarray(reference, dtype=float)
    first = int(np.argmax(np.abs(ref) > 0)) if np.any(ref) else 0
    # the earliest place it is found (a file played in loops is there more than once)
    scores = _scores(reference[first : first + RATE // 4], received)
    found = int(np.argmax(scores >= 0.95 * float(np.max(scores))))
    pad = slack * frame
    rec = np.concatenate(
        [np.zeros(pad), np.asarray(received, dtype=float), np.zeros(len(ref) + 2 * pad)]
    )
    offset = found - first
    aligned = np.zeros(len(ref))
    offsets: list[int] = []
    for start in range(0, len(ref), frame):
        part = ref[start : start + frame]
        if np.any(part):
            candidates = [offset + shift * frame for shift in range(-slack, slack + 1)]
            offset = max(
                (c for c in candidates if c + start + pad >= 0),
                key=lambda c: float(
                    np.dot(part, rec[c + start + pad : c + start + pad + len(part)])
                ),
            )
        at = offset + start + pad
        aligned[start : start + len(part)] = rec[at : at + len(part)]
        offsets.append(offset)
    norm = float(np.sqrt(np.dot(ref, ref) * np.dot(aligned, aligned))) or 1e-9
    return float(np.dot(ref, aligned)) / norm, offsets
