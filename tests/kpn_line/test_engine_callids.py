"""Issue 9 item 14: a finished call object never touches the new call that got its id.

pjsua hands out call ids round-robin.  Here MAX_CALLS INVITEs arrive at once
(raw INVITEs from the proxy's address): the line rings K24_MAX_CALLS of them
(K24) and refuses the others as busy with an event each (item 13); they take
pjsua's other ids, so the id counter wraps to 0.  Then call 0 is cancelled and a new
INVITE arrives in the same datagram burst: the new call gets id 0 while the
finished call's object still exists.  Dropping that object then would detach
or hang up the new call; the engine keeps it until the id is free
(calls.release_retired).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any
import uuid

import pytest

from custom_components.kpn_voip.kpn_line import calls as calls_module
from custom_components.kpn_voip.kpn_line.calls import MAX_RING_SECONDS, CallTable
from custom_components.kpn_voip.kpn_line.pjconfig import MAX_CALLS
from custom_components.kpn_voip.kpn_line.profile import K1_DOMAIN, K24_MAX_CALLS
from custom_components.kpn_voip.kpn_line.protocol import CallEvent, CallState, Direction
from kpn_devtools.kamailio import TEST_ACCOUNT

from .conftest import LineFactory, engine_port, expect_error

pytestmark = pytest.mark.timeout(120)

SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
)


class RawCaller:
    """INVITEs and CANCELs from one UDP socket on the proxy's address (127.0.0.1)."""

    def __init__(self, line_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.target = ("127.0.0.1", line_port)
        self.calls: dict[int, tuple[str, str, str]] = {}  # n -> call-id, branch, tag

    def _head(self, method: str, n: int) -> list[str]:
        call_id, branch, tag = self.calls[n]
        return [
            f"{method} sip:{TEST_ACCOUNT.number}@127.0.0.1:{self.target[1]} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:+3161200{n:04d}@{K1_DOMAIN};user=phone>;tag={tag}",
            f"To: <sip:{TEST_ACCOUNT.number}@{K1_DOMAIN}>",
            f"Call-ID: {call_id}",
            f"CSeq: 1 {method}",
        ]

    def invite(self, n: int) -> bytes:
        self.calls[n] = (uuid.uuid4().hex, f"z9hG4bK{uuid.uuid4().hex}", uuid.uuid4().hex[:8])
        lines = [
            *self._head("INVITE", n),
            f"Contact: <sip:caller@127.0.0.1:{self.port}>",
            "Content-Type: application/sdp",
            f"Content-Length: {len(SDP)}",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n" + SDP).encode()

    def cancel(self, n: int) -> bytes:
        lines = [*self._head("CANCEL", n), "Content-Length: 0"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def ack_finals(self) -> int:
        """ACK every final non-2xx answer to an INVITE received so far (as a proxy does);
        the number of calls ACKed (a retransmitted answer is ACKed again, counted once)."""
        self.sock.setblocking(False)
        acked: set[int] = set()
        try:
            while True:
                reply = self.sock.recv(65535).decode(errors="replace")
                head = reply.split("\r\n\r\n", 1)[0].split("\r\n")
                code = int(head[0].split()[1])
                fields = {
                    line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip()
                    for line in head[1:]
                    if ":" in line
                }
                if code < 300 or not fields.get("cseq", "").endswith("INVITE"):
                    continue
                n = next(k for k, v in self.calls.items() if v[0] == fields["call-id"])
                lines = [*self._head("ACK", n), "Content-Length: 0"]
                lines[lines.index(next(x for x in lines if x.startswith("To:")))] = (
                    f"To: {fields['to']}"
                )
                self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), self.target)
                acked.add(n)
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)
        return len(acked)

    def send(self, *datagrams: bytes) -> None:
        for data in datagrams:
            self.sock.sendto(data, self.target)

    def close(self) -> None:
        self.sock.close()


async def test_new_call_with_a_finished_calls_id_keeps_ringing(
    kamailio, line_factory: LineFactory
) -> None:
    """Every slot taken, one call cancelled and a new one arriving at once: the new call
    rings and stays ringing (not hung up, not silenced), the cancelled one ends 487."""
    line = await line_factory(kamailio.line_settings())
    caller = RawCaller(engine_port(line))
    try:
        for n in range(MAX_CALLS):
            caller.send(caller.invite(n))
            await asyncio.sleep(0.005)

        def ringing() -> list[str]:
            return [c.call_id for c in line.calls() if c.state == CallState.RINGING]

        def busy() -> list[CallEvent]:
            return [c for c in line.calls() if c.refused == "busy"]

        await line.wait(lambda _: len(ringing()) + len(busy()) >= MAX_CALLS, timeout=20)
        # K24, item 13: the calls beyond the line's limit are refused 486 with an event each.
        assert len(ringing()) == K24_MAX_CALLS
        assert [(c.state, c.code, c.missed) for c in busy()] == [(CallState.ENDED, 486, False)] * (
            MAX_CALLS - K24_MAX_CALLS
        )
        await asyncio.sleep(0.2)
        assert caller.ack_finals() == MAX_CALLS - K24_MAX_CALLS
        await asyncio.sleep(0.2)
        first = ringing()[0]  # the first INVITE: pjsua's call id 0, next to be handed out
        caller.send(caller.cancel(0), caller.invite(MAX_CALLS))  # one burst
        ended = await line.wait_call(CallState.ENDED, first, timeout=5)
        assert ended.code == 487
        await line.wait(lambda _: len(ringing()) == K24_MAX_CALLS + 1, timeout=5)
        newest = ringing()[-1]
        await asyncio.sleep(1.5)  # a dropped object's hang-up would have come by now
        assert [c for c in line.calls() if c.call_id == newest and c.state == CallState.ENDED] == []
        # The new call is still the engine's: a hang-up reaches it, with its own event.
        assert await line.client.hangup(newest) == 1
        gone = await line.wait_call(CallState.ENDED, newest, timeout=5)
        assert gone.code == 603
        assert gone.caller.number == f"+3161200{MAX_CALLS:04d}"
    finally:
        caller.close()


def test_ringing_limit_ends_an_unanswered_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 13: an incoming call still ringing after MAX_RING_SECONDS is ended with 480
    (its `ended` event then says missed), so a flood frees its slots within that limit."""
    table = CallTable(lambda _: None, [])
    record = table.new_record(Direction.INCOMING)
    codes: list[int] = []

    class Ringing:
        def __init__(self) -> None:
            self.record = record

        def hangup(self, prm: Any) -> None:
            codes.append(int(prm.statusCode))

    table.calls[record.call_id] = Ringing()  # type: ignore[assignment]
    monkeypatch.setattr(calls_module.time, "monotonic", lambda: record.created + 10)
    table.tick()
    assert codes == []
    monkeypatch.setattr(
        calls_module.time, "monotonic", lambda: record.created + MAX_RING_SECONDS + 0.1
    )
    table.tick()
    assert codes == [480]
    assert MAX_RING_SECONDS <= 120


async def test_call_ids_are_unique_across_engine_restarts(
    kamailio_factory, sipp, line_factory: LineFactory
) -> None:
    """A restarted engine (a reload, a crash) never gives out a call id again: ids used
    to restart at "c1", so history and automations could mix two calls.  A hang-up of
    the old engine's id reaches no call of the new one (no_such_call)."""
    callee = sipp.uas(answer_after=None)
    kam = kamailio_factory(forward_to=callee.address)
    ids: list[str] = []
    old: Any = None
    for _ in range(2):
        line = await line_factory(kam.line_settings())
        if old is not None:
            await expect_error(line.client.hangup(old), "no_such_call")
        for _ in range(2):
            call_id = await line.client.dial("0201234567")
            await line.wait_call(CallState.ALERTING, call_id, timeout=10)
            assert await line.client.hangup(call_id) == 1
            await line.wait_call(CallState.ENDED, call_id, timeout=10)
            ids.append(call_id)
        await line.client.stop()
        old = ids[-1]
    assert len(set(ids)) == 4, ids
    assert [i.split("-")[0] for i in ids] == ["c1", "c2", "c1", "c2"]  # each engine counts


def test_call_ids_name_their_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two call tables (two engine starts) issue different ids and know only their own."""
    clock = iter([1_764_100_000_000_000_000, 1_764_100_000_001_000_000])
    monkeypatch.setattr(calls_module.time, "time_ns", lambda: next(clock))
    first, second = CallTable(lambda _: None, []), CallTable(lambda _: None, [])
    one = first.new_record(Direction.OUTGOING).call_id
    two = second.new_record(Direction.INCOMING).call_id
    assert (one, two) == ("c1-miezlbls", "c1-miezlblt")
    assert [first.was_issued(one), first.was_issued(two)] == [True, False]
    assert [second.was_issued(two), second.was_issued(one)] == [True, False]
    assert not first.was_issued("c2-miezlbls")  # not yet
    assert not first.was_issued("c1")  # the old form
    assert not first.was_issued(None)
