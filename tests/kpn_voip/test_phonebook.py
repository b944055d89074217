"""The phone book: vCard files to names by number (issue 12)."""

from __future__ import annotations

import pytest

from custom_components.kpn_voip import phonebook
from custom_components.kpn_voip.phonebook import PhoneBook, PhoneBookError, parse_vcards


def card(*lines: str, version: str = "3.0") -> str:
    """One vCard with `lines` between BEGIN and END."""
    return "\r\n".join(["BEGIN:VCARD", f"VERSION:{version}", *lines, "END:VCARD"]) + "\r\n"


def test_numbers_normalised_like_caller_ids() -> None:
    """K16/K25: every written form of a number gives the form a call event carries."""
    book = parse_vcards(
        card("FN:Jan Jansen", "TEL;TYPE=CELL:06-12 34 56 78", "TEL;TYPE=HOME:+31 (0)20 123 4567")
        + card("FN:Oma", "TEL:tel:+31-30-765-4321", version="4.0")
        + card("FN:Bakker", "TEL;TYPE=WORK:0031 10 555 0000")
        + card("FN:London", "TEL:+44 (0)20 7946 0000")
    )
    assert book.names == {
        "+31612345678": "Jan Jansen",
        "+31201234567": "Jan Jansen",
        "+31307654321": "Oma",
        "+31105550000": "Bakker",
        "+442079460000": "London",
    }
    assert book.cards == 4
    assert book.duplicates == 0
    assert len(book) == 5
    assert book.name_for("+31201234567") == "Jan Jansen"
    assert book.name_for("+31999999999") is None
    assert book.name_for(None) is None


def test_name_from_fn_then_n_then_org() -> None:
    """A card's name: FN, else N (given family), else ORG; none: the card adds nothing."""
    book = parse_vcards(
        card("N:Jansen;Piet;;;", "TEL:0201111111")
        + card("ORG:Huisarts Centrum;Balie", "TEL:0202222222")
        + card("TEL:0203333333")
        + card("FN:  Lange   naam  " + "x" * 100, "TEL:0204444444")
    )
    assert book.name_for("+31201111111") == "Piet Jansen"
    assert book.name_for("+31202222222") == "Huisarts Centrum Balie"
    assert book.name_for("+31203333333") is None
    name = book.name_for("+31204444444")
    assert name is not None
    assert name.startswith("Lange naam x")
    assert len(name) == phonebook.MAX_NAME_LENGTH


def test_number_listed_twice_keeps_the_first_card() -> None:
    """The documented rule: the first card in the file wins; others count as duplicates."""
    book = parse_vcards(
        card("FN:Eerste", "TEL:020 123 4567", "TEL:+31201234567")  # same card twice: no conflict
        + card("FN:Tweede", "TEL:+31 20 1234567")
        + card("FN:Derde", "TEL:0201234567")
    )
    assert book.name_for("+31201234567") == "Eerste"
    assert book.duplicates == 2


def test_vcard_21_quoted_printable_and_unusable_numbers() -> None:
    """Old exports (vCard 2.1, quoted-printable names); numbers that are no numbers are skipped."""
    book = parse_vcards(
        card(
            "FN;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:Caf=C3=A9 Hoek",
            "TEL;HOME:0205556666",
            version="2.1",
        )
        + card("FN:Geen nummer", "TEL:bel me maar")
    )
    assert book.names == {"+31205556666": "Café Hoek"}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", phonebook.NOT_A_VCARD),
        ("just some text\nwith lines\n", phonebook.NOT_A_VCARD),
        ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", phonebook.NOT_A_VCARD),
        ("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Kapot\r\n", phonebook.NOT_A_VCARD),
        (card("FN:Alleen naam"), phonebook.NO_NUMBERS),
        (card("TEL:0201234567"), phonebook.NO_NUMBERS),
    ],
)
def test_bad_files(text: str, code: str) -> None:
    """Every unusable file gets its own error code, without its content in the message."""
    with pytest.raises(PhoneBookError) as err:
        parse_vcards(text)
    assert err.value.code == code
    assert "Kapot" not in str(err.value)


def test_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file above the size limit is refused before parsing."""
    monkeypatch.setattr(phonebook, "MAX_FILE_BYTES", 100)
    with pytest.raises(PhoneBookError) as err:
        parse_vcards(card("FN:Jan", "TEL:0201234567") * 3)
    assert err.value.code == phonebook.FILE_TOO_LARGE


def test_empty_book() -> None:
    """The default book names nobody."""
    assert PhoneBook().name_for("+31201234567") is None
    assert len(PhoneBook()) == 0
