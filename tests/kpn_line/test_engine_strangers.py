"""Issue 9 item 10: out-of-dialog requests from strangers are refused; SUBSCRIBE and
MESSAGE are refused even from the proxy (the line has no presence and no messaging).

A stranger is any address the proxy name does not resolve to: here 127.0.0.2
(loopback), the stand-in proxy is 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest

from custom_components.kpn_voip.kpn_line.profile import K1_DOMAIN
from custom_components.kpn_voip.kpn_line.protocol import ErrorCode, ErrorEvent
from kpn_devtools.kamailio import TEST_ACCOUNT

from .conftest import LineFactory, engine_port, sip_headers

pytestmark = pytest.mark.timeout(60)

STRANGER = "127.0.0.2"


def _request(method: str, line_port: int, source: str, port: int, extra: str = "") -> bytes:
    body = "hello" if method == "MESSAGE" else ""
    headers = [
        f"{method} sip:{TEST_ACCOUNT.number}@127.0.0.1:{line_port} SIP/2.0",
        f"Via: SIP/2.0/UDP {source}:{port};branch=z9hG4bK-{uuid.uuid4().hex};rport",
        "Max-Forwards: 70",
        f"From: <sip:somebody@{source}>;tag={uuid.uuid4().hex[:8]}",
        f"To: <sip:{TEST_ACCOUNT.number}@{K1_DOMAIN}>",
        f"Call-ID: {uuid.uuid4().hex}@{source}",
        f"CSeq: 1 {method}",
        f"Contact: <sip:somebody@{source}:{port}>",
    ]
    if method == "SUBSCRIBE":
        headers += ["Event: presence", "Expires: 600", "Accept: application/pidf+xml"]
    if body:
        headers.append("Content-Type: text/plain")
    headers.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def _exchange(method: str, line_port: int, source: str) -> tuple[int, list[bytes]]:
    """Send `method` from `source`; the final status code, and anything that followed."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(2.0)
        request = _request(method, line_port, source, sock.getsockname()[1])
        sock.sendto(request, ("127.0.0.1", line_port))
        code = 0
        while code < 200:
            reply = sock.recv(65535).decode(errors="replace")
            code = int(reply.split()[1])
            assert sip_headers(reply, "CSeq")[0].endswith(method)
        later: list[bytes] = []
        sock.settimeout(1.0)
        try:
            while True:
                later.append(sock.recv(65535))
        except TimeoutError:
            pass
    return code, later


def _rejected(event: object) -> bool:
    return isinstance(event, ErrorEvent) and event.code == ErrorCode.REJECTED_SOURCE


@pytest.mark.parametrize(
    ("method", "source", "expected"),
    [
        ("MESSAGE", STRANGER, 403),
        ("SUBSCRIBE", STRANGER, 403),
        ("MESSAGE", "127.0.0.1", 403),  # from the proxy as well: no messaging
        ("SUBSCRIBE", "127.0.0.1", 489),  # from the proxy as well: no event package
    ],
)
async def test_out_of_dialog_requests_are_refused(
    kamailio, line_factory: LineFactory, method: str, source: str, expected: int
) -> None:
    """Refused with the right code, and no NOTIFY (or anything) follows to the Contact."""
    line = await line_factory(kamailio.line_settings())
    code, later = await asyncio.to_thread(_exchange, method, engine_port(line), source)
    assert code == expected
    assert later == []  # no NOTIFY to whatever Contact was named (no reflector)
    if source == STRANGER:
        event = await line.wait(_rejected, timeout=2)
        assert isinstance(event, ErrorEvent)
        assert method in event.message
        assert STRANGER in event.message
    rejected = [e for e in line.errors() if e.code == ErrorCode.REJECTED_SOURCE]
    assert len(rejected) == (source == STRANGER)


async def test_a_stranger_is_reported_once(kamailio, line_factory: LineFactory) -> None:
    """Many requests from one stranger: one `error` event, each request refused."""
    line = await line_factory(kamailio.line_settings())
    port = engine_port(line)
    for method in ("MESSAGE", "SUBSCRIBE", "MESSAGE"):
        code, _ = await asyncio.to_thread(_exchange, method, port, STRANGER)
        assert code == 403
    await line.wait(_rejected, timeout=2)
    rejected = [e for e in line.errors() if e.code == ErrorCode.REJECTED_SOURCE]
    assert len(rejected) == 1
