"""Tests for kpn_line.callerid: caller ID from the raw INVITE (K16)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from custom_components.kpn_voip.kpn_line.callerid import MAX_HEAD_CHARS, CallerId, parse_caller_id

SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 16384 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\n"
)


def invite(*headers: str, body: str = SDP, eol: str = "\r\n") -> str:
    """An INVITE to the line as KPN's P-CSCF would send it, with extra headers."""
    lines = [
        "INVITE sip:+31201234567@127.0.0.1:5062;transport=udp SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1;rport",
        "Max-Forwards: 69",
        *headers,
        "To: <sip:+31201234567@ims.imscore.net>",
        "Call-ID: 1-2@127.0.0.1",
        "CSeq: 1 INVITE",
        "Contact: <sip:10.1.1.1:5060>",
        "Content-Type: application/sdp",
        f"Content-Length: {len(body)}",
    ]
    return eol.join(lines) + eol + eol + body


FROM_JAN = 'From: "Jan" <sip:+31612345678@ims.imscore.net;user=phone>;tag=abc'


def cid(number: str | None, name: str | None = None) -> CallerId:
    """The expected caller ID of a presented number."""
    national = None
    if number is not None:
        national = "0" + number[3:] if number.startswith("+31") else number
        if number.startswith("+") and not number.startswith("+31"):
            national = "00" + number[1:]
    return CallerId(number=number, national=national, name=name, anonymous=number is None)


def case(name: str, expected: CallerId, *headers: str, **options: str) -> Any:
    """One row of CASES: the INVITE with `headers` gives `expected`."""
    return pytest.param(invite(*headers, **options), expected, id=name)


CASES = [
    case("from-only", cid("+31612345678", "Jan"), FROM_JAN),
    case(
        "pai-sip-e164",
        cid("+31612345678", "Jan"),
        'From: "Jan" <sip:0612345678@ims.imscore.net>;tag=1',
        "P-Asserted-Identity: <sip:+31612345678@ims.imscore.net;user=phone>",
    ),
    case(
        "pai-tel",
        cid("+31612345678"),
        "From: <sip:0612345678@ims.imscore.net>;tag=1",
        "P-Asserted-Identity: <tel:+31612345678>",
    ),
    case(
        "two-pai-headers-tel-wins-name-from-other",
        cid("+31612345679", "Piet"),
        "From: <sip:0201111111@ims.imscore.net>;tag=1",
        'P-Asserted-Identity: "Piet" <sip:0612345678@ims.imscore.net;user=phone>',
        "P-Asserted-Identity: <tel:+31612345679>",
    ),
    case(
        "asserted-name-wins-over-from-name",  # KPN's network asserts the identity (K16)
        cid("+31612345678", "Piet"),
        'From: "Jan" <sip:0201111111@ims.imscore.net>;tag=1',
        'P-Asserted-Identity: "Piet" <sip:+31612345678@ims.imscore.net;user=phone>',
        "P-Asserted-Identity: <tel:+31612345678>",
    ),
    case(
        "from-name-when-no-asserted-name",
        cid("+31612345678", "Jan"),
        'From: "Jan" <sip:0201111111@ims.imscore.net>;tag=1',
        "P-Asserted-Identity: <sip:+31612345678@ims.imscore.net;user=phone>, <tel:+31612345678>",
    ),
    case(
        "comma-separated-plus-number-wins-over-national-tel",
        cid("+31612345679"),
        "From: <sip:0201111111@ims.imscore.net>;tag=1",
        "P-Asserted-Identity: <tel:0612345678>, <sip:+31612345679@ims.imscore.net>",
    ),
    case(
        "comma-inside-quoted-name",
        cid("+31612345678", "Doe, John"),
        "From: <sip:0201111111@ims.imscore.net>;tag=1",
        'P-Asserted-Identity: "Doe, John" <sip:+31612345678@x>, <tel:+31612345678>',
    ),
    case(
        "escaped-quote-and-comma-in-pai-name",
        cid("+31612345679", 'Bakker "de Bakker, Zn"'),
        "From: <sip:0201111111@ims.imscore.net>;tag=1",
        'P-Asserted-Identity: "Bakker \\"de Bakker, Zn\\"" <sip:0612345678@x>,'
        " <sip:+31612345679@x>",
    ),
    case(
        "tel-wins-a-tie-of-plus-numbers",
        cid("+31612345679"),
        "From: <sip:0201111111@ims.imscore.net>;tag=1",
        "P-Asserted-Identity: <sip:+31612345678@ims.imscore.net;user=phone>, <tel:+31612345679>",
    ),
    case(
        "first-of-equals",
        cid("+31612345678"),
        "From: <sip:0201111111@ims.imscore.net>;tag=1",
        "P-Asserted-Identity: <sip:+31612345678@a>, <sip:+31612345679@b>",
    ),
    case(
        "pai-without-number-falls-back-to-from",
        cid("+31612345678"),
        "From: <sip:0612345678@ims.imscore.net>;tag=1",
        "P-Asserted-Identity: <sip:alice@example.com>",
    ),
    case(
        "compact-from-unquoted-name",
        cid("+31612345678", "Jan de Vries"),
        "f: Jan de  Vries <sip:0031612345678@ims.imscore.net>;tag=1",
    ),
    case(
        "upper-case-addr-spec", cid("+31612345678"), "FROM: sip:+31612345678@ims.imscore.net;tag=1"
    ),
    case("lower-case-no-space-tel", cid("+31201111111"), "from:<tel:+31201111111>;tag=1"),
    case("space-before-colon", cid("+31612345678"), "From   :  <sip:0612345678@h>;tag=1"),
    case(
        "foreign-caller",
        cid("+4930123456"),
        "From: <sip:0201111111@ims.imscore.net>;tag=1",
        "p-asserted-identity: <tel:+4930123456>",
    ),
    case(
        "escaped-quotes-in-name",
        cid("+31612345678", 'Jan "JJ" Jansen \\ Zn'),
        'From: "Jan \\"JJ\\" Jansen \\\\ Zn" <sip:+31612345678@h>;tag=1',
    ),
    case(
        "angle-brackets-in-quoted-name",
        cid("+31612345678", "Jan <the man>"),
        'From: "Jan <the man>" <sip:+31612345678@h>;tag=1',
    ),
    case(
        "short-number",
        cid("14070", "Gemeente Den Haag"),
        'From: "Gemeente Den Haag" <sip:14070@ims.imscore.net>;tag=1',
    ),
    case(
        "unicode-name",
        cid("+4930123456", "Müller Ärzte ☎"),
        'From: "Müller Ärzte ☎" <sip:+4930123456@h>;tag=1',
    ),
    case("empty-name", cid("+31612345678"), 'From: "" <sip:+31612345678@h>;tag=1'),
    case(
        "number-as-name",
        cid("+31612345678", "+31612345678"),
        'From: "+31612345678" <sip:+31612345678@h>;tag=1',
    ),
    case(
        "privacy-none-and-empty-pai",
        cid("+31612345678"),
        "From: <sip:+31612345678@h>;tag=1",
        "P-Asserted-Identity:",
        "Privacy: none",
    ),
    case(
        "folded-pai",
        cid("+31612345678"),
        "From: <sip:0201111111@ims.imscore.net>;tag=1",
        "P-Asserted-Identity:",
        "  <tel:+31612345678>",
    ),
    case("folded-from", cid("+31612345678", "Jan"), 'From: "Jan"\r\n\t<sip:+31612345678@h>;tag=1'),
    case("bare-lf", cid("+31612345678", "Jan"), FROM_JAN, eol="\n"),
    case("bare-cr", cid("+31612345678", "Jan"), FROM_JAN, eol="\r"),
    case("upper-case-name-space-before-colon", cid("+31612345678"), "FROM :<sip:+31612345678@h>"),
    case(
        # Only ASCII names count: a long s (U+017F) is no "s" (issue 11's header scan).
        "look-alike-header-name",
        cid("+31612345678"),
        "From: <sip:+31612345678@h>;tag=1",
        "P-A\u017f\u017ferted-Identity: <tel:+31699999999>",
    ),
    case(
        "folded-line-of-another-header-is-skipped",
        cid("+31612345678"),
        "X-Other: a",
        " P-Asserted-Identity: <tel:+31699999999>",
        "From: <sip:+31612345678@h>;tag=1",
    ),
    pytest.param(
        "\r\n" + invite(FROM_JAN),
        cid("+31612345678", "Jan"),
        id="leading-crlf",
    ),
    case(
        "first-from-counts",
        cid("+31612345678"),
        "From: <sip:+31612345678@h>;tag=1",
        'From: "Second" <sip:+31699999999@h>;tag=2',
    ),
    case(
        "headers-in-the-body-do-not-count",
        cid("+31612345678"),
        "From: <sip:+31612345678@h>;tag=1",
        body="P-Asserted-Identity: <tel:+31699999999>\r\nPrivacy: id\r\n",
    ),
    case(
        "user-params",
        cid("+31612345678"),
        "From: <sip:+31612345678;npdi;rn=+31699@ims.imscore.net;user=phone>;tag=1",
    ),
    case("escaped-plus", cid("+31612345678"), "From: <sip:%2B31612345678@ims.imscore.net>;tag=1"),
    case(
        "privacy-critical-alone-hides-nothing",
        cid("+31612345678", "Jan"),
        'From: "Jan" <sip:+31612345678@h;user=phone>;tag=1',
        "Privacy: critical",
    ),
    case(
        "sip-address-without-number",
        CallerId(number=None, national=None, name="Alice", anonymous=False),
        'From: "Alice" <sip:alice@example.com>;tag=1',
    ),
]


@pytest.mark.parametrize(("message", "expected"), CASES)
def test_caller_id(message: str, expected: CallerId) -> None:
    """K16: number (E.164 + national) and name from PAI and From."""
    assert parse_caller_id(message) == expected


ANONYMOUS = [
    pytest.param(
        invite(
            'From: "Anonymous" <sip:anonymous@anonymous.invalid>;tag=1',
            "Privacy: id",
        ),
        id="rfc3323-anonymous",
    ),
    pytest.param(
        invite(
            'From: "Anonymous" <sip:anonymous@anonymous.invalid>;tag=1',
            "P-Asserted-Identity: <tel:+31612345678>",
            "Privacy: id",
        ),
        id="pai-leaked-but-privacy-id",
    ),
    pytest.param(
        invite(
            'From: "Jan" <sip:+31612345678@h>;tag=1',
            "P-Asserted-Identity: <tel:+31612345678>",
            "Privacy: header;id",
        ),
        id="privacy-header-id",
    ),
    pytest.param(invite(FROM_JAN, "PRIVACY: ID"), id="privacy-upper-case"),
    pytest.param(invite(FROM_JAN, "Privacy: user"), id="privacy-user"),
    pytest.param(invite(FROM_JAN, "Privacy: header"), id="privacy-header"),
    pytest.param(invite(FROM_JAN, "Privacy: none", "Privacy: id; critical"), id="two-privacy"),
    pytest.param(invite(FROM_JAN, "Privacy: session, id"), id="privacy-comma"),
    pytest.param(
        invite("From: <sip:anonymous@ims.imscore.net>;tag=1", "P-Asserted-Identity: <tel:+316>"),
        id="anonymous-user-no-privacy",
    ),
    pytest.param(
        invite('From: "Unavailable" <sip:+31612345678@anonymous.invalid>;tag=1'),
        id="anonymous-host",
    ),
    pytest.param(invite("From: <sip:Restricted@h>;tag=1"), id="restricted"),
    pytest.param(invite("From: <sip:unknown@h>;tag=1"), id="unknown"),
    pytest.param(invite('From: "Jan" <sip:ims.imscore.net>;tag=1'), id="no-user-part"),
    pytest.param(invite("From: <tel:anonymous>;tag=1"), id="tel-anonymous"),
    pytest.param(invite("To: <sip:x@y>"), id="no-from"),
    pytest.param(invite("From: ;tag=1"), id="empty-from"),
    pytest.param(
        invite("From: <sip:h>;tag=1", "P-Asserted-Identity: <sip:anonymous@anonymous.invalid>"),
        id="anonymous-pai",
    ),
    pytest.param("", id="empty-message"),
    pytest.param("INVITE sip:x SIP/2.0", id="request-line-only"),
    pytest.param("From: <sip:+31612345678@h>\r\n\r\n", id="from-as-request-line"),
]


@pytest.mark.parametrize("message", ANONYMOUS)
def test_anonymous(message: str) -> None:
    """K16: withheld numbers give no number, no name, and the anonymous flag."""
    assert parse_caller_id(message) == CallerId(
        number=None, national=None, name=None, anonymous=True
    )


def test_anonymous_name_is_dropped_when_a_number_is_there() -> None:
    """A display name "Anonymous" with a number is no name."""
    result = parse_caller_id(invite('From: "anonymous" <sip:0612345678@h>;tag=1'))
    assert result == CallerId(
        number="+31612345678", national="0612345678", name=None, anonymous=False
    )


def test_name_control_characters_and_length() -> None:
    """Names are one clean line of bounded length (they end up in HA states)."""
    long_name = "N" * 500
    result = parse_caller_id(invite(f'From: "{long_name}" <sip:0612345678@h>;tag=1'))
    assert result.name is not None
    assert len(result.name) == 128
    result = parse_caller_id(invite('From: "A\x00B\x1b[31mC\tD" <sip:0612345678@h>;tag=1'))
    assert result.name == "A B [31mC D"


def test_unterminated_quotes_and_brackets() -> None:
    """Half a header is still read as far as it goes."""
    result = parse_caller_id(invite('From: "Jan <sip:0612345678@h>;tag=1'))
    assert result == CallerId(number=None, national=None, name=None, anonymous=True)
    result = parse_caller_id(invite("From: Jan <sip:0612345678@h;tag=1"))
    assert result.number == "+31612345678"
    assert result.name == "Jan"


def test_huge_message_is_cut() -> None:
    """Only the first MAX_HEAD_CHARS characters are read."""
    padding = "X-Pad: " + "a" * MAX_HEAD_CHARS
    result = parse_caller_id(invite(padding, FROM_JAN))
    assert result == CallerId(number=None, national=None, name=None, anonymous=True)
    assert parse_caller_id(invite(FROM_JAN, padding)).number == "+31612345678"


# Hypothesis is not part of the test environment: a fixed-seed corpus of
# mutations of real INVITEs does the fuzzing instead, reproducibly.
SEEDS = [case.values[0] for case in CASES + ANONYMOUS]
NASTY = ['"', "\\", "<", ">", ",", ";", ":", "@", "\r", "\n", "\r\n", " ", "\t", "+", "%", "\x00"]


def _mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(len(text) + 1)
        match rng.randrange(6):
            case 0:
                text = text[:pos] + rng.choice(NASTY) + text[pos:]
            case 1:
                text = text[:pos] + text[pos + rng.randint(1, 20) :]
            case 2:
                text = text[:pos]
            case 3:
                text = text[:pos] + chr(rng.randrange(0x110000)) + text[pos:]
            case 4:
                start = rng.randrange(len(text) + 1)
                text = text[:pos] + text[start : start + rng.randint(1, 80)] + text[pos:]
            case _:
                text = text[:pos] + text[pos:].upper()
    return text


def test_never_raises_on_mutated_invites() -> None:
    """Whatever arrives, a CallerId comes back with consistent fields."""
    rng = random.Random(16)  # K16
    seen_numbers = 0
    for index in range(6000):
        message = _mutate(rng, SEEDS[index % len(SEEDS)])
        result = parse_caller_id(message)
        assert isinstance(result, CallerId)
        if result.anonymous:
            assert result.number is None
            assert result.name is None
        if result.number is None:
            assert result.national is None
        else:
            seen_numbers += 1
            assert result.national is not None
            digits = result.number.removeprefix("+")
            assert digits.isascii()
            assert digits.isdigit()
            assert not result.anonymous
        if result.name is not None:
            assert result.name.isprintable()
            assert 0 < len(result.name) <= 128
    assert seen_numbers > 1000  # the mutations did not only produce garbage


def test_never_raises_on_random_text() -> None:
    """Pure noise, header-shaped noise and binary junk."""
    rng = random.Random(25)
    alphabet = 'FromP-AsertdIyivc:;,<>"\\@+0123456789 \t\r\nsiptel'
    for _ in range(3000):
        noise = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        assert isinstance(parse_caller_id("INVITE x SIP/2.0\r\n" + noise), CallerId)
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        assert isinstance(parse_caller_id(junk.decode("latin-1")), CallerId)
