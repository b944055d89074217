"""Issue 9 item 14: a finished call object never touches the new call that got its id.

pjsua hands out call ids round-robin; with every one of its 64 slots taken,
the id of a call that just ended goes to the very next INVITE.  Here the
line rings 64 calls at once (raw INVITEs from the proxy's address), then one
is cancelled and a new INVITE arrives in the same datagram burst, so the new
call gets the finished call's id while the finished call's object still
exists.  Dropping that object then would detach or hang up the new call; the
engine keeps it until the id is free (calls.release_retired).
"""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest

from custom_components.kpn_voip.kpn_line.pjconfig import MAX_CALLS
from custom_components.kpn_voip.kpn_line.profile import K1_DOMAIN
from custom_components.kpn_voip.kpn_line.protocol import CallState
from kpn_devtools.kamailio import TEST_ACCOUNT

from .conftest import LineFactory, engine_port

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

        await line.wait(lambda _: len(ringing()) >= MAX_CALLS, timeout=20)
        first = ringing()[0]  # the first INVITE: pjsua's call id 0, next to be handed out
        caller.send(caller.cancel(0), caller.invite(MAX_CALLS))  # one burst
        ended = await line.wait_call(CallState.ENDED, first, timeout=5)
        assert ended.code == 487
        await line.wait(lambda _: len(ringing()) == MAX_CALLS + 1, timeout=5)
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
