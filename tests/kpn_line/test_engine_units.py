"""The engine's pure helpers: SDP ptime (K20), log redaction (K9), the stdio channel,
the accepted INVITE sources (K16/K24 safety)."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest

from custom_components.kpn_voip.kpn_line import addresses, stdio
from custom_components.kpn_voip.kpn_line.addresses import AllowedSources, source_host
from custom_components.kpn_voip.kpn_line.media import add_ptime_to_sdp
from custom_components.kpn_voip.kpn_line.profile import K20_PTIME_MS
from custom_components.kpn_voip.kpn_line.redact import Redactor
from custom_components.kpn_voip.kpn_line.stdio import Output, Waker, guard, read_lines

PTIME = f"a=ptime:{K20_PTIME_MS}"


@pytest.mark.parametrize(
    ("sdp", "expected"),
    [
        (
            "v=0\r\nm=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n",
            ["v=0", "m=audio 4000 RTP/AVP 8", "a=rtpmap:8 PCMA/8000", PTIME],
        ),
        (  # one there already: left alone
            "v=0\nm=audio 4000 RTP/AVP 8\na=ptime:30\n",
            ["v=0", "m=audio 4000 RTP/AVP 8", "a=ptime:30"],
        ),
        (  # each audio section, none for video
            "v=0\r\nm=audio 1 RTP/AVP 8\r\nm=video 2 RTP/AVP 96\r\nm=audio 3 RTP/AVP 0\r\n",
            [
                "v=0",
                "m=audio 1 RTP/AVP 8",
                PTIME,
                "m=video 2 RTP/AVP 96",
                "m=audio 3 RTP/AVP 0",
                PTIME,
            ],
        ),
        ("v=0\r\ns=-\r\n", ["v=0", "s=-"]),  # no media at all
    ],
)
def test_add_ptime_to_sdp(sdp: str, expected: list[str]) -> None:
    """K20: a=ptime:20 closes every m=audio section that lacks one; CRLF line ends."""
    assert add_ptime_to_sdp(sdp) == "\r\n".join(expected) + "\r\n"


def test_redactor_hides_every_form_of_the_secret() -> None:
    """K9: plain, URL-escaped and JSON-escaped forms, and digest responses."""
    redact = Redactor()
    assert redact("nothing known yet") == "nothing known yet"
    secret = 'p@ss w"rd/1'
    redact.add(secret)
    redact.add(secret)  # twice: no harm
    redact.add("")  # an empty one is not a secret
    text = f'a {secret} b p%40ss%20w%22rd%2F1 c p@ss w\\"rd/1 Digest response="0a1b", x'
    out = redact(text)
    assert "p@ss" not in out
    assert "p%40ss" not in out
    assert "0a1b" not in out
    assert out.count("**REDACTED**") == 4
    assert out.startswith("a **REDACTED** b ")
    assert "Digest response=" in out


@pytest.mark.parametrize(
    ("address", "host"),
    [("1.2.3.4:5060", "1.2.3.4"), ("[::1]:5060", "::1"), ("::1", "::1"), ("host", "host")],
)
def test_source_host(address: str, host: str) -> None:
    assert source_host(address) == host


def test_output_ignores_a_closed_pipe() -> None:
    """The client is gone (its end of stdout closed): writes are dropped, never raised."""
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    with os.fdopen(write_fd, "wb", buffering=0) as stream:
        out = Output(stream)
        out.write({"type": "reply", "id": 1, "ok": True})
        assert out.closed
        out.write({"type": "reply", "id": 2, "ok": True})  # and again: quietly nothing


def test_allowed_sources_are_the_proxy_and_the_configured_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """K16/K24 safety: the proxy's addresses, networks, addresses and names of sources."""
    names = {"proxy.test": {"192.0.2.1", "192.0.2.2"}, "extra.test": {"198.51.100.7"}}
    monkeypatch.setattr(addresses, "resolve", lambda host: set(names.get(host, set())))
    sources = AllowedSources()
    assert "192.0.2.1" not in sources  # nothing before configure
    sources.rejected.add("203.0.113.9")
    sources.configure("proxy.test", "192.0.2.3", ["10.0.0.0/8", "2001:db8::1", "extra.test"])
    for host in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "10.9.8.7", "2001:db8::1", "198.51.100.7"):
        assert host in sources, host
    for host in ("192.0.2.4", "11.0.0.1", "2001:db8::2", "not an address"):
        assert host not in sources, host
    assert sources.rejected == set()  # each configure reports rejections anew


def test_an_unresolvable_name_gives_no_address(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror("no such name")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    assert addresses.resolve("proxy.test") == set()
    assert addresses.first_address("proxy.test") is None


def test_first_address_prefers_ipv4(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addresses, "resolve", lambda host: {"2001:db8::1", "192.0.2.1"})
    assert addresses.first_address("proxy.test") == "192.0.2.1"


def test_read_lines_skips_over_long_lines_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """An over-long line is one None, also when it arrives without its newline at first."""
    monkeypatch.setattr(stdio, "MAX_LINE_BYTES", 10)
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"ping\n" + b"x" * 25 + b"\n\n" + b"y" * 11 + b"\ntail\n")
    os.close(write_fd)
    try:
        assert list(read_lines(read_fd)) == [b"ping", None, b"", None, b"tail"]
    finally:
        os.close(read_fd)
    assert list(read_lines(read_fd)) == []  # a closed fd: the end, not an error


def test_read_lines_across_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long line spread over reads is skipped up to its newline; EINTR is retried."""
    monkeypatch.setattr(stdio, "MAX_LINE_BYTES", 10)
    chunks: list[bytes | BaseException] = [
        b"a" * 8,
        InterruptedError(),
        b"b" * 8,  # 16 bytes, no newline yet: over-long
        b"c" * 20,  # still the same line
        b"c\nnext\n",
        b"d" * 11,  # over-long at the end of input
    ]

    def fake_read(fd: int, size: int) -> bytes:
        if not chunks:
            return b""
        chunk = chunks.pop(0)
        if isinstance(chunk, BaseException):
            raise chunk
        return chunk

    monkeypatch.setattr(stdio.os, "read", fake_read)
    assert list(read_lines(99)) == [None, b"next", None]


def test_waker_sends_a_keepalive_to_its_target() -> None:
    """The reader wakes the pjsua2 thread with a CRLF datagram; before `start`, nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as target:
        target.bind(("127.0.0.1", 0))
        target.settimeout(5)
        waker = Waker()
        waker()  # no target yet: nothing, no error
        waker.target = target.getsockname()
        waker()
        assert target.recv(64) == stdio.WAKE
        waker.close()
        waker()  # after close: quietly nothing


def test_guard_logs_a_callback_error_and_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    """An exception in a pjsua2 callback body is logged to stderr, never raised into pjsua2."""

    def broken(value: int) -> None:
        raise RuntimeError(f"broken {value}")

    guard(broken, 7)
    err = capsys.readouterr().err
    assert "ERROR kpn_line.engine: error in a pjsua2 callback" in err
    assert "RuntimeError: broken 7" in err
