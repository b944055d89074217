"""The caller-ID parser's fast path gives what its full parser gives (K16, issue 11).

parse_caller_id reads the usual INVITE in one scan (`_fast_headers`) and the usual
address of a number with one match (`_fast_identity`); everything else goes
through the full parser (`_headers`, `_identity`).  These tests hold the fast
path to the full parser's result on many header variants and on mutated
ones: it may decline (None), never disagree.
"""

from __future__ import annotations

import itertools
import random

import pytest

from custom_components.kpn_voip.kpn_line.callerid import (
    MAX_HEAD_CHARS,
    _caller_id,
    _fast_headers,
    _fast_identity,
    _headers,
    _identity,
    parse_caller_id,
)

from .test_callerid import SDP, invite

# Addresses as From / P-Asserted-Identity carry them; the first ones are the usual
# forms the fast path takes, the rest the variants it must get right or decline.
USUAL = [
    "<sip:+31612345678@ims.imscore.net;user=phone>",
    '"Jan" <sip:+31612345678@ims.imscore.net;user=phone>;tag=abc',
    "<tel:+31612345678>",
    '"Piet de Vries" <tel:+31201234567;phone-context=ims.imscore.net>',
    "Jan <sip:+31612345678@10.0.0.1:5060>;tag=1",
    "<sip:0612345678@ims.imscore.net>;tag=1",
    "<SIP:+4930123456@[2001:db8::1]>",
    "<sips:+31612345678@kpn.test;user=phone>",
    '"" <sip:+31612345678@kpn.test>',
    '"Anonymous" <sip:+31612345678@anonymous.invalid>',
]
VARIANTS = [
    *USUAL,
    '"Jan \\"J\\" Jansen" <sip:+31612345678@kpn.test>',  # escapes: the full parser
    '"Jan\\\\" <sip:+31612345678@kpn.test>',
    '"unterminated <sip:+31612345678@kpn.test>',
    "sip:+31612345678@kpn.test;tag=1",  # addr-spec
    "tel:+31612345678",
    "< sip:+31612345678@kpn.test >",
    "<sip:+31612345678@kpn.test >",
    "<sip:+31612345678@kpn.test;user=phone >;tag=1",
    "<sip:+31612345678;npdi@kpn.test>",
    "<sip:%2B31612345678@kpn.test>",
    "<sip:+31612345678>",  # no host: no user part for the full parser either
    "<tel:+31612345678@kpn.test>",
    "<sip:anonymous@anonymous.invalid>",
    '"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1',
    "<sip:restricted@kpn.test>",
    "<sip:alice@example.com>",
    "<sip:kpn.test>",
    "<sip:+310201234567@kpn.test>",  # +31 0...: the national 0 dropped
    "<sip:+0612345678@kpn.test>",
    "<sip:+3161@kpn.test>",
    "<sip:+316@kpn.test>",
    "<sip:+1234567890123456@kpn.test>",  # 16 digits: too long
    "<sip:+123456789012345@kpn.test>",  # 15: the longest
    "<sip:+1234@kpn.test>",  # 4: the shortest
    "<sip:+123@kpn.test>",
    "<sip:0031612345678@kpn.test>",
    "<sip:31612345678@kpn.test>",
    "<sip:112@kpn.test>",
    "<tel:112>",
    "<sip:0612345678@kpn.test:5060;transport=udp>",
    '"Jan" junk <sip:+31612345678@kpn.test>',
    'Jan "J" <sip:+31612345678@kpn.test>',
    '  "Jan"   <sip:+31612345678@kpn.test>  ',
    '"  Jan   de  Vries  " <sip:+31612345678@kpn.test>',
    '"Jan\tJansen" <sip:+31612345678@kpn.test>',
    '"Jan\u00a0Jansen" <sip:+31612345678@kpn.test>',
    '"Jan\x01" <sip:+31612345678@kpn.test>',
    '"anonymous" <sip:+31612345678@kpn.test>',
    '"' + "x" * 300 + '" <sip:+31612345678@kpn.test>',
    '"Zoë" <sip:+31612345678@kpn.test>',
    "<sip:+31612345678@kpn.test;user=phone><sip:+31699999999@kpn.test>",
    '<sip:+31612345678@kpn.test;x="a>b">',
    "<sip:+31612345678@h@x>",
    "<sip:+31612345678@kpn.test",  # no closing bracket
    "<sİp:+31612345678@kpn.test>",
    "<tel:+31 6 1234 5678>",
    "<tel:+31-6-12345678>",
    "<sip:+31612345678@kpn.\u212atest>",
    "",
    "<>",
    '"Jan"',
]
PRIVACY = [None, "id", "none", "header;user", "None", "ID", "critical, id", "session"]


def _full(message: str) -> object:
    """The full parser's caller ID (no fast path at all)."""
    return _caller_id(_headers(message), _identity)


def _assert_same(message: str) -> None:
    fast = _fast_headers(message)
    assert fast is None or fast == _headers(message)
    assert parse_caller_id(message) == _full(message)


@pytest.mark.parametrize("value", VARIANTS)
def test_fast_identity_declines_or_agrees(value: str) -> None:
    fast = _fast_identity(value)
    assert fast is None or fast == _identity(value)


@pytest.mark.parametrize("value", USUAL)
def test_the_usual_addresses_take_the_fast_path(value: str) -> None:
    assert _fast_identity(value) == _identity(value)


def test_the_usual_invite_takes_the_fast_path() -> None:
    message = invite(
        'From: "Jan" <sip:+31612345678@ims.imscore.net;user=phone>;tag=abc',
        "P-Asserted-Identity: <sip:+31612345678@ims.imscore.net;user=phone>",
    )
    assert _fast_headers(message) == _headers(message)
    assert len(_headers(message)) == 2


def test_every_from_pai_privacy_combination() -> None:
    for sender, asserted, privacy in itertools.product(
        [None, *VARIANTS[::3]], [None, *VARIANTS[1::4]], PRIVACY
    ):
        headers = []
        if sender is not None:
            headers.append(f"From: {sender}")
        if asserted is not None:
            headers.append(f"P-Asserted-Identity: {asserted}")
        if privacy is not None:
            headers.append(f"Privacy: {privacy}")
        _assert_same(invite(*headers))


def test_several_asserted_identities() -> None:
    for first, second in itertools.product(VARIANTS[:24], VARIANTS[:24:5]):
        _assert_same(
            invite(
                "From: <sip:0201111111@kpn.test>;tag=1",
                f"P-Asserted-Identity: {first}",
                f"P-Asserted-Identity: {second}",
            )
        )
        _assert_same(invite(f"P-Asserted-Identity: {first}, {second}"))


# Header layouts: names, spacing, line ends, folding, a header in the body.
LAYOUTS = [
    ("From: {f}", "P-Asserted-Identity: {p}"),
    ("f: {f}", "p-asserted-identity: {p}"),
    ("FROM : {f}", "P-ASSERTED-IDENTITY\t:{p}"),
    ("From:{f}", "P-Asserted-Identity:   {p}   "),
    ("From: {f}", "From: <sip:+31699999999@kpn.test>", "P-Asserted-Identity: {p}"),
    ("Fromage: {f}", "P-Asserted-Identity-X: {p}"),
    ("F: {f}", "Privacy: id", "P-Asserted-Identity: {p}"),
    ("From: {f}", "P-Asserted-Identity: {p}", "Privacy:", "Privacy: none"),
    ("From:", "P-Asserted-Identity:"),
    ("From: {f}", " P-Asserted-Identity: {p}"),  # a folded From
    ("From: {f}", "\tP-Asserted-Identity: {p}"),
    ("From:\r\n {f}", "P-Asserted-Identity: {p}"),
    ("P-Asserted-Identity: {p}", "From: {f}"),
    ("From: {f}", "Pr\u0130vacy: id", "P-Asserted-Identity: {p}"),
    ("From: {f}", ": nothing", "P-Asserted-Identity: {p}"),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("eol", ["\r\n", "\n", "\r"])
def test_header_layouts(layout: tuple[str, ...], eol: str) -> None:
    for sender, asserted in zip(VARIANTS, reversed(VARIANTS), strict=True):
        headers = [h.format(f=sender, p=asserted) for h in layout]
        _assert_same(invite(*headers, eol=eol))


def test_odd_message_shapes() -> None:
    usual = invite(
        "From: <sip:+31612345678@kpn.test>;tag=1", "P-Asserted-Identity: <tel:+31612345679>"
    )
    head, _, body = usual.partition("\r\n\r\n")
    shapes = [
        usual,
        "\r\n" + usual,  # line breaks before the request line
        "\n" + usual,
        "From: <sip:+31699999999@kpn.test>\r\n" + usual,  # a From as the request line
        "From: <sip:+31699999999@kpn.test>\r\nTo: x\r\n\r\n",
        head,  # no end of the header
        head + "\r\n",
        head + "\r\n\r\nFrom: <sip:+31699999999@kpn.test>\r\n",  # a From in the body
        head.replace("Via", "Via: x\nVia", 1) + "\r\n\r\n" + body,  # one bare LF
        head.replace("Via", "Via: x\rVia", 1) + "\r\n\r\n" + body,  # one bare CR
        head + "\r\n\n\r\n" + body,
        head + "\n\r\n\r\n" + body,
        head + "\r\n \r\n\r\n" + body,
        "X" * MAX_HEAD_CHARS + usual,
        usual[:100] + "X" * MAX_HEAD_CHARS + usual[100:],
        head + "\r\nX: " + "y" * (MAX_HEAD_CHARS - len(head) - 6) + "\r\n\r\n" + body,
        "",
        "\r\n\r\n",
        "INVITE\r\n\r\n",
        invite(body=SDP.replace("\r\n", "\n")),
    ]
    for message in shapes:
        _assert_same(message)


# Characters that change how a header reads: quoting, escapes, brackets, separators,
# line breaks, Unicode whitespace and case look-alikes.
NASTY = '"\\<>;@:,+ \t\r\n%0\u00a0\u0130\u212a\u017f\x00\x85\x1f\x7f\u2028'


def test_mutated_invites_agree() -> None:
    rng = random.Random(20261201)
    base = invite(
        'From: "Jan de Vries" <sip:+31612345678@ims.imscore.net;user=phone>;tag=abc',
        "P-Asserted-Identity: <sip:+31612345678@ims.imscore.net;user=phone>",
        "P-Asserted-Identity: <tel:+31612345678>",
        "Privacy: none",
    )
    for _ in range(3000):
        chars = list(base)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(chars))
            action = rng.random()
            if action < 0.4:
                chars[at] = rng.choice(NASTY)
            elif action < 0.7:
                chars.insert(at, rng.choice(NASTY))
            else:
                del chars[at]
        _assert_same("".join(chars))


def test_mutated_addresses_agree() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        chars = list(rng.choice(USUAL))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(chars) + 1)
            if rng.random() < 0.5 and at < len(chars):
                chars[at] = rng.choice(NASTY + "0123456789ab")
            else:
                chars.insert(at, rng.choice(NASTY + "0123456789ab"))
        value = "".join(chars)
        fast = _fast_identity(value)
        assert fast is None or fast == _identity(value), value
