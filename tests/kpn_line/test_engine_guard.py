"""Issue 9 item 10: no request outside a dialog from a stranger is answered by pjsua.

A stranger is any address other than the proxy's (K16, addresses.AllowedSources):
here 127.0.0.2; the stand-in proxy is 127.0.0.1.  Real SIPp peers send each
request; each names 127.0.0.3 as its Contact (and REFER's Refer-To), where a
reflector would send NOTIFYs or INVITEs: nothing may arrive there, and nothing
but answers may reach the senders.  The answers are those docs/engine-protocol.md
lists ("Requests outside a call").
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import socket

import pytest

from custom_components.kpn_voip.kpn_line.protocol import ErrorCode, ErrorEvent
from kpn_devtools.sipp import Sipp, SippRun

from .conftest import LineFactory, engine_port

pytestmark = pytest.mark.timeout(90)

STRANGER = "127.0.0.2"
PROXY = "127.0.0.1"
ELSEWHERE = "127.0.0.3"  # a stranger's Contact / Refer-To: must hear nothing

# Headers that make each request complete enough for pjsua to act on it.
_HEADERS: dict[str, tuple[str, ...]] = {
    "NOTIFY": ("Event: message-summary", "Subscription-State: active"),
    "SUBSCRIBE": ("Event: presence", "Expires: 600", "Accept: application/pidf+xml"),
    "PUBLISH": ("Event: presence", "Expires: 600"),
    "OPTIONS": ("Accept: application/sdp",),
}


def _send_all(
    sipp: Sipp,
    target: tuple[str, int],
    source: str,
    contact: tuple[str, int],
    methods: dict[str, int | None],
    to_tag: str | None = None,
) -> dict[str, SippRun]:
    """One SIPp per method, all at once (each waits up to 3 s for its answer)."""
    runs = {}
    for method in methods:
        headers = list(_HEADERS.get(method, ()))
        if method == "REFER":
            headers.append(f"Refer-To: <sip:victim@{contact[0]}:{contact[1]}>")
        runs[method] = sipp.out_of_dialog(
            target, method, source=source, contact=contact, headers=headers, to_tag=to_tag
        )
    return runs


async def _answers(runs: dict[str, SippRun]) -> dict[str, int | None]:
    """Each request's final answer (None: none came, the request was dropped)."""
    for run in runs.values():
        await run.async_wait(timeout=15)
    return {method: run.final_code(method) for method, run in runs.items()}


def _requests_to_sender(runs: dict[str, SippRun]) -> list[str]:
    """Requests (not answers) the line sent to any sender."""
    return [m.first_line for run in runs.values() for m in run.received() if m.method]


def _rejected(event: object) -> bool:
    return isinstance(event, ErrorEvent) and event.code == ErrorCode.REJECTED_SOURCE


@pytest.fixture
def elsewhere() -> Iterator[socket.socket]:
    """A UDP socket on 127.0.0.3 standing for the address a stranger names."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ELSEWHERE, 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def _heard(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(65535))
        except BlockingIOError:
            return out


async def test_requests_from_a_stranger_are_refused(
    kamailio, line_factory: LineFactory, sipp: Sipp, elsewhere: socket.socket
) -> None:
    """403 for every method (OPTIONS no longer gets pjsua's 200; a CANCEL matching nothing
    481), an ACK is dropped, one `error` event for the address; nothing goes to the Contact
    or Refer-To it names."""
    line = await line_factory(kamailio.line_settings())
    target = (PROXY, engine_port(line))
    contact = elsewhere.getsockname()
    expected: dict[str, int | None] = {
        "OPTIONS": 403,
        "NOTIFY": 403,
        "REFER": 403,
        "INFO": 403,
        "PUBLISH": 403,
        "BYE": 403,
        "CANCEL": 481,  # no such transaction: pjsip's dialog layer, before any application code
        "SUBSCRIBE": 403,  # refused by the account (LineAccount.onIncomingSubscribe)
        "FROBNICATE": 403,  # a method nobody knows
        "ACK": None,  # never answered
    }
    runs = _send_all(sipp, target, STRANGER, contact, expected)
    assert await _answers(runs) == expected
    await asyncio.sleep(1.0)  # time for anything the line might still send
    assert _heard(elsewhere) == []
    assert _requests_to_sender(runs) == []
    event = await line.wait(_rejected, timeout=2)
    assert isinstance(event, ErrorEvent)
    assert STRANGER in event.message
    assert len([e for e in line.errors() if _rejected(e)]) == 1  # once per address
    await line.client.ping()


async def test_a_stranger_naming_a_dialog_gets_481(
    kamailio, line_factory: LineFactory, sipp: Sipp, elsewhere: socket.socket
) -> None:
    """A request with a To tag belongs to a dialog: pjsip's dialog layer answers 481 (no
    such dialog) before any application code, to anybody; nothing else follows."""
    line = await line_factory(kamailio.line_settings())
    target = (PROXY, engine_port(line))
    expected: dict[str, int | None] = {"NOTIFY": 481, "REFER": 481, "OPTIONS": 481}
    runs = _send_all(sipp, target, STRANGER, elsewhere.getsockname(), expected, to_tag="x1")
    assert await _answers(runs) == expected
    await asyncio.sleep(1.0)
    assert _heard(elsewhere) == []
    assert _requests_to_sender(runs) == []


async def test_requests_from_the_proxy(
    kamailio, line_factory: LineFactory, sipp: Sipp, elsewhere: socket.socket
) -> None:
    """From the proxy: OPTIONS gets 200 (a keep-alive probe); SUBSCRIBE 489 (no event
    package); what nothing in the line handles gets a final answer, never silence (the
    proxy would retransmit for 32 s, RFC 3261 §8.2.1): NOTIFY, INFO and BYE outside a
    dialog 481, REFER, PUBLISH and unknown methods 501; no `error` event, and nothing
    goes to a named Contact."""
    line = await line_factory(kamailio.line_settings())
    target = (PROXY, engine_port(line))
    expected: dict[str, int | None] = {
        "OPTIONS": 200,
        "SUBSCRIBE": 489,
        "NOTIFY": 481,
        "REFER": 501,
        "INFO": 481,
        "PUBLISH": 501,
        "FROBNICATE": 501,
        "BYE": 481,
        "CANCEL": 481,  # no such transaction (pjsip's dialog layer)
    }
    runs = _send_all(sipp, target, PROXY, elsewhere.getsockname(), expected)
    assert await _answers(runs) == expected
    await asyncio.sleep(1.0)
    assert _heard(elsewhere) == []
    assert _requests_to_sender(runs) == []
    assert not [e for e in line.errors() if _rejected(e)]


def _options(source: str, line_port: int) -> int:
    """One OPTIONS from `source` (a loopback address); the status code of its answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(2.0)
        port = sock.getsockname()[1]
        request = (
            f"OPTIONS sip:line@{PROXY}:{line_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {source}:{port};branch=z9hG4bK-scan-{source};rport\r\n"
            f"From: <sip:scan@{source}>;tag=scan\r\nTo: <sip:line@{PROXY}>\r\n"
            f"Call-ID: scan-{source}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(request.encode(), (PROXY, line_port))
        return int(sock.recv(65535).split()[1])


async def test_a_scan_from_many_addresses_is_refused_and_reported_in_bounds(
    kamailio, line_factory: LineFactory
) -> None:
    """OPTIONS from 40 addresses: each refused (403), only the first 32 reported (an
    `error` event each), so a scan (or spoofed sources) floods neither HA nor memory."""
    line = await line_factory(kamailio.line_settings())
    port = engine_port(line)
    sources = [f"127.0.1.{n}" for n in range(1, 41)]
    codes = [await asyncio.to_thread(_options, source, port) for source in sources]
    assert codes == [403] * len(sources)
    await line.client.ping()  # every event of the scan has arrived before the reply
    reported = [e.message.split(" from ")[1].split()[0] for e in line.errors() if _rejected(e)]
    assert reported == sources[:32]
