"""kpn_line.reason: the RFC 3326 Reason header of a received BYE/CANCEL."""

from __future__ import annotations

import pytest

from custom_components.kpn_voip.kpn_line.protocol import EndReason
from custom_components.kpn_voip.kpn_line.reason import MAX_TEXT, parse_reason, parse_reason_value


def _cancel(*headers: str, body: str = "") -> str:
    head = "\r\n".join(
        [
            "CANCEL sip:0201234567@ims.imscore.net SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1",
            "CSeq: 1 CANCEL",
            *headers,
            "Content-Length: 0",
        ]
    )
    return f"{head}\r\n\r\n{body}"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            ['Reason: SIP;cause=200;text="Call completed elsewhere"'],
            EndReason("SIP", 200, "Call completed elsewhere"),
        ),
        (["Reason: Q.850;cause=16"], EndReason("Q.850", 16, None)),
        (
            ['reason : sip ; cause = 200 ; text = "Call completed elsewhere"'],
            EndReason("SIP", 200, "Call completed elsewhere"),
        ),
        # one header, two values: the SIP one wins
        (
            ['Reason: Q.850;cause=16;text="Normal call clearing", SIP;cause=200'],
            EndReason("SIP", 200, None),
        ),
        # two headers: the SIP one wins, whichever comes first
        (
            ["Reason: Q.850;cause=31", 'Reason: SIP;cause=600;text="Busy Everywhere"'],
            EndReason("SIP", 600, "Busy Everywhere"),
        ),
        # a folded header line (RFC 3261 §7.3.1)
        (
            ["Reason: SIP;cause=200;", ' text="Call completed elsewhere"'],
            EndReason("SIP", 200, "Call completed elsewhere"),
        ),
        # quoted-pair in text, unknown parameter, another protocol as given
        (['Reason: SIP;cause=487;foo=bar;text="a \\"b\\""'], EndReason("SIP", 487, 'a "b"')),
        (["Reason: X-Vendor;cause=9"], EndReason("X-Vendor", 9, None)),
        # garbage: no cause number, empty text, nothing usable
        (['Reason: SIP;cause=abc;text=""'], EndReason("SIP", None, None)),
        (["Reason: SIP;cause=1234567"], EndReason("SIP", None, None)),
        (["Reason: ;;;===,,,"], None),
        (["Reason:"], None),
        (['Reason: "quoted";cause=1'], None),
        ([], None),
        (["X-Reason: SIP;cause=200"], None),
    ],
)
def test_parse_reason(headers: list[str], expected: EndReason | None) -> None:
    assert parse_reason(_cancel(*headers)) == expected


def test_a_reason_in_the_body_or_the_request_line_is_not_a_header() -> None:
    assert parse_reason(_cancel(body="Reason: SIP;cause=200\r\n")) is None
    assert parse_reason("Reason: SIP;cause=200\r\n\r\n") is None  # the request line


def test_text_is_bounded_and_printable() -> None:
    long = "x" * 1000
    reason = parse_reason(_cancel(f'Reason: SIP;cause=200;text="{long}\x07"'))
    assert reason == EndReason("SIP", 200, "x" * MAX_TEXT)


def test_garbage_after_a_good_value_keeps_the_good_one() -> None:
    assert parse_reason_value('Q.850;cause=16, "junk" ;;, SIP;cause=200') == [
        EndReason("Q.850", 16, None)
    ]


def test_answered_elsewhere_is_sip_cause_200_only() -> None:
    assert EndReason("SIP", 200).answered_elsewhere
    assert not EndReason("Q.850", 200).answered_elsewhere
    assert not EndReason("SIP", 487).answered_elsewhere
    assert not EndReason("SIP").answered_elsewhere
