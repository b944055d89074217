"""The engine's pure helpers: SDP ptime (K20), log redaction (K9), the output channel."""

from __future__ import annotations

import os

import pytest

from custom_components.kpn_voip.kpn_line.addresses import source_host
from custom_components.kpn_voip.kpn_line.media import add_ptime_to_sdp
from custom_components.kpn_voip.kpn_line.profile import K20_PTIME_MS
from custom_components.kpn_voip.kpn_line.redact import Redactor
from custom_components.kpn_voip.kpn_line.stdio import Output

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
