"""The sound commands' rules and errors, against a real call (a pjsua2 far end via the stand-in).

play / stop_playback / record / send_dtmf: which call, which file, when; and
how each playback and recording ends (docs/engine-protocol.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from custom_components.kpn_voip.kpn_line.commands import Play, Record, SendDtmf
from custom_components.kpn_voip.kpn_line.profile import K1_DOMAIN
from custom_components.kpn_voip.kpn_line.protocol import (
    CallState,
    PlaybackEnd,
    PlaybackFinishedEvent,
    RecordingEnd,
    RecordingSavedEvent,
)
from kpn_devtools.farend import FarEnd
from kpn_devtools.kamailio import TEST_ACCOUNT
from kpn_devtools.sound import chirp, write_wav

from .conftest import Line, LineFactory, expect_error

# Recording lengths on real calls: alone, after the parallel pass (scripts/test).
pytestmark = [pytest.mark.timeout(120), pytest.mark.serial]


def finished(line: Line) -> list[PlaybackFinishedEvent]:
    return [e for e in line.events if isinstance(e, PlaybackFinishedEvent)]


def saved(line: Line) -> list[RecordingSavedEvent]:
    return [e for e in line.events if isinstance(e, RecordingSavedEvent)]


async def test_sound_commands_rules_and_ends(
    kamailio, line_factory: LineFactory, far_ends: list[FarEnd], tmp_path: Path
) -> None:
    """Errors: no such call, not answered (ringing), files that cannot be played or
    made, a second recording (already_recording), bad digits.  Ends: stopped, replaced,
    max_length, and the call's end (for both a playback and a recording)."""
    tone = write_wav(tmp_path / "tone.wav", chirp(0.5))
    long_tone = write_wav(tmp_path / "long.wav", chirp(3.0))
    not_wav = tmp_path / "text.wav"
    not_wav.write_text("this is no WAV file")
    line = await line_factory(kamailio.line_settings())
    far = FarEnd(
        call=f"sip:{TEST_ACCOUNT.number}@{K1_DOMAIN}",
        proxy=f"{kamailio.host}:{kamailio.port}",
        play=write_wav(tmp_path / "far.wav", chirp(4.0)),
    )
    far_ends.append(far)
    ringing = await line.wait_call(CallState.RINGING, timeout=10)
    call_id = ringing.call_id
    client = line.client
    # not answered yet: no sound
    await expect_error(client.play(call_id, str(tone)), "not_answered")
    await expect_error(client.send_dtmf(call_id, "1"), "not_answered")
    await expect_error(client.play("c99", str(tone)), "no_such_call")
    await client.answer(call_id)
    await line.wait_call(CallState.ANSWERED, call_id)
    await far.async_wait_event(lambda e: e["event"] == "media")
    await expect_error(client.answer(call_id), "not_ringing")  # answered already
    # files
    await expect_error(client.play(call_id, str(tmp_path / "missing.wav")), "bad_file")
    await expect_error(client.play(call_id, str(not_wav)), "bad_file")
    await expect_error(client.play(call_id, "relative.wav"), "bad_request")
    await expect_error(client.play(call_id, str(tmp_path / "tone.mp3")), "bad_request")
    await expect_error(client.record(call_id, str(tone)), "bad_file")  # exists
    await expect_error(client.record(call_id, str(tmp_path / "no" / "x.wav")), "bad_file")
    await expect_error(
        client.record(call_id, str(tmp_path / "x.wav"), max_seconds=0), "bad_request"
    )
    # digits (K15: telephone-event digits only)
    await expect_error(client.send_dtmf(call_id, "12x"), "bad_request")
    await expect_error(client.send_dtmf(call_id, ""), "bad_request")
    await expect_error(client.send_dtmf(call_id, "1" * 33), "bad_request")
    await expect_error(client._request(SendDtmf(call_id=call_id, digits=5)), "bad_request")  # type: ignore[arg-type]
    await expect_error(
        client._request(Play(call_id=call_id, file=str(tone), loops=-1)), "bad_request"
    )
    await expect_error(client._request(Record(call_id=7, file=str(tone))), "no_such_call")  # type: ignore[arg-type]
    # stop_playback: nothing plays, then a playback for ever that is stopped
    assert await client.stop_playback(call_id) is False
    await client.play(call_id, str(tone), loops=0)
    assert await client.stop_playback(call_id) is True
    await line.wait(lambda e: len(finished(line)) == 1)
    assert finished(line)[0].reason == PlaybackEnd.STOPPED
    # a new play replaces the one that plays
    await client.play(call_id, str(long_tone))
    await client.play(call_id, str(tone), loops=3)
    await line.wait(lambda e: len(finished(line)) == 2)
    assert finished(line)[1].reason == PlaybackEnd.REPLACED
    assert finished(line)[1].file == str(long_tone)
    await line.wait(lambda e: len(finished(line)) == 3, timeout=10)
    assert finished(line)[2].reason == PlaybackEnd.FINISHED  # 3 x 0.5 s
    # a recording ended by its maximum length
    first = tmp_path / "first.wav"
    await client.record(call_id, str(first), max_seconds=0.6)
    # a second recording of the call: a code of its own (the file is not made)
    await expect_error(client.record(call_id, str(tmp_path / "second.wav")), "already_recording")
    assert not (tmp_path / "second.wav").exists()
    await line.wait(lambda e: len(saved(line)) == 1, timeout=5)
    assert saved(line)[0].reason == RecordingEnd.MAX_LENGTH
    assert 0.4 <= saved(line)[0].duration <= 1.0, saved(line)
    # the call's end ends what plays and what records
    await client.play(call_id, str(long_tone))
    second = tmp_path / "second.wav"
    await client.record(call_id, str(second), silence_seconds=5)
    await asyncio.sleep(0.5)
    await client.hangup(call_id)
    await line.wait_call(CallState.ENDED, call_id)
    await line.wait(lambda e: len(saved(line)) == 2 and len(finished(line)) == 4, timeout=5)
    assert finished(line)[3].reason == PlaybackEnd.ENDED
    assert saved(line)[1].reason == RecordingEnd.ENDED
    assert saved(line)[1].file == str(second)
    assert 0.3 <= saved(line)[1].duration <= 1.5
    await expect_error(client.play(call_id, str(tone)), "no_such_call")
    await client.ping()
