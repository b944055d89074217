"""The sound commands and events on the wire: decoding, validation, round trips (K15)."""

from __future__ import annotations

import json

import pytest

from custom_components.kpn_voip.kpn_line.commands import (
    MAX_DTMF_DIGITS,
    MAX_LOOPS,
    MAX_RECORD_SECONDS,
    CommandRejected,
    Play,
    Record,
    SendDtmf,
    StopPlayback,
    decode_command,
    encode_command,
)
from custom_components.kpn_voip.kpn_line.protocol import (
    DtmfEvent,
    ErrorCode,
    PlaybackEnd,
    PlaybackFinishedEvent,
    ProtocolError,
    RecordingEnd,
    RecordingSavedEvent,
    decode,
    encode,
)

COMMANDS = [
    Play(call_id="c1", file="/media/kpn_voip/greeting.wav", loops=0, then_hangup=True),
    StopPlayback(call_id="c1"),
    Record(call_id="c2", file="/media/a.WAV", max_seconds=30.5, silence_seconds=2.0),
    SendDtmf(call_id="c3", digits="0123456789*#ABCD"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.type)
def test_sound_commands_round_trip(command: Play | StopPlayback | Record | SendDtmf) -> None:
    line = encode_command(command, 3)
    request = decode_command(line)
    assert request.id == 3
    assert request.command == command


def test_defaults() -> None:
    play = decode_command('{"id":1,"type":"play","call_id":"c1","file":"/a.wav"}').command
    assert play == Play(call_id="c1", file="/a.wav", loops=1, then_hangup=False)
    record = decode_command('{"id":1,"type":"record","call_id":"c1","file":"/a.wav"}').command
    assert record == Record(call_id="c1", file="/a.wav", max_seconds=120.0, silence_seconds=None)


@pytest.mark.parametrize(
    ("fields", "code", "names"),
    [
        ({"type": "play", "file": "/a.wav"}, ErrorCode.NO_SUCH_CALL, "no call"),
        ({"type": "play", "call_id": 1, "file": "/a.wav"}, ErrorCode.NO_SUCH_CALL, "no call"),
        ({"type": "play", "call_id": "c1"}, ErrorCode.BAD_REQUEST, "file"),
        ({"type": "play", "call_id": "c1", "file": "a.wav"}, ErrorCode.BAD_REQUEST, "file"),
        ({"type": "play", "call_id": "c1", "file": "/a.mp3"}, ErrorCode.BAD_REQUEST, "file"),
        ({"type": "play", "call_id": "c1", "file": "/a\x00.wav"}, ErrorCode.BAD_REQUEST, "file"),
        (
            {"type": "play", "call_id": "c1", "file": "/a.wav", "loops": MAX_LOOPS + 1},
            ErrorCode.BAD_REQUEST,
            "loops",
        ),
        (
            {"type": "play", "call_id": "c1", "file": "/a.wav", "loops": 1.5},
            ErrorCode.BAD_REQUEST,
            "loops",
        ),
        (
            {"type": "play", "call_id": "c1", "file": "/a.wav", "loops": True},
            ErrorCode.BAD_REQUEST,
            "loops",
        ),
        ({"type": "stop_playback"}, ErrorCode.NO_SUCH_CALL, "no call"),
        (
            {"type": "record", "call_id": "c1", "file": "/a.wav", "max_seconds": 0},
            ErrorCode.BAD_REQUEST,
            "max_seconds",
        ),
        (
            {
                "type": "record",
                "call_id": "c1",
                "file": "/a.wav",
                "max_seconds": MAX_RECORD_SECONDS + 1,
            },
            ErrorCode.BAD_REQUEST,
            "max_seconds",
        ),
        (
            {"type": "record", "call_id": "c1", "file": "/a.wav", "silence_seconds": "2"},
            ErrorCode.BAD_REQUEST,
            "silence_seconds",
        ),
        (
            {"type": "record", "call_id": "c1", "file": "/a.wav", "max_seconds": False},
            ErrorCode.BAD_REQUEST,
            "max_seconds",
        ),
        ({"type": "send_dtmf", "call_id": "c1", "digits": ""}, ErrorCode.BAD_REQUEST, "digits"),
        ({"type": "send_dtmf", "call_id": "c1", "digits": "1e"}, ErrorCode.BAD_REQUEST, "digits"),
        (
            {"type": "send_dtmf", "call_id": "c1", "digits": "1" * (MAX_DTMF_DIGITS + 1)},
            ErrorCode.BAD_REQUEST,
            "digits",
        ),
        ({"type": "send_dtmf", "call_id": "c1", "digits": 12}, ErrorCode.BAD_REQUEST, "digits"),
    ],
)
def test_bad_sound_commands_are_refused(fields: dict[str, object], code: str, names: str) -> None:
    with pytest.raises(CommandRejected) as err:
        decode_command(json.dumps(fields | {"id": 9}))
    assert err.value.id == 9
    assert err.value.code == code
    assert names in err.value.message


EVENTS = [
    DtmfEvent(call_id="c1", digit="#", time=1.5),
    PlaybackFinishedEvent(call_id="c1", file="/a.wav", reason=PlaybackEnd.REPLACED, time=2.0),
    RecordingSavedEvent(
        call_id="c2", file="/b.wav", duration=3.25, reason=RecordingEnd.SILENCE, time=3.0
    ),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.type)
def test_sound_events_round_trip(
    event: DtmfEvent | PlaybackFinishedEvent | RecordingSavedEvent,
) -> None:
    assert decode(encode(event)) == event


@pytest.mark.parametrize(
    "line",
    [
        '{"type":"playback_finished","call_id":"c1","file":"/a.wav","reason":"bored"}',
        '{"type":"recording_saved","call_id":"c1","file":"/a.wav","duration":1}',
        '{"type":"dtmf","digit":"1"}',
    ],
)
def test_bad_sound_events_raise(line: str) -> None:
    with pytest.raises(ProtocolError):
        decode(line)
