"""Telephone numbers: the line's own number (K3), caller IDs (K16), dial strings (K25, K26).

Pure functions, no I/O.  Dutch numbers in E.164 are ``+31`` followed by nine
digits (the national form is ``0`` followed by the same nine digits).

Decisions (documented in docs, cited by the tests):

* The own number must be a Dutch fixed-line style number: ``+31`` and nine
  digits.  Mobile numbers (``06``) and service numbers (``0800``, ``0900``,
  ``0906``, ``0909``) are refused: a "Vast Bellen" line never has one, and a
  wrong number builds a wrong SIP identity, which KPN answers with an
  authentication failure that may lock the line (K8).
* The own number is forgiving about the *form*: spaces, dashes, dots,
  slashes, brackets, ``+31``, ``0031``, ``+31 (0)20`` and even ``+31020``
  (a national ``0`` typed after the country code, which never occurs in a
  Dutch E.164 number) all give the same result.
* A dialled number is never rewritten beyond removing visual separators
  (K25): no prefixes added, ``0`` kept, ``112`` and local numbers pass.
* Error messages never repeat the input: a password pasted into the wrong
  field must not end up in a log (K9).  Each error carries a stable ``code``
  for translations.
"""

from __future__ import annotations

import re
from typing import Final
import unicodedata
from urllib.parse import unquote

from .errors import InvalidFieldError
from .profile import K3_COUNTRY_CODE, K3_NATIONAL_PREFIX, K25_STRIP_CHARS, K26_HIDE_CALLER_ID_PREFIX

# Error codes (InvalidNumberError.code); HA translates them.
INVALID_NUMBER: Final = "invalid_number"
NUMBER_TOO_SHORT: Final = "number_too_short"
NUMBER_TOO_LONG: Final = "number_too_long"
NOT_DUTCH_NUMBER: Final = "not_dutch_number"
SERVICE_NUMBER: Final = "service_number"
MOBILE_NUMBER: Final = "mobile_number"
NO_NUMBER_AFTER_PREFIX: Final = "no_number_after_prefix"  # "*31*" (K26) and nothing to call
ERROR_CODES: Final = (
    INVALID_NUMBER,
    NUMBER_TOO_SHORT,
    NUMBER_TOO_LONG,
    NOT_DUTCH_NUMBER,
    SERVICE_NUMBER,
    MOBILE_NUMBER,
)
# The codes dial_string raises (the own number's checks raise ERROR_CODES).
DIAL_ERROR_CODES: Final = (INVALID_NUMBER, NUMBER_TOO_LONG, NO_NUMBER_AFTER_PREFIX)

# K25 names space, dash, dot, brackets, slash and tab.  Numbers copied from a
# web page or a phone's contact card also carry these look-alikes: no-break
# and thin spaces, Unicode hyphens and dashes, the minus sign.
VISUAL_SEPARATORS: Final = (
    K25_STRIP_CHARS + "\u00a0\u2007\u2009\u202f\u2010\u2011\u2012\u2013\u2014\u2212"
)
_STRIP_TABLE: Final = str.maketrans("", "", VISUAL_SEPARATORS)
_STRIP_BUT_BRACKETS_TABLE: Final = str.maketrans(
    "", "", VISUAL_SEPARATORS.replace("(", "").replace(")", "")
)

NATIONAL_SIGNIFICANT_DIGITS: Final = 9  # K3: +31 and nine digits
MAX_DIAL_LENGTH: Final = 32  # characters of a dial string, *31* (K26) and codes included
E164_MAX_DIGITS: Final = 15  # ITU-T E.164: country code and number, after "+" or "00"
# The Dutch numbering plan (Nummerplan): a national number is "0" and nine digits (K3),
# except the free and paid service numbers 0800/090x (four or seven digits after their
# three, so ten) and the machine-to-machine range 097 (eleven).
_NATIONAL_MAX_DIGITS: Final = (("800", 10), ("900", 10), ("906", 10), ("909", 10), ("97", 11))
E164_MIN_DIGITS: Final = 4  # shortest foreign numbers (small islands) plus their country code

_SERVICE_PREFIXES: Final = ("800", "900", "906", "909")  # after the national 0
_MOBILE_PREFIX: Final = "6"
_INTERNATIONAL_PREFIX: Final = "00"
_E164: Final = "+"

_DIGITS = re.compile(r"[0-9]+")
_DIAL = re.compile(r"\+?[0-9*#]+")
# "(0)" written after a country code: "+31 (0)20 ...", "+44 (0)20 ...".  It is
# the national trunk prefix for callers inside that country and is never
# dialled with the country code (ITU-T E.123 section 2.5 advises against it).
_TRUNK_ZERO = re.compile(r"^((?:\+|00)[1-9][0-9]{0,2})\(0\)")
# The same 0 written without brackets after +31 / 0031: no Dutch E.164
# number has it (K3), so a dial string with it would reach a wrong number.
_DUTCH_TRUNK_ZERO = re.compile(rf"^(?:\+|00){K3_COUNTRY_CODE}{K3_NATIONAL_PREFIX}")
# Words networks and phones use for a withheld number (K16).
ANONYMOUS_WORDS: Final = frozenset(
    {"anonymous", "restricted", "unavailable", "unknown", "private", "withheld", "anonym"}
)


class InvalidNumberError(InvalidFieldError):
    """A number that cannot be used; ``code`` says why (ERROR_CODES, DIAL_ERROR_CODES).

    ``field`` is ``"number"``: the own number's field in the settings and the
    dialled number's field in the dial action.
    """

    def __init__(self, code: str, message: str) -> None:
        """Store the code; the message never contains the input (K9)."""
        super().__init__("number", code, message)


# Unicode categories of the characters that are never part of a written number: control
# characters (Cc: line feed, carriage return, NUL, the C1 controls, ...) and the line and
# paragraph separators (Zl, Zp).  Python's str.split() takes most of them for spaces, so
# "020\n1234567" (two lines pasted into one field) used to dial 0201234567.  The tab is
# the one control character K25 names as a separator (K25_STRIP_CHARS): it stays one.
_NEVER_IN_A_NUMBER: Final = frozenset({"Cc", "Zl", "Zp"})


def has_line_break_or_control(text: str) -> bool:
    """True if `text` holds a line break or another control character (not the tab, K25)
    between its first and last visible character.

    Such a text is no number, whatever its other characters: dial_string and
    normalize_own_number refuse it (INVALID_NUMBER), normalize_presented_number
    gives None.  White space around the number (a line end after a pasted number, a
    YAML block's last line break) is trimmed as before, not refused.
    """
    return any(
        unicodedata.category(char) in _NEVER_IN_A_NUMBER and char not in K25_STRIP_CHARS
        for char in text.strip()
    )


def _strip_separators(text: str) -> str:
    return text.strip().translate(_STRIP_TABLE)


def _compact(text: str) -> str:
    """``text`` without visual separators (K25) and without a "(0)" after a country code.

    ``"+31 (0)20 123 4567"`` -> ``"+31201234567"``; a "(0)" anywhere else is a
    pair of brackets around a digit: ``"(0)20 123 4567"`` -> ``"0201234567"``.
    """
    # "(0)" is recognised with the other separators gone, then brackets go too.
    compact = "".join(text.split()).translate(_STRIP_BUT_BRACKETS_TABLE)
    return _strip_separators(_TRUNK_ZERO.sub(r"\1", compact))


def normalize_own_number(text: str) -> str:
    """The line's own number in E.164 (K3): ``"020 123 4567"`` -> ``"+31201234567"``.

    Raises InvalidNumberError (its ``code`` says why; a line break or another
    control character in ``text`` is INVALID_NUMBER).
    """
    if has_line_break_or_control(text):
        raise InvalidNumberError(
            INVALID_NUMBER, "Enter the number on one line, like 020 123 4567 or +31 20 123 4567."
        )
    compact = _compact(text)
    if compact.startswith(_E164):
        international, digits = True, compact[1:]
    elif compact.startswith(_INTERNATIONAL_PREFIX):
        international, digits = True, compact[2:]
    else:
        international, digits = False, compact
    if not digits or not _DIGITS.fullmatch(digits):
        raise InvalidNumberError(
            INVALID_NUMBER,
            "Enter the number with digits only, like 020 123 4567 or +31 20 123 4567.",
        )
    if international:
        if not digits.startswith(K3_COUNTRY_CODE):
            raise InvalidNumberError(NOT_DUTCH_NUMBER, "The line's number must be a Dutch number.")
        national = digits[len(K3_COUNTRY_CODE) :]
        # "+31 020...": the national 0 never follows +31, so it can only be a typo.
        if national.startswith(K3_NATIONAL_PREFIX):
            national = national[1:]
    elif digits.startswith(K3_NATIONAL_PREFIX):
        national = digits[1:]
    else:
        raise InvalidNumberError(
            INVALID_NUMBER,
            "Enter the number with its area code, like 020 123 4567 or +31 20 123 4567.",
        )
    # The kind of number first: "0800 1234" is better refused as a service
    # number than as too short.
    if national.startswith(K3_NATIONAL_PREFIX):
        raise InvalidNumberError(INVALID_NUMBER, "The area code of the number is not valid.")
    if national.startswith(_SERVICE_PREFIXES):
        raise InvalidNumberError(
            SERVICE_NUMBER, "A 0800 or 090x service number cannot be a line's number."
        )
    if national.startswith(_MOBILE_PREFIX):
        raise InvalidNumberError(
            MOBILE_NUMBER, "A mobile (06) number cannot be a fixed line's number."
        )
    if len(national) < NATIONAL_SIGNIFICANT_DIGITS:
        raise InvalidNumberError(
            NUMBER_TOO_SHORT, "The number is too short: Dutch numbers have ten digits."
        )
    if len(national) > NATIONAL_SIGNIFICANT_DIGITS:
        raise InvalidNumberError(
            NUMBER_TOO_LONG, "The number is too long: Dutch numbers have ten digits."
        )
    return _E164 + K3_COUNTRY_CODE + national


def to_national(number: str) -> str:
    """The national display form of an E.164 number.

    ``"+31612345678"`` -> ``"0612345678"``; ``"+4930123"`` -> ``"004930123"``.

    Anything not in E.164 (a short number like ``"112"``) is returned unchanged.
    """
    if number.startswith(_E164 + K3_COUNTRY_CODE):
        return K3_NATIONAL_PREFIX + number[1 + len(K3_COUNTRY_CODE) :]
    if number.startswith(_E164):
        return _INTERNATIONAL_PREFIX + number[1:]
    return number


def _uri_user(text: str) -> str | None:
    """The user part of a sip:/sips:/tel: URI (or the text itself if it is no URI)."""
    if "<" in text:
        inner = text.partition("<")[2]
        text = inner.partition(">")[0]
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if colon and scheme == "tel":
        user = rest
    elif colon and scheme in ("sip", "sips"):
        if "@" not in rest:
            return None  # sip:host has no user, so no number (K16)
        user = rest.partition("@")[0]
    elif colon:
        return None  # another scheme (or garbage with a colon)
    else:
        user = text
    # Parameters after the number: ";phone-context=...", ";npdi", ";rn=...", ";verstat=...".
    user = user.partition(";")[0]
    # User parts may be escaped ("%2B31..."); sip user parts may carry a password.
    return unquote(user.partition(":")[0])


def normalize_presented_number(text: str | None) -> str | None:
    """A caller ID as KPN presents it (K16) in E.164 where possible.

    Accepts ``+31...``, ``0031...``, ``0...``, ``tel:+31...``,
    ``sip:+31...@host;user=phone`` and digits with visual separators.  Short
    numbers (``"112"``, ``"14020"``) come back as their digits.  Returns None
    for an anonymous, empty or unusable caller ID.
    """
    if not text or has_line_break_or_control(text):
        return None
    user = _uri_user(text)
    if user is None:
        return None
    if user.strip().lower() in ANONYMOUS_WORDS:
        return None
    compact = _compact(user)
    if compact.startswith(_E164):
        digits = compact[1:]
        if not _DIGITS.fullmatch(digits) or digits.startswith("0"):
            return None  # no country code starts with 0
        if digits.startswith(K3_COUNTRY_CODE + K3_NATIONAL_PREFIX):
            # "+31 020 ...": the national 0 never follows +31 (K3), as in the own number.
            digits = K3_COUNTRY_CODE + digits[len(K3_COUNTRY_CODE) + 1 :]
        if not E164_MIN_DIGITS <= len(digits) <= E164_MAX_DIGITS:
            return None
        return _E164 + digits
    if not _DIGITS.fullmatch(compact):
        return None
    if compact.startswith(_INTERNATIONAL_PREFIX):
        return normalize_presented_number(_E164 + compact[2:])
    if compact.startswith(K3_NATIONAL_PREFIX) and len(compact) > 1 + 5:
        # A national number ("0612345678", "08001234") -> +31; the shortest
        # national numbers are 0800/0900 ones with four digits after the prefix.
        return normalize_presented_number(_E164 + K3_COUNTRY_CODE + compact[1:])
    if (
        len(compact) == len(K3_COUNTRY_CODE) + NATIONAL_SIGNIFICANT_DIGITS
        and compact.startswith(K3_COUNTRY_CODE)
        and compact[len(K3_COUNTRY_CODE)] != K3_NATIONAL_PREFIX
    ):
        # "31612345678": the international form without its "+", as some IMS
        # cores present it.  No Dutch national number starts with 3.
        return _E164 + compact
    if len(compact) > E164_MAX_DIGITS:
        return None
    return compact  # a short number: 112, 14020, 1200


def dial_string(number: str, *, hide_caller_id: bool = False) -> str:
    """What to put in the INVITE's request URI user part for ``number``.

    K25: only visual separators are removed; ``+``, ``*``, ``#`` and digits are
    kept and nothing is added, so ``0...``, local numbers and ``112`` go out as
    typed.  K26: ``hide_caller_id`` puts ``*31*`` in front (once).  A "(0)"
    after a country code is the trunk prefix written for national callers and
    is dropped with the separators: ``"+31 (0)20 123 4567"`` dials
    ``+31201234567``, never ``+310201234567``; ``"+31 020 ..."`` (the 0
    without brackets) is refused with ``INVALID_NUMBER``, and so is a number with
    a line break or another control character in it (``has_line_break_or_control``;
    the tab is a K25 separator).
    """
    if has_line_break_or_control(number):
        raise InvalidNumberError(
            INVALID_NUMBER, "A number to call is one line of digits, * and #, and + at the start."
        )
    compact = _compact(number)
    if not compact:
        raise InvalidNumberError(INVALID_NUMBER, "Enter a number to call.")
    if _DUTCH_TRUNK_ZERO.match(compact):
        raise InvalidNumberError(
            INVALID_NUMBER, "After +31 leave out the 0 of the area code, like +31 20 123 4567."
        )
    has_prefix = compact.startswith(K26_HIDE_CALLER_ID_PREFIX)
    if not _DIAL.fullmatch(compact) or not (
        any(c.isdigit() for c in compact.removeprefix(K26_HIDE_CALLER_ID_PREFIX))
        or has_prefix
        or hide_caller_id
    ):
        raise InvalidNumberError(
            INVALID_NUMBER,
            "A number to call needs at least one digit and may contain only digits, * and #,"
            " and + at the start.",
        )
    if hide_caller_id and not has_prefix:
        compact = K26_HIDE_CALLER_ID_PREFIX + compact
    if not any(c.isdigit() for c in compact.removeprefix(K26_HIDE_CALLER_ID_PREFIX)):
        # K26: "*31*" hides the caller ID of the number that follows it; "*31*" or
        # "*31*#" alone is no call (the digits of the prefix are not a number).
        raise InvalidNumberError(
            NO_NUMBER_AFTER_PREFIX,
            f"Enter the number to call after {K26_HIDE_CALLER_ID_PREFIX}.",
        )
    if len(compact) > MAX_DIAL_LENGTH or too_long(compact.removeprefix(K26_HIDE_CALLER_ID_PREFIX)):
        raise InvalidNumberError(
            NUMBER_TOO_LONG,
            "The number to call is too long: a Dutch number has ten digits, an"
            " international one at most 15 after + or 00.",
        )
    return compact


def too_long(number: str) -> bool:
    """True for a number (a dial string without *31*, K26, or a normalised one) with more
    digits than any number has.

    ``+`` or ``00``: at most 15 digits follow (E.164), and after ``31`` the Dutch
    numbering plan's at most nine (``_NATIONAL_MAX_DIGITS``); ``0``: the same Dutch
    bound after it; anything else (short codes like 112 and 1200, local numbers
    the network completes, K25, and codes with ``*`` and ``#``): at most 15 digits.
    """
    digits = "".join(c for c in number if c.isdigit())
    if number.startswith(_E164):
        international = digits
    elif number.startswith(_INTERNATIONAL_PREFIX):
        international = digits[len(_INTERNATIONAL_PREFIX) :]
    elif number.startswith(K3_NATIONAL_PREFIX):
        return _dutch_too_long(digits[len(K3_NATIONAL_PREFIX) :])
    else:
        return len(digits) > E164_MAX_DIGITS
    if international.startswith(K3_COUNTRY_CODE):
        return _dutch_too_long(international[len(K3_COUNTRY_CODE) :])
    return len(international) > E164_MAX_DIGITS


def _dutch_too_long(significant: str) -> bool:
    """True for more digits after the national 0 / +31 than the Dutch numbering plan has."""
    limit = next(
        (n for prefix, n in _NATIONAL_MAX_DIGITS if significant.startswith(prefix)),
        NATIONAL_SIGNIFICANT_DIGITS,
    )
    return len(significant) > limit
