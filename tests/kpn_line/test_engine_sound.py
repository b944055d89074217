"""Sound on calls, end to end: the line against a second pjsua2 (the far end) via the stand-in.

K14 (8 kHz), K15 (DTMF as RFC 2833 only), K20 (RTP every 20 ms from answer
to hang-up, also while nothing plays).  What the far end got is the G.711 in
the capture (decoded), what the line got is its own recording; both are
compared with the source audio (normalised cross-correlation after
alignment, kpn_devtools.sound).
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
import statistics

import pytest

from custom_components.kpn_voip.kpn_line.profile import (
    K1_DOMAIN,
    K19_RTP_PORT_MAX,
    K19_RTP_PORT_MIN,
)
from custom_components.kpn_voip.kpn_line.protocol import (
    CallState,
    DtmfEvent,
    PlaybackEnd,
    PlaybackFinishedEvent,
    RecordingEnd,
    RecordingSavedEvent,
)
from kpn_devtools.capture import Packet
from kpn_devtools.farend import FarEnd
from kpn_devtools.kamailio import TEST_ACCOUNT
from kpn_devtools.sound import (
    Rtp,
    chirp,
    decode_alaw,
    parse_rtp,
    read_wav,
    similarity,
    similarity_in_frames,
    telephone_events,
    write_wav,
)

from .conftest import Line, LineFactory

# RTP pacing and audio similarity: alone, after the parallel pass (scripts/test).
pytestmark = [pytest.mark.timeout(120), pytest.mark.serial]

PCMA = 8
MIN_SIMILARITY = 0.9  # the bar for "the same audio"
MAX_DRIFT = 4 * 160  # samples: four 20 ms frames dropped or concealed by a jitter buffer
MAX_JUMPS = 4  # times a jitter buffer may have moved the audio by whole frames


def assert_same_audio(reference: list[int], received: list[int]) -> float:
    """`received` holds `reference` (>= MIN_SIMILARITY), aligned frame by frame.

    A pjsua2 receiver (the far end, or the line recording) conceals or drops
    a 20 ms frame when the busy test machine delays a packet: the alignment
    may move by whole frames, a few times (kpn_devtools.sound.similarity_in_frames).
    """
    score, offsets = similarity_in_frames(reference, received)
    loud = [
        offset
        for offset, start in zip(offsets, range(0, len(reference), 160), strict=True)
        if max(map(abs, reference[start : start + 160])) > 1000
    ]
    jumps = sum(1 for a, b in itertools.pairwise(loud) if a != b)
    assert score >= MIN_SIMILARITY, (score, offsets)
    assert jumps <= MAX_JUMPS, offsets
    return score


def line_rtp(packets: list[Packet], far: FarEnd) -> list[Rtp]:
    """RTP the line sent to `far` (other tests may run RTP on loopback at the same time)."""
    media = next(e for e in far.events if e["event"] == "media")
    line_port, far_port = media["remote_rtp_port"], media["rtp_port"]
    assert K19_RTP_PORT_MIN <= line_port <= K19_RTP_PORT_MAX  # K19
    out = []
    for pkt in packets:
        if pkt.sport == line_port and pkt.dport == far_port:
            rtp = parse_rtp(pkt.payload, pkt.time)
            if rtp is not None and not 72 <= rtp.payload_type <= 76:  # not RTCP (RFC 5761)
                out.append(rtp)
    return out


def assert_steady_stream(rtp: list[Rtp], start: float, end: float) -> dict[str, float]:
    """K20: one packet every 20 ms between `start` and `end` (epoch s), none missing.

    Returns the figures: packets, median and p99 interval (ms), longest gap (ms).
    """
    stream = [p for p in rtp if start <= p.time <= end]
    assert stream, "no RTP from the line"
    # Every 20 ms frame was sent: RTP sequence numbers without a hole, and each
    # audio packet's timestamp 160 samples (20 ms at 8 kHz, K14) after the last.
    seqs = [p.sequence for p in stream]
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs)), seqs
    pairs = itertools.pairwise(stream)
    steps = {
        b.timestamp - a.timestamp for a, b in pairs if a.payload_type == b.payload_type == PCMA
    }
    assert steps == {160}, steps
    audio = [p for p in stream if p.payload_type == PCMA]
    assert all(len(p.payload) == 160 for p in audio)  # 20 ms of A-law (K20)
    times = [p.time for p in stream]
    gaps = sorted((b - a) * 1000 for a, b in itertools.pairwise(times))
    expected = (times[-1] - times[0]) / 0.020
    assert len(stream) >= 0.95 * expected, (len(stream), expected)
    assert 18.0 <= statistics.median(gaps) <= 22.0, gaps
    assert stream[0].time - start < 0.1  # it starts at answer
    assert end - stream[-1].time < 0.1  # and runs until the hang-up
    return {
        "packets": len(stream),
        "median_ms": statistics.median(gaps),
        "p99_ms": gaps[int(0.99 * (len(gaps) - 1))],
        "max_ms": gaps[-1],
    }


def pcma_audio(rtp: list[Rtp], start: float = 0.0, end: float = float("inf")) -> list[int]:
    """The line's A-law audio between `start` and `end`, decoded (G.711, K12)."""
    samples: list[int] = []
    for pkt in rtp:
        if pkt.payload_type == PCMA and start <= pkt.time <= end:
            samples += decode_alaw(pkt.payload)
    return samples


def sip_of(packets: list[Packet]) -> list[str]:
    """The SIP messages among `packets`."""
    out = []
    for pkt in packets:
        text = pkt.payload.decode("utf-8", errors="replace")
        first = text.split("\r\n", 1)[0]
        if first.startswith("SIP/2.0 ") or first.endswith(" SIP/2.0"):
            out.append(text)
    return out


def telephone_event_pt(messages: list[str], rtp_port: int) -> int:
    """The telephone-event payload type in the line's SDP (the one with its RTP port)."""
    for text in messages:
        if f"m=audio {rtp_port} " not in text:
            continue
        for line in text.splitlines():
            if "telephone-event/8000" in line and line.startswith("a=rtpmap:"):
                return int(line.split(":", 1)[1].split()[0])
    raise AssertionError("no telephone-event in the line's SDP")


def line_events[E](line: Line, kind: type[E]) -> list[E]:
    return [e for e in line.events if isinstance(e, kind)]


async def test_answered_call_sound_both_ways_and_dtmf(
    kamailio, capture, line_factory: LineFactory, far_ends: list[FarEnd], tmp_path: Path
) -> None:
    """An incoming call the line answers: silence goes out at once and every 20 ms (K20);
    the far end's speech is recorded (recording_saved, silence end); its digits arrive as
    `dtmf` events in order; the line's chirp reaches the far end; the line's digits arrive
    there as RFC 2833 telephone-events, never in-band or SIP INFO (K15)."""
    far_src = chirp(1.5, lead=0.3)
    line_src = chirp(1.2, start_hz=3000.0, end_hz=400.0)
    far_wav = write_wav(tmp_path / "far-src.wav", far_src)
    line_wav = write_wav(tmp_path / "line-src.wav", line_src)
    recording = tmp_path / "line-rx.wav"
    line = await line_factory(kamailio.line_settings())
    cap = capture(bpf="udp")
    far = FarEnd(
        call=f"sip:{TEST_ACCOUNT.number}@{K1_DOMAIN}",
        proxy=f"{kamailio.host}:{kamailio.port}",
        play=far_wav,
        dtmf="159#",
        dtmf_at=2.5,
    )
    far_ends.append(far)
    ringing = await line.wait_call(CallState.RINGING, timeout=10)
    call_id = ringing.call_id
    await line.client.answer(call_id)
    answered = await line.wait_call(CallState.ANSWERED, call_id)
    await far.async_wait_event(lambda e: e["event"] == "media")
    await line.client.record(call_id, str(recording), max_seconds=10, silence_seconds=1.0)
    saved = await line.wait(lambda e: isinstance(e, RecordingSavedEvent), timeout=10)
    assert isinstance(saved, RecordingSavedEvent)
    assert saved.reason == RecordingEnd.SILENCE
    assert saved.file == str(recording)
    assert 1.8 <= saved.duration <= 4.0, saved
    got, rate = read_wav(recording)
    assert rate == 8000  # K14
    assert_same_audio(far_src[int(0.3 * 8000) :], got)
    # the far end's digits, as dtmf events in order
    await line.wait(lambda e: len(line_events(line, DtmfEvent)) >= 4, timeout=10)
    assert [e.digit for e in line_events(line, DtmfEvent)] == list("159#")
    assert {e.call_id for e in line_events(line, DtmfEvent)} == {call_id}
    # ... as they arrive, not bunched: the far end sent them in one dialDtmf, each
    # digit a telephone-event of its own duration (pjsua2's queued onDtmfDigit once came
    # up to 1 s late, all within 2 ms: engine.ANSWERED_WAIT_MS)
    times = [e.time for e in line_events(line, DtmfEvent)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 0.05, gaps
    # the line's chirp to the far end
    await line.client.play(call_id, str(line_wav))
    finished = await line.wait(lambda e: isinstance(e, PlaybackFinishedEvent), timeout=10)
    assert isinstance(finished, PlaybackFinishedEvent)
    assert finished.reason == PlaybackEnd.FINISHED
    assert finished.file == str(line_wav)
    # the line's digits (K15)
    await line.client.send_dtmf(call_id, "2580*")
    await far.async_wait_event(lambda e: len(far.digits()) >= 5, timeout=10)
    assert far.digits() == [(d, "rfc2833") for d in "2580*"]
    await asyncio.sleep(0.5)  # silence after the digits, checked below
    await line.client.hangup(call_id)
    ended = await line.wait_call(CallState.ENDED, call_id)
    await far.async_wait_exit()
    cap.wait_for(lambda pkts: bool(pkts), timeout=2, settle=0.3)
    packets = cap.packets()
    rtp = line_rtp(packets, far)
    figures = assert_steady_stream(rtp, answered.time, ended.time)
    print(f"answered call: {figures}")
    # the G.711 the far end got (decoded from the capture) holds the line's chirp;
    # on the wire nothing is dropped: one alignment for the whole chirp
    score, _ = similarity(line_src, pcma_audio(rtp))
    assert score >= MIN_SIMILARITY, score
    # K15: the digits went as telephone-events, the audio around them is silence
    # (no in-band tones), and no SIP INFO was sent
    messages = sip_of(packets)
    line_port = next(e for e in far.events if e["event"] == "media")["remote_rtp_port"]
    te = telephone_event_pt(messages, line_port)
    assert telephone_events(rtp, te) == list("2580*")
    after_play = pcma_audio(rtp, finished.time + 0.1, ended.time)
    assert after_play
    assert max(abs(s) for s in after_play) <= 16, "in-band sound after the playback"
    # (the line's SIP goes to the stand-in; the loopback capture also sees other
    # tests' INFOs, and the far end's SIP goes to the stand-in too)
    far_sip = next(e for e in far.events if e["event"] == "ready")["port"]
    assert not [
        p
        for p in packets
        if p.dport == kamailio.port and p.sport != far_sip and p.payload.startswith(b"INFO ")
    ]


async def test_dialled_call_silence_then_playback_then_hangup(
    kamailio_factory, capture, line_factory: LineFactory, far_ends: list[FarEnd], tmp_path: Path
) -> None:
    """A call the line dials: RTP every 20 ms from the far end's 200 OK on, silence while
    nothing plays (K20); a chirp played twice (loops) reaches the far end; `then_hangup`
    ends the call after the last loop."""
    src = chirp(0.8, lead=0.05, tail=0.05)
    wav = write_wav(tmp_path / "src.wav", src)
    far = FarEnd(answer_after=0.3)
    far_ends.append(far)
    kam = kamailio_factory(forward_to=far.address)
    line = await line_factory(kam.line_settings())
    cap = capture(bpf="udp")
    call_id = await line.client.dial("0612345678")
    answered = await line.wait_call(CallState.ANSWERED, call_id, timeout=10)
    await asyncio.sleep(1.0)  # nothing plays: silence must still go out
    await line.client.play(call_id, str(wav), loops=2, then_hangup=True)
    finished = await line.wait(lambda e: isinstance(e, PlaybackFinishedEvent), timeout=10)
    assert isinstance(finished, PlaybackFinishedEvent)
    assert finished.reason == PlaybackEnd.FINISHED
    ended = await line.wait_call(CallState.ENDED, call_id)
    assert 0 <= ended.time - finished.time < 0.5
    await far.async_wait_exit()
    cap.wait_for(lambda pkts: bool(pkts), timeout=2, settle=0.3)
    packets = cap.packets()
    rtp = line_rtp(packets, far)
    figures = assert_steady_stream(rtp, answered.time, ended.time)
    # the far end's 200 OK (as the stand-in relays it to the line) -> the line's first RTP
    oks = [
        p.time
        for p in packets
        if p.payload.startswith(b"SIP/2.0 200")
        and b" INVITE\r\n" in p.payload
        and p.sport == kam.port
    ]
    assert oks
    figures["ok_to_first_rtp_ms"] = (rtp[0].time - oks[0]) * 1000
    assert 0 < figures["ok_to_first_rtp_ms"] < 100  # the goal
    print(f"dialled call: {figures}")
    # both loops, one after the other (a frame or so between them: the end of
    # the file is noticed on the engine's thread, which then rewinds it)
    assert_same_audio(src + src, pcma_audio(rtp))
