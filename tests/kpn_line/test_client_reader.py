"""The client's reader of the engine's output (client.LineReader, issue 11).

Lines are handed on inside `data_received`, however the pipe cuts them into
chunks; an over-long line ends the reading, the end of the output closes it,
and a last line without its newline still counts (as `readline()` had it).
"""

from __future__ import annotations

import asyncio
import textwrap

import pytest

from custom_components.kpn_voip.kpn_line.client import (
    CLOSED_OUTPUT,
    OVER_LONG,
    EngineClient,
    LineReader,
)
from custom_components.kpn_voip.kpn_line.protocol import (
    CallEvent,
    CallState,
    ErrorEvent,
    Event,
    RegistrationEvent,
)

from .test_client import ANSWER_START, SETTINGS, _wait_for, fake_engine

pytestmark = pytest.mark.timeout(60)

LIMIT = 16


class _Transport(asyncio.ReadTransport):
    """Records pause_reading (an over-long line stops the reading)."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True


def _reader() -> tuple[LineReader, list[bytes], _Transport]:
    lines: list[bytes] = []
    reader = LineReader(lines.append, LIMIT)
    transport = _Transport()
    reader.connection_made(transport)
    return reader, lines, transport


async def test_several_lines_in_one_chunk_each_in_order() -> None:
    reader, lines, _ = _reader()
    reader.data_received(b"one\ntwo\n\nthree\nfou")
    assert lines == [b"one\n", b"two\n", b"\n", b"three\n"]
    reader.data_received(b"r\n")
    assert lines[-1] == b"four\n"
    assert not reader.closed.done()


async def test_a_line_cut_across_chunks_is_handed_on_once_whole() -> None:
    reader, lines, _ = _reader()
    for chunk in (b"ab", b"cd", b"ef"):
        reader.data_received(chunk)
    assert lines == []
    reader.data_received(b"g\nh")
    assert lines == [b"abcdefg\n"]
    reader.data_received(b"\n")
    assert lines == [b"abcdefg\n", b"h\n"]


async def test_a_line_of_the_limit_passes() -> None:
    reader, lines, transport = _reader()
    reader.data_received(b"x" * (LIMIT - 1))
    reader.data_received(b"x\n")
    assert lines == [b"x" * LIMIT + b"\n"]
    assert not reader.closed.done()
    assert not transport.paused


@pytest.mark.parametrize(
    "chunks",
    [
        [b"ok\n" + b"x" * (LIMIT + 1) + b"\nafter\n"],  # over-long with its newline
        [b"ok\n", b"x" * LIMIT, b"x", b"\nafter\n"],  # too many bytes without a newline
    ],
    ids=["with-newline", "without-newline"],
)
async def test_an_over_long_line_ends_the_reading(chunks: list[bytes]) -> None:
    reader, lines, transport = _reader()
    for chunk in chunks:
        reader.data_received(chunk)
    assert lines == [b"ok\n"]  # what came before it; nothing after it
    assert reader.closed.result() == OVER_LONG
    assert transport.paused
    reader.eof_received()
    assert reader.closed.result() == OVER_LONG
    assert lines == [b"ok\n"]


async def test_the_end_in_the_middle_of_a_line_hands_on_that_line() -> None:
    reader, lines, _ = _reader()
    reader.data_received(b"one\ntw")
    assert reader.eof_received() is False  # the transport closes itself
    assert lines == [b"one\n", b"tw"]
    assert reader.closed.result() == CLOSED_OUTPUT
    reader.connection_lost(None)
    reader.data_received(b"late\n")
    assert lines == [b"one\n", b"tw"]


async def test_a_read_error_closes_it() -> None:
    reader, lines, _ = _reader()
    reader.data_received(b"part")
    reader.connection_lost(OSError("read error"))
    assert reader.closed.result() == CLOSED_OUTPUT
    assert lines == []


async def test_events_cut_and_bunched_by_the_pipe_reach_on_event_at_once() -> None:
    """A real engine pipe: a message written in pieces, several in one write, a last one
    without its newline.  Each event is handled inside the read (no task between)."""
    got: list[Event] = []
    in_task: list[bool] = []
    exits: list[tuple[int | None, str]] = []

    def on_event(event: Event) -> None:
        in_task.append(asyncio.current_task() is not None)
        got.append(event)

    body = ANSWER_START + textwrap.dedent(
        """
        reg = json.dumps({"type": "registration", "state": "registered", "code": 200,
                          "time": 1.0}) + "\\n"
        for piece in (reg[:5], reg[5:40], reg[40:]):
            sys.stdout.write(piece); sys.stdout.flush(); time.sleep(0.05)
        call = {"type": "call", "call_id": "c1", "state": "ringing", "direction": "incoming",
                "number": "+31612345678", "time": 2.0}
        errors = [json.dumps({"type": "error", "code": "x", "message": str(n)}) for n in range(3)]
        sys.stdout.write(json.dumps(call) + "\\n" + "\\n".join(errors) + "\\n"); sys.stdout.flush()
        time.sleep(0.05)
        sys.stdout.write(json.dumps({"type": "error", "code": "x", "message": "last"}))
        sys.stdout.flush()
        sys.exit(3)
        """
    )
    client = EngineClient(
        on_event=on_event,
        on_exit=lambda rc, reason: exits.append((rc, reason)),
        command=fake_engine(body),
        ping_interval=0,
    )
    await client.start(SETTINGS)
    try:
        await _wait_for(lambda: exits)
        assert [type(event) for event in got] == [RegistrationEvent, CallEvent, *[ErrorEvent] * 4]
        assert isinstance(got[1], CallEvent)
        assert (got[1].call_id, got[1].state) == ("c1", CallState.RINGING)
        assert [e.message for e in got if isinstance(e, ErrorEvent)] == ["0", "1", "2", "last"]
        assert in_task == [False] * len(got)
        assert exits == [(3, CLOSED_OUTPUT)]
    finally:
        await client.stop()
