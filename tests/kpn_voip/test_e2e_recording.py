"""End to end: a message being recorded when the engine is killed (SIGKILL) is kept.

Home Assistant + the real engine (pjsua2) + Kamailio + a second pjsua2 as the
caller (kpn_devtools.farend), who speaks a sweep.  The line answers, records
with kpn_voip.record, and its engine is killed mid-message: pjmedia's WAV
writer leaves RIFF and data sizes 0 in the file; Home Assistant completes the
header and fires recording_saved (reason cut_off) with the length of what
reached the file, which holds the caller's audio.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
import signal
import struct
import time
from typing import Any

from homeassistant.core import HomeAssistant
import pytest

from custom_components.kpn_voip.const import DOMAIN
from custom_components.kpn_voip.kpn_line.profile import K1_DOMAIN
from kpn_devtools.farend import FarEnd
from kpn_devtools.kamailio import TEST_ACCOUNT, Kamailio
from kpn_devtools.sound import chirp, read_wav, similarity, similarity_in_frames, write_wav

from .test_e2e import (  # the same set-up as the other end-to-end tests
    _engine_children,
    _entry,
    _no_secrets_logged,  # noqa: F401  (autouse fixture)
    _real_pjsua2_check,  # noqa: F401  (autouse fixture)
    _setup_registered,
    _unload,
    _wait,
    events,  # noqa: F401  (fixture)
)

# RTP and audio similarity: alone, after the parallel pass (scripts/test).
pytestmark = [pytest.mark.peers, pytest.mark.serial, pytest.mark.timeout(120)]

RECORD_SECONDS = 3.0  # how long the line records before its engine is killed
# What pjmedia may hold in its writer's buffer (PJMEDIA_FILE_PORT_BUFSIZE, 4000 bytes
# = 0.25 s at 8 kHz 16-bit) and the bridge's few frames on the way: lost with the process.
MAX_LOST_SECONDS = 0.5
MIN_SIMILARITY = 0.9  # as test_engine_sound.py: "the same audio"
SETTLE = 4000  # samples: the recording's first half second, compared on its own


def _event(fired: list[dict[str, Any]], event_type: str) -> dict[str, Any] | None:
    return next((e for e in fired if e["event_type"] == event_type), None)


async def test_engine_killed_mid_recording_keeps_the_message(
    hass: HomeAssistant,
    kamailio: Kamailio,
    events: list[dict[str, Any]],  # noqa: F811
    tmp_path: Path,
) -> None:
    """SIGKILL of the engine 3 s into a recording: recording_saved (cut_off) with the
    length of the audio on disk (at most MAX_LOST_SECONDS short of the time recorded),
    the WAV file plays (8 kHz mono, K14) and holds the caller's sweep."""
    media = tmp_path / "media"
    media.mkdir()
    hass.config.media_dirs = {"local": str(media)}
    speech = chirp(10.0)
    entry = _entry(kamailio)
    await _setup_registered(hass, entry)
    far = FarEnd(
        call=f"sip:{TEST_ACCOUNT.number}@{K1_DOMAIN}",
        proxy=f"{kamailio.host}:{kamailio.port}",
        play=write_wav(tmp_path / "speech.wav", speech),
    )
    try:
        await _wait(hass, lambda: _event(events, "incoming_call") is not None, what="ringing")
        call_id = _event(events, "incoming_call")["call_id"]  # type: ignore[index]
        await hass.services.async_call(DOMAIN, "answer", {"call_id": call_id}, blocking=True)
        await far.async_wait_event(lambda e: e["event"] == "media")
        response = await hass.services.async_call(
            DOMAIN,
            "record",
            {"call_id": call_id, "max_seconds": 60},
            blocking=True,
            return_response=True,
        )
        assert response is not None
        started = time.monotonic()
        file = Path(response["file"])
        await asyncio.sleep(RECORD_SECONDS)
        (engine,) = _engine_children()
        os.kill(engine, signal.SIGKILL)
        recorded = time.monotonic() - started
        # as the killed engine left it: pjmedia's open header, RIFF and data sizes 0
        raw = file.read_bytes()  # before the loop runs on (Home Assistant completes it)
        assert raw[:4] == b"RIFF"
        assert struct.unpack_from("<I", raw, 4)[0] == 0
        assert raw[36:40] == b"data"
        assert struct.unpack_from("<I", raw, 40)[0] == 0

        await _wait(hass, lambda: _event(events, "recording_saved") is not None, what="saved")
        saved = _event(events, "recording_saved")
        assert saved is not None
        ended = _event(events, "call_ended")
        assert ended is not None
        assert ended["reason"] == "engine stopped"
        assert (saved["call_id"], saved["reason"], saved["file"]) == (call_id, "cut_off", str(file))
        assert saved["media_content_id"] == response["media_content_id"]
        got, rate = await hass.async_add_executor_job(read_wav, file)
        assert rate == 8000  # K14
        kept = len(got) / rate
        assert saved["duration"] == pytest.approx(kept, abs=0.001)
        assert recorded - MAX_LOST_SECONDS <= kept <= recorded + 0.1, (recorded, kept)
        # the caller's sweep after the first half second (the far end's jitter buffer
        # settles, it moved the audio by a frame there in some runs): where it is in the
        # sweep, then frame by frame (a jitter buffer may move whole frames)
        settled = got[SETTLE:]
        found, start = similarity(settled[:SETTLE], speech)
        assert found >= MIN_SIMILARITY, found
        score, _ = similarity_in_frames(speech[start : start + len(settled)], settled)
        print(
            f"cut-off recording: recorded {recorded * 1000:.0f} ms, kept {kept * 1000:.0f} ms"
            f" ({len(got) * 2} bytes of audio, {len(raw) - 44} on disk at the kill),"
            f" lost {(recorded - kept) * 1000:.0f} ms; similarity {score:.3f}"
        )
        assert score >= MIN_SIMILARITY, score
    finally:
        far.stop()
        await _unload(hass, entry)
