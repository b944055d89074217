"""The SIPp caller's cancel stage and the SIPp callee's 487 (CANCEL handling)."""

from __future__ import annotations

from collections.abc import Callable
import re
import socket
import time
from types import SimpleNamespace
from typing import Any

import pytest

from kpn_devtools.kamailio import TEST_ACCOUNT, Kamailio
from kpn_devtools.sipp import SipMessage, Sipp, SippRun

pytestmark = pytest.mark.peers

DOMAIN = "ims.imscore.net"
TO_TAG = "line-1"


def _branch(via: str) -> str:
    m = re.search(r"branch=([^;,\s]+)", via)
    assert m, via
    return m.group(1)


class FakeNext:
    """A raw UDP socket standing in for the stand-in + line: answers as a script says."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.invite = ""
        self.peer: tuple[str, int] = ("127.0.0.1", 0)
        self.got: list[str] = []

    def target(self) -> Any:
        """What Sipp.call_line needs of a Kamailio."""
        return SimpleNamespace(
            host="127.0.0.1", port=self.port, domain=DOMAIN, accounts=[TEST_ACCOUNT]
        )

    def recv(self, method: str, timeout: float = 5.0) -> str:
        """Wait for a request of `method` (others are recorded and skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                data, self.peer = self.sock.recvfrom(65535)
            except TimeoutError:
                got = [g.split()[0] for g in self.got]
                raise AssertionError(f"no {method}; got {got}") from None
            text = data.decode()
            self.got.append(text)
            if text.startswith(method + " "):
                return text

    def reply(self, request: str, code: int, reason: str, tag: str = TO_TAG) -> None:
        """Answer `request` (its Via, From, Call-ID, CSeq; To gets `tag`)."""
        lines = [f"SIP/2.0 {code} {reason}"]
        for line in request.split("\r\n")[1:]:
            name = line.split(":", 1)[0].lower()
            if name in ("via", "from", "call-id", "cseq"):
                lines.append(line)
            elif name == "to":
                lines.append(line if ";tag=" in line else f"{line};tag={tag}")
        if code == 200 and request.startswith("INVITE "):
            lines.append(f"Contact: <sip:line@127.0.0.1:{self.port}>")
        self.sock.sendto(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode(), self.peer)

    def close(self) -> None:
        self.sock.close()


# After the CANCEL: what the far end sends, in order ("200C" = 200 to the
# CANCEL, "200I" = 200 to the INVITE), as seen on real networks.
ORDERINGS = {
    "provisionals_then_200_then_487": ["180", "183", "100", "200C", "487"],
    "487_before_200_cancel": ["487", "200C"],
    "late_180_after_487": ["183", "487", "180", "200C"],
    "487_repeated": ["200C", "487", "487"],
    "answered_while_cancelling": ["180", "200C", "200I"],
}
REASONS = {"100": "Trying", "180": "Ringing", "183": "Session Progress", "487": "Terminated"}


def _ringing_then_cancelled(sipp: Sipp, far: FakeNext) -> tuple[SippRun, str, str]:
    """SIPp's call_line caller to `far`, answered 100 and 180, until its CANCEL (ring
    time 0.3 s): (the SIPp run, the INVITE, the CANCEL) as `far` received them."""
    call = sipp.call_line(far.target(), ring_seconds=0.3, play_audio=False)
    invite = far.recv("INVITE")
    far.reply(invite, 100, "Trying")
    far.reply(invite, 180, "Ringing")
    return call, invite, far.recv("CANCEL")


@pytest.mark.parametrize("order", ORDERINGS.values(), ids=ORDERINGS.keys())
def test_call_line_cancel_stage_accepts_every_ordering(sipp: Sipp, order: list[str]) -> None:
    far = FakeNext()
    try:
        call, invite, cancel = _ringing_then_cancelled(sipp, far)
        for step in order:
            if step == "200C":
                far.reply(cancel, 200, "OK")
            elif step == "200I":
                far.reply(invite, 200, "OK")
            else:
                far.reply(invite, int(step), REASONS[step])
            time.sleep(0.02)  # keep the order on the wire
        if "200I" in order:
            far.recv("ACK")
            far.reply(far.recv("BYE"), 200, "OK")
        else:
            for _ in range(order.count("487")):  # every 487 is ACKed
                far.recv("ACK")
        assert call.wait(10) == 0, call.errors()
        assert call.answered == ("200I" in order)
    finally:
        far.close()


@pytest.mark.parametrize("order", ORDERINGS.values(), ids=ORDERINGS.keys())
def test_call_line_cancel_stage_takes_a_burst(sipp: Sipp, order: list[str]) -> None:
    """The answers to the CANCEL arrive together (SIPp stopped meanwhile, as on a busy
    machine): SIPp reads them in one go, before the call takes its next step (the ACK
    of the 487, the ACK of a late 200), and still ends the call well.  Before, a 200 to
    the CANCEL right behind the 487 aborted the call ("unexpected message while
    sending"); the ACK of the 487 carries the 487's To tag, not the one of the 200
    to the CANCEL (RFC 3261 17.1.1.3)."""
    far = FakeNext()
    try:
        call, invite, cancel = _ringing_then_cancelled(sipp, far)
        with call.frozen():
            for step in order:
                if step == "200C":  # the stand-in answers the CANCEL itself: its own To tag
                    far.reply(cancel, 200, "OK", tag="standin-1")
                elif step == "200I":
                    far.reply(invite, 200, "OK")
                else:
                    far.reply(invite, int(step), REASONS[step])
            time.sleep(0.05)  # every datagram is in SIPp's socket before it runs again
        ack = far.recv("ACK")
        if "200I" in order:
            far.reply(far.recv("BYE"), 200, "OK")
        assert call.wait(10) == 0, call.errors()
        assert call.answered == ("200I" in order)
        assert f"tag={TO_TAG}" in ack.split("\r\n\r\n")[0], ack
    finally:
        far.close()


def test_uas_487_carries_the_invites_vias(
    kamailio_factory: Callable[..., Kamailio], sipp: Sipp
) -> None:
    """The 487 reaches the caller with its own Via (pjsip drops it otherwise)."""
    callee = sipp.uas(answer_after=None)
    kam = kamailio_factory(forward_to=callee.address)
    call = sipp.call_out(kam, "0201111111", ring_seconds=0.3)
    assert call.wait(20) == 0, call.errors()
    msgs = call.messages()
    invite = [m for m in msgs if m.direction == "sent" and m.method == "INVITE"][-1]
    [sent_via] = invite.header("Via")
    finals = [m for m in msgs if m.direction == "received" and m.code == 487]
    assert finals, [m.first_line for m in msgs]
    for final in finals:
        vias = final.header("Via")
        assert [_branch(v) for v in vias] == [_branch(sent_via)]
    # The callee answered with every Via of the INVITE it got (the stand-in's
    # on top, the caller's below); its 200 to the CANCEL with the CANCEL's.
    got = callee.received("INVITE")[0].header("Via")
    assert len(got) == 2
    sent: dict[str, list[SipMessage]] = {}
    for m in callee.messages():
        if m.direction == "sent" and m.code is not None:
            sent.setdefault(f"{m.code} {m.cseq_method}", []).append(m)
    assert [_branch(v) for v in sent["487 INVITE"][0].header("Via")] == [_branch(v) for v in got]
    [cancel_via] = callee.received("CANCEL")[0].header("Via")
    assert sent["200 CANCEL"][0].header("Via") == [cancel_via]
