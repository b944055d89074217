"""Names for numbers: a phone book read from a vCard (.vcf) file.

Pure data (no Home Assistant import, no I/O): `calls.py` reads the file in an
executor and hands its text here.  It lives beside the integration, not in
the engine package: the engine never needs names, and vobject stays out of
the engine process.  The cards are parsed with ``vobject`` (a maintained
vCard 2.1/3.0/4.0 parser); every TEL of a card is normalised with the same
rules as a presented caller ID (K16, ``numbers.normalize_presented_number``:
E.164 where possible, separators of K25 and a bracketed trunk prefix
removed), so a lookup with the number of a call event is one dict access.

Rules (docs/calls.md):

* The card's name is its FN; without FN, the structured N (given, then
  family name); without either, its ORG.  A card with none of them, or
  without a usable TEL, adds nothing.
* A number listed twice keeps the name of the *first* card in the file
  that lists it (the order a phone's export keeps); a later card that gives
  it another name is counted in ``PhoneBook.duplicates`` (diagnostics shows
  the count) and otherwise ignored.
* Names are trimmed and cut to ``MAX_NAME_LENGTH`` characters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import vobject
from vobject.base import VObjectError

from .kpn_line.numbers import normalize_presented_number

MAX_NAME_LENGTH: Final = 64
MAX_FILE_BYTES: Final = 8 << 20  # 8 MiB: tens of thousands of cards

# Error codes (PhoneBookError.code); Home Assistant translates them.
NOT_A_VCARD: Final = "not_a_vcard"
FILE_TOO_LARGE: Final = "phone_book_too_large"
NO_NUMBERS: Final = "phone_book_empty"
UNREADABLE: Final = "phone_book_unreadable"
PHONE_BOOK_NOT_FOUND: Final = "phone_book_not_found"
ERROR_CODES: Final = (NOT_A_VCARD, FILE_TOO_LARGE, NO_NUMBERS, UNREADABLE, PHONE_BOOK_NOT_FOUND)


class PhoneBookError(ValueError):
    """A file that is not a usable phone book; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        """Store the code; the message never repeats the file's content (personal data)."""
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class PhoneBook:
    """Names by number (E.164 where the number could be made so).

    ``names`` maps a normalised number to a name; ``cards`` counts the cards
    read, ``duplicates`` the numbers that were listed again (and ignored).
    """

    names: dict[str, str] = field(default_factory=dict)
    cards: int = 0
    duplicates: int = 0

    def name_for(self, number: str | None) -> str | None:
        """The name for ``number`` (as a call event carries it), or None. O(1)."""
        if not number:
            return None
        return self.names.get(number)

    def __len__(self) -> int:
        """How many numbers have a name."""
        return len(self.names)


def _text(value: Any) -> str:
    if isinstance(value, list):  # ORG is a list of units
        value = " ".join(str(part) for part in value if part)
    return " ".join(str(value).split())


def _card_name(card: Any) -> str | None:
    """FN, else N (given family), else ORG."""
    contents: dict[str, list[Any]] = card.contents
    for line in contents.get("fn", []):
        if name := _text(line.value):
            return name[:MAX_NAME_LENGTH]
    for line in contents.get("n", []):
        value = line.value
        parts = (getattr(value, "given", ""), getattr(value, "family", ""))
        if name := _text(" ".join(_text(part) for part in parts if part)):
            return name[:MAX_NAME_LENGTH]
    for line in contents.get("org", []):
        if name := _text(line.value):
            return name[:MAX_NAME_LENGTH]
    return None


def _card_numbers(card: Any) -> Iterator[str]:
    for line in card.contents.get("tel", []):
        if (number := normalize_presented_number(str(line.value))) is not None:
            yield number


def parse_vcards(text: str) -> PhoneBook:
    """A phone book from the text of a .vcf file.

    Raises PhoneBookError: ``not_a_vcard`` when the text is no vCard data,
    ``phone_book_too_large`` above MAX_FILE_BYTES, ``phone_book_empty`` when
    no card has both a name and a usable number.
    """
    if len(text) > MAX_FILE_BYTES:
        raise PhoneBookError(FILE_TOO_LARGE, "The phone book file is larger than 8 MiB.")
    names: dict[str, str] = {}
    cards = duplicates = 0
    try:
        for card in vobject.readComponents(text, ignoreUnreadable=True):
            if card.name != "VCARD":
                continue
            cards += 1
            if (name := _card_name(card)) is None:
                continue
            for number in _card_numbers(card):
                if number in names:
                    # The first card wins; the same number twice in one card is no conflict.
                    duplicates += names[number] != name
                    continue
                names[number] = name
    except (VObjectError, ValueError, TypeError, AttributeError) as err:
        raise PhoneBookError(NOT_A_VCARD, "The file is not a readable vCard (.vcf) file.") from err
    if not cards:
        raise PhoneBookError(NOT_A_VCARD, "The file is not a readable vCard (.vcf) file.")
    if not names:
        raise PhoneBookError(NO_NUMBERS, "No card in the file has a name and a phone number.")
    return PhoneBook(names=names, cards=cards, duplicates=duplicates)
