"""Tests for kpn_line.numbers: own number (K3), caller IDs (K16), dial strings (K25, K26)."""

from __future__ import annotations

import random
import re

import pytest

from custom_components.kpn_voip.kpn_line import numbers
from custom_components.kpn_voip.kpn_line.errors import InvalidFieldError
from custom_components.kpn_voip.kpn_line.numbers import (
    InvalidNumberError,
    dial_string,
    normalize_own_number,
    normalize_presented_number,
    to_national,
)
from custom_components.kpn_voip.kpn_line.profile import K25_STRIP_CHARS, K26_HIDE_CALLER_ID_PREFIX

from .conftest import refused

# K3: every way a Dutch user writes the line's number.
OWN_NUMBERS = [
    ("020 123 4567", "+31201234567"),
    ("0201234567", "+31201234567"),
    ("0031201234567", "+31201234567"),
    ("+31 20 123 4567", "+31201234567"),
    ("+31201234567", "+31201234567"),
    ("020-1234567", "+31201234567"),
    ("020 - 123 45 67", "+31201234567"),
    ("020.123.45.67", "+31201234567"),
    ("(020) 123 4567", "+31201234567"),
    ("020/1234567", "+31201234567"),
    ("+31 (0)20 123 4567", "+31201234567"),
    ("+31(0)201234567", "+31201234567"),
    ("+31 - (0) 20 123 4567", "+31201234567"),
    ("0031 (0)20 123 4567", "+31201234567"),
    ("+31 020 123 4567", "+31201234567"),  # a national 0 after +31: a typo, dropped
    ("0031 020 1234567", "+31201234567"),
    ("  0201234567\n", "+31201234567"),
    ("\t020\t1234567", "+31201234567"),
    ("020\u00a0123\u00a04567", "+31201234567"),  # no-break spaces from a web page
    ("020\u20111234567", "+31201234567"),  # non-breaking hyphen
    ("020\u2013123\u20134567", "+31201234567"),  # en dash
    ("0101234567", "+31101234567"),  # Rotterdam
    ("0591 123456", "+31591123456"),  # four-digit area code
    ("0851234567", "+31851234567"),  # 085: location-independent VoIP numbers
    ("088 123 4567", "+31881234567"),  # 088: company numbers
    ("0701234567", "+31701234567"),
    ("(0)20 123 4567", "+31201234567"),  # brackets are separators: "020..."
]


@pytest.mark.parametrize(("text", "expected"), OWN_NUMBERS)
def test_own_number_is_normalised_to_e164(text: str, expected: str) -> None:
    """K3: each form gives +31 and nine digits."""
    assert normalize_own_number(text) == expected


@pytest.mark.parametrize(("text", "expected"), OWN_NUMBERS)
def test_own_number_normalisation_is_idempotent(text: str, expected: str) -> None:
    """The stored form normalises to itself."""
    assert normalize_own_number(normalize_own_number(text)) == expected


# K3: "reject others with a clear message", with a code for HA's translations.
def invalid(*texts: str) -> list[tuple[str, str]]:
    """Rows of texts refused as plain invalid_number."""
    return [(text, numbers.INVALID_NUMBER) for text in texts]


BAD_OWN_NUMBERS = [
    *invalid("", "   ", "+", "00", "020 123 456a", "tel:+31201234567", "+31 20 123 4567 ext 2"),
    *invalid("020*1234567", "020#1234567", "+31+201234567"),
    ("O2O1234567", numbers.INVALID_NUMBER),  # letter O for zero
    ("٠٢٠١٢٣٤٥٦٧", numbers.INVALID_NUMBER),  # Arabic-Indic digits are not dialable
    ("201234567", numbers.INVALID_NUMBER),  # no national 0 and no country code
    ("31201234567", numbers.INVALID_NUMBER),  # country code without + or 00
    ("020 123 456", numbers.NUMBER_TOO_SHORT),
    ("1234567", numbers.INVALID_NUMBER),  # a local number without area code
    ("0", numbers.NUMBER_TOO_SHORT),
    ("+31", numbers.NUMBER_TOO_SHORT),
    ("+3120123456", numbers.NUMBER_TOO_SHORT),
    ("020 123 45678", numbers.NUMBER_TOO_LONG),
    ("+312012345678", numbers.NUMBER_TOO_LONG),
    ("00312012345678", numbers.NUMBER_TOO_LONG),
    ("+3100201234567", numbers.INVALID_NUMBER),  # two zeros after +31: no area code
    ("+32 2 123 45 67", numbers.NOT_DUTCH_NUMBER),  # Belgium
    ("+49 30 1234567", numbers.NOT_DUTCH_NUMBER),
    ("0049301234567", numbers.NOT_DUTCH_NUMBER),
    ("+1 212 555 0100", numbers.NOT_DUTCH_NUMBER),
    ("0800 123456", numbers.SERVICE_NUMBER),  # the right length, but a service number
    ("0900 123456", numbers.SERVICE_NUMBER),
    ("0906 123456", numbers.SERVICE_NUMBER),
    ("+31 909 123456", numbers.SERVICE_NUMBER),
    ("0800 1234", numbers.SERVICE_NUMBER),  # real ones: the kind is named, not the length
    ("0900 1234567", numbers.SERVICE_NUMBER),
    ("06 12345678", numbers.MOBILE_NUMBER),
    ("+31 6 12345678", numbers.MOBILE_NUMBER),
    ("06 1234567", numbers.MOBILE_NUMBER),
    ("0 20 123 456", numbers.NUMBER_TOO_SHORT),
]


@pytest.mark.parametrize(("text", "code"), BAD_OWN_NUMBERS)
def test_bad_own_numbers_are_refused_with_a_code(text: str, code: str) -> None:
    """K3: anything else is refused, and the code says why."""
    refused(lambda: normalize_own_number(text), InvalidNumberError, code, numbers.ERROR_CODES)


def test_error_message_never_repeats_the_input() -> None:
    """K9: a password pasted into the number field must not reach a log."""
    secret = "0a9Secret!77"
    with pytest.raises(InvalidNumberError) as caught:
        normalize_own_number(secret)
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)
    with pytest.raises(InvalidNumberError) as caught:
        dial_string(secret)
    assert secret not in str(caught.value)


def test_invalid_number_error_is_a_value_error() -> None:
    """Callers that only know ValueError still catch it."""
    assert issubclass(InvalidNumberError, ValueError)


def test_invalid_number_error_names_its_field() -> None:
    """A field error like every settings error: field "number", a code, a message."""
    with pytest.raises(InvalidFieldError) as caught:
        dial_string("call me")
    assert isinstance(caught.value, InvalidNumberError)
    assert (caught.value.field, caught.value.code) == ("number", numbers.INVALID_NUMBER)
    assert str(caught.value) == caught.value.message


@pytest.mark.parametrize(
    ("number", "national"),
    [
        ("+31612345678", "0612345678"),
        ("+31201234567", "0201234567"),
        ("+318001234", "08001234"),
        ("+4930123", "004930123"),
        ("+12125550100", "0012125550100"),
        ("+3212345678", "003212345678"),  # +32 is not +31
        ("112", "112"),  # not E.164: unchanged
        ("14020", "14020"),
        ("0612345678", "0612345678"),
        ("", ""),
    ],
)
def test_to_national(number: str, national: str) -> None:
    """The national display form of E.164 numbers."""
    assert to_national(number) == national


# K16: "the exact caller ID format KPN presents" is an open fact: all forms.
PRESENTED = [
    ("+31612345678", "+31612345678"),
    ("0031612345678", "+31612345678"),
    ("0612345678", "+31612345678"),
    ("06-12345678", "+31612345678"),
    ("06 1234 5678", "+31612345678"),
    ("(020) 123 45 67", "+31201234567"),
    ("31612345678", "+31612345678"),  # international form without "+"
    ("tel:+31612345678", "+31612345678"),
    ("TEL:+31612345678", "+31612345678"),
    ("tel:+31-6-1234-5678", "+31612345678"),  # RFC 3966 visual separators
    ("tel:+31.6.12345678;verstat=TN-Validation-Passed", "+31612345678"),
    ("tel:0612345678;phone-context=+31", "+31612345678"),
    ("sip:+31612345678@ims.imscore.net;user=phone", "+31612345678"),
    ("sip:+31612345678@ims.imscore.net", "+31612345678"),
    ("SIP:+31612345678@IMS.IMSCORE.NET;user=phone", "+31612345678"),
    ("sips:+31612345678@ims.imscore.net;user=phone", "+31612345678"),
    ("sip:0612345678@ims.imscore.net;user=phone", "+31612345678"),
    ("sip:0031612345678@10.0.0.1", "+31612345678"),
    ("sip:%2B31612345678@ims.imscore.net", "+31612345678"),  # escaped "+"
    ("sip:+31612345678;npdi;rn=+31699999999@ims.imscore.net;user=phone", "+31612345678"),
    ("sip:+31612345678:secret@host", "+31612345678"),  # a password part is dropped
    ("<sip:+31612345678@ims.imscore.net;user=phone>", "+31612345678"),
    ('"Jan" <tel:+31612345678>', "+31612345678"),
    ("+491701234567", "+491701234567"),
    ("00491701234567", "+491701234567"),
    ("sip:+12125550100@host", "+12125550100"),
    ("08001234", "+318001234"),  # shortest national numbers
    ("0800 1234567", "+318001234567"),
    ("112", "112"),  # short numbers come back as presented
    ("14020", "14020"),
    ("1200", "1200"),
    ("0123", "0123"),  # too short to be national: as presented
    ("sip:112@ims.imscore.net", "112"),
]


@pytest.mark.parametrize(("text", "expected"), PRESENTED)
def test_presented_number(text: str, expected: str) -> None:
    """K16: every presented form gives one E.164 number (or the short number)."""
    assert normalize_presented_number(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "   ",
        "anonymous",
        "Anonymous",
        "restricted",
        "unavailable",
        "unknown",
        "private",
        "sip:anonymous@anonymous.invalid",
        "sip:Anonymous@ims.imscore.net",
        "tel:anonymous",
        "sip:ims.imscore.net",  # no user part
        "sip:alice@example.com",
        "mailto:+31612345678@example.com",
        "http://+31612345678",
        "+",
        "+0612345678",  # no country code starts with 0
        "+123",  # too short for E.164
        "+1234567890123456",  # 16 digits: too long for E.164
        "0012",  # international prefix, then too few digits
        "1234567890123456",
        "06 1234 567x",
        "06*12345678",
        "+31 6 1234+5678",
        "\x00\x01",
        "<>",
        "tel:",
        "sip:@host",
    ],
)
def test_unusable_presented_numbers_give_none(text: str | None) -> None:
    """K16: anonymous, empty and garbage caller IDs give None."""
    assert normalize_presented_number(text) is None


# K25: dial exactly what the user gives, minus visual separators.
DIAL = [
    ("0612345678", "0612345678"),
    ("06-12345678", "0612345678"),
    ("06 1234 5678", "0612345678"),
    ("(020) 123.45.67", "0201234567"),
    ("020/1234567", "0201234567"),
    ("020\t1234567", "0201234567"),
    ("020\u00a0123\u202f4567", "0201234567"),
    ("020\u2212123\u20144567", "0201234567"),
    ("+31 6 1234 5678", "+31612345678"),  # kept international, no rewriting
    ("0031612345678", "0031612345678"),
    ("+49 30 1234567", "+49301234567"),
    ("112", "112"),  # K25: emergency calls go out as typed
    ("1234567", "1234567"),  # K25: local numbers completed by the network
    ("14020", "14020"),
    ("0800-1234", "08001234"),
    ("*31#", "*31#"),
    ("#31#0612345678", "#31#0612345678"),
    ("*#21#", "*#21#"),
    ("  0612345678  ", "0612345678"),
    ("1", "1"),
    # The longest numbers there are: E.164's 15 digits after + or 00, ten Dutch ones
    # dialled nationally, eleven for 0800/090x and twelve for 097 (Nummerplan).
    ("9" * numbers.E164_MAX_DIGITS, "9" * numbers.E164_MAX_DIGITS),
    ("+49 301 2345 6789 01", "+493012345678901"),
    ("00 49 301 2345 6789 01", "00493012345678901"),
    ("0800 123 4567", "08001234567"),
    ("0909 123 4567", "09091234567"),
    ("097 1234 5678 9", "097123456789"),
    ("+31 97 1234 5678 9", "+3197123456789"),
]


@pytest.mark.parametrize(("text", "expected"), DIAL)
def test_dial_string_strips_only_visual_separators(text: str, expected: str) -> None:
    """K25: no prefix is ever added or removed."""
    assert dial_string(text) == expected


@pytest.mark.parametrize(("text", "expected"), DIAL)
def test_dial_string_hiding_caller_id_prefixes_star31(text: str, expected: str) -> None:
    """K26: *31* before the number, and nothing else changes."""
    if len(expected) + len(K26_HIDE_CALLER_ID_PREFIX) > numbers.MAX_DIAL_LENGTH:
        with pytest.raises(InvalidNumberError) as caught:
            dial_string(text, hide_caller_id=True)
        assert caught.value.code == numbers.NUMBER_TOO_LONG
        return
    assert dial_string(text, hide_caller_id=True) == K26_HIDE_CALLER_ID_PREFIX + expected


def test_k26_prefix_fits_before_the_longest_number() -> None:
    """K26: *31* before a 15-digit international number stays within MAX_DIAL_LENGTH,
    and the prefix's digits do not count against the number's."""
    longest = "+" + "4" * numbers.E164_MAX_DIGITS
    assert dial_string(longest, hide_caller_id=True) == K26_HIDE_CALLER_ID_PREFIX + longest
    assert dial_string("*31*0201234567") == "*31*0201234567"
    with pytest.raises(InvalidNumberError) as caught:
        dial_string(longest + "4", hide_caller_id=True)
    assert caught.value.code == numbers.NUMBER_TOO_LONG


def test_hiding_caller_id_twice_adds_one_prefix() -> None:
    """K26: a number the user already prefixed is not prefixed again."""
    assert dial_string("*31*0612345678", hide_caller_id=True) == "*31*0612345678"
    assert dial_string("*31* 06-12345678") == "*31*0612345678"


def test_dial_string_keeps_plus_when_hiding() -> None:
    """K25 over K26: an international number is not rewritten when hidden."""
    assert dial_string("+31612345678", hide_caller_id=True) == "*31*+31612345678"


def test_every_k25_separator_is_stripped() -> None:
    """Every character K25 names goes, wherever it stands."""
    text = "0" + "6".join(K25_STRIP_CHARS) + "123"  # ten digits: a Dutch number's length
    assert dial_string(text) == "0" + "6" * (len(K25_STRIP_CHARS) - 1) + "123"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        *invalid("", "   ", "-().", "+", "0800-FLOWERS", "abc", "06 1234 567x", "٠٦١٢٣٤٥٦٧٨"),
        *invalid("sip:+31612345678@host", "tel:+31612345678", "0612345678@evil.example"),
        *invalid("06;user=phone"),
        ("*#", numbers.INVALID_NUMBER),  # no digit at all
        ("+31+612345678", numbers.INVALID_NUMBER),  # "+" only at the start
        ("06\r\nVia: x", numbers.INVALID_NUMBER),  # header injection
        # Longer than any number (the newcomer's 30-digit dial went out): E.164 has at
        # most 15 digits, a Dutch number ten dialled nationally (Nummerplan).
        ("0" + "6" * 29, numbers.NUMBER_TOO_LONG),
        ("9" * (numbers.E164_MAX_DIGITS + 1), numbers.NUMBER_TOO_LONG),
        ("+49 301 2345 6789 012", numbers.NUMBER_TOO_LONG),
        ("0049 301 2345 6789 012", numbers.NUMBER_TOO_LONG),
        ("020 123 45678", numbers.NUMBER_TOO_LONG),
        ("+31 20 123 45678", numbers.NUMBER_TOO_LONG),
        ("0031 20 123 45678", numbers.NUMBER_TOO_LONG),
        ("0800 123 45678", numbers.NUMBER_TOO_LONG),
        ("097 1234 5678 90", numbers.NUMBER_TOO_LONG),
        ("#31#" + "6" * 14, numbers.NUMBER_TOO_LONG),
        ("*31*020 123 45678", numbers.NUMBER_TOO_LONG),  # K26: the prefix counts no digit
        ("9" * (numbers.MAX_DIAL_LENGTH + 1), numbers.NUMBER_TOO_LONG),
    ],
)
def test_bad_dial_strings_are_refused(text: str, code: str) -> None:
    """Empty, letters, URIs and junk never reach the INVITE."""
    with pytest.raises(InvalidNumberError) as caught:
        dial_string(text)
    assert caught.value.code == code
    with pytest.raises(InvalidNumberError):
        dial_string(text, hide_caller_id=True)


def test_random_input_properties() -> None:
    """Fixed-seed fuzzing: only InvalidNumberError, and results keep their shape."""
    rng = random.Random(3)
    codes: set[str] = set()
    accepted = 0
    alphabet = "0123456789+*#()-. /\t\u00a0\u2013:;@<>\"'%abcsiptelSIPTEL,\r\n\x00٣"
    for _ in range(5000):
        # Half digit-heavy, so that valid numbers come up as well as junk.
        chars = alphabet if rng.random() < 0.5 else "0123456789 -"
        text = "".join(rng.choice(chars) for _ in range(rng.randint(0, 16)))
        if rng.random() < 0.3:
            text = rng.choice(["+31", "0031", "0", "tel:", "sip:", "+31 (0)"]) + text
        try:
            own = normalize_own_number(text)
        except InvalidNumberError as err:
            codes.add(err.code)
        else:
            accepted += 1
            assert re.fullmatch(r"\+31[1-9][0-9]{8}", own)
            assert normalize_own_number(to_national(own)) == own
        presented = normalize_presented_number(text)
        assert presented is None or re.fullmatch(r"\+?[0-9]{1,15}", presented)
        try:
            dialled = dial_string(text, hide_caller_id=rng.random() < 0.5)
        except InvalidNumberError as err:
            codes.add(err.code)
        else:
            assert re.fullmatch(r"(\*31\*)?\+?[0-9*#]+", dialled)
            assert len(dialled) <= numbers.MAX_DIAL_LENGTH
    assert codes <= {*numbers.ERROR_CODES, *numbers.DIAL_ERROR_CODES}
    assert accepted > 20  # 39 with this seed


@pytest.mark.parametrize(
    ("text", "dialled", "presented"),
    [
        # The trunk prefix in brackets after a country code is dropped (issue 12).
        ("+31 (0)20 123 4567", "+31201234567", "+31201234567"),
        ("0031 (0)20-123 4567", "0031201234567", "+31201234567"),
        ("+44 (0)20 7946 0000", "+442079460000", "+442079460000"),
        ("+31(0)6 1234 5678", "+31612345678", "+31612345678"),
        # Anywhere else "(0)" is a bracketed digit: the national 0 stays.
        ("(0)20 123 4567", "0201234567", "+31201234567"),
        ("020 (0)12 3456", "0200123456", "+31200123456"),
    ],
)
def test_trunk_prefix_in_brackets(text: str, dialled: str, presented: str) -> None:
    """ "+31 (0)20 ..." dials +31 20 ..., never +31 020 ... (issue 12 papercut)."""
    assert dial_string(text) == dialled
    assert normalize_presented_number(text) == presented


def test_trunk_zero_hidden_caller_id() -> None:
    """K26: hiding the caller ID keeps the "(0)" rule."""
    assert dial_string("+31 (0)20 123 4567", hide_caller_id=True) == "*31*+31201234567"


@pytest.mark.parametrize("text", ["+31 020 123 4567", "0031020 123 4567", "+31 0 20 123 4567"])
def test_dutch_trunk_zero_without_brackets_is_an_error(text: str) -> None:
    """K3: "+31 0..." is no Dutch number; dialling it would reach a wrong one."""
    with pytest.raises(InvalidNumberError) as err:
        dial_string(text)
    assert err.value.code == numbers.INVALID_NUMBER


def test_presented_dutch_trunk_zero_dropped() -> None:
    """K16: a caller ID or phone-book number "+31 020 ..." means +31 20 ..."""
    assert normalize_presented_number("+31 020 123 4567") == "+31201234567"


@pytest.mark.parametrize(
    ("text", "hide"),
    [("*31*", False), ("*31*#", False), ("*31* #", False), ("#", True), ("", True)],
)
def test_dial_string_refuses_the_k26_prefix_without_a_number(text: str, hide: bool) -> None:
    """K26: the digits of "*31*" are no number to call: "*31*#" was dialled as is."""
    with pytest.raises(InvalidNumberError) as caught:
        dial_string(text, hide_caller_id=hide)
    assert caught.value.code in (numbers.NO_NUMBER_AFTER_PREFIX, numbers.INVALID_NUMBER)
    if text.startswith("*31*") or text == "#":
        assert caught.value.code == numbers.NO_NUMBER_AFTER_PREFIX
    assert dial_string("*31*#31#") == "*31*#31#"  # a code with digits after it still goes
    assert set(numbers.DIAL_ERROR_CODES) >= {numbers.NO_NUMBER_AFTER_PREFIX}


# Two lines pasted into one field, and other control characters inside a number: once
# taken for spaces by str.split() (K25 names the tab, which stays a separator).
CONTROL_INSIDE = [
    "020\n1234567",
    "020\r1234567",
    "020\r\n123 4567",
    "+31 20\n123 4567",
    "020 123\n4567",
    "020\x0b1234567",  # vertical tab
    "020\x0c1234567",  # form feed
    "020\x1c1234567",  # file separator (a space to str.split)
    "020\x851234567",  # NEL
    "020\u20281234567",  # line separator
    "020\u20291234567",  # paragraph separator
    "020\x001234567",
    "020\x7f1234567",
]


@pytest.mark.parametrize("text", CONTROL_INSIDE)
def test_a_line_break_or_control_character_inside_is_no_number(text: str) -> None:
    """A number with a line break (or another control character) inside is refused with
    INVALID_NUMBER, to dial and as the own number, and is no caller ID; the same
    digits on one line are a number."""
    for check in (
        lambda: dial_string(text),
        lambda: dial_string(text, hide_caller_id=True),
        lambda: normalize_own_number(text),
    ):
        with pytest.raises(InvalidNumberError) as caught:
            check()
        assert caught.value.code == numbers.INVALID_NUMBER
    assert normalize_presented_number(text) is None
    one_line = re.sub(r"[^0-9+]", "", text)
    assert dial_string(one_line) == one_line


@pytest.mark.parametrize("text", ["0201234567\n", "\r\n 020 123 4567 \n", "\t020\t1234567\t"])
def test_white_space_around_a_number_is_still_trimmed(text: str) -> None:
    """Line ends around the number (a pasted line, a YAML block) are trimmed as before;
    the tab stays a K25 separator inside."""
    assert dial_string(text) == "0201234567"
    assert normalize_own_number(text) == "+31201234567"
    assert normalize_presented_number(text) == "+31201234567"
