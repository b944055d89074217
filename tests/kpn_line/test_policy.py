"""The call policy: do-not-disturb, block and allow lists (issue 12)."""

from __future__ import annotations

from typing import Any

import pytest

from custom_components.kpn_voip.kpn_line import policy
from custom_components.kpn_voip.kpn_line.policy import (
    CallPolicy,
    InvalidEntryError,
    Refusal,
    normalize_entry,
    parse_entries,
)


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("020 123 4567", "+31201234567"),
        ("+31 (0)20-123 4567", "+31201234567"),
        ("0612345678", "+31612345678"),
        ("0900*", "+31900*"),
        ("  06 *", "+316*"),
        ("+44 20*", "+4420*"),
        ("0044*", "+44*"),
        ("112", "112"),
    ],
)
def test_normalize_entry(text: str, entry: str) -> None:
    """Entries are matched in the form call events carry (K16, K25)."""
    assert normalize_entry(text) == entry


@pytest.mark.parametrize(
    "text",
    [
        *("", "*", "abc", "+0*", "06-bellen", "1" * 40, "+31 (0)*x"),
        # Longer than any number (numbers.too_long): a Dutch one has ten digits with its 0.
        *("020 123 45678", "+31 20 123 45678", "0" + "6" * 29, "+49 301 2345 6789 012"),
    ],
)
def test_normalize_entry_refuses(text: str) -> None:
    """Anything but a number or a prefix ending in * is refused."""
    with pytest.raises(ValueError):
        normalize_entry(text)


def test_parse_entries() -> None:
    """Commas, semicolons and new lines separate; duplicates go, order stays."""
    assert parse_entries("0900*, 020 123 4567;\n+31201234567\n\n0612345678") == (
        "+31900*",
        "+31201234567",
        "+31612345678",
    )
    assert parse_entries(["0900*", " "]) == ("+31900*",)
    with pytest.raises(InvalidEntryError) as err:
        parse_entries("0900*, 020 123 4567, nope, 06*")
    assert err.value.position == 3
    assert err.value.code == policy.INVALID_ENTRY
    assert "nope" not in str(err.value)


def test_too_many_entries() -> None:
    """The list size is bounded."""
    many = [f"+3120{n:07d}" for n in range(policy.MAX_ENTRIES + 1)]
    assert len(parse_entries(many[:-1])) == policy.MAX_ENTRIES
    with pytest.raises(InvalidEntryError) as err:
        parse_entries(many)
    assert err.value.code == policy.TOO_MANY_ENTRIES


JAN = "+31612345678"
SPAM = "+31900123456"


def test_default_lets_every_call_ring() -> None:
    """No lists, no do-not-disturb: nothing is refused."""
    default = CallPolicy()
    assert default.decide(JAN, anonymous=False) is None
    assert default.decide(None, anonymous=True) is None


def test_block_numbers_prefixes_and_anonymous() -> None:
    """Blocked numbers and prefixes, and anonymous callers when asked, get 603."""
    rules = CallPolicy(block=parse_entries("0900*, 020 123 4567"), block_anonymous=True)
    assert rules.decide(SPAM, anonymous=False) is Refusal.BLOCKED
    assert rules.decide("+31201234567", anonymous=False) is Refusal.BLOCKED
    assert rules.decide("+31201234568", anonymous=False) is None
    assert rules.decide(JAN, anonymous=False) is None
    assert rules.decide(None, anonymous=True) is Refusal.ANONYMOUS
    assert rules.decide(None, anonymous=False) is None  # no number, not hidden: rings
    assert Refusal.BLOCKED.code == Refusal.ANONYMOUS.code == 603
    assert CallPolicy(block=("+31900*",)).decide(None, anonymous=True) is None


def test_do_not_disturb_and_allow_list() -> None:
    """DND refuses with 486; the allow list beats DND and the block list."""
    rules = CallPolicy(
        do_not_disturb=True, block=parse_entries("06*"), allow=parse_entries("0612345678")
    )
    assert rules.decide(JAN, anonymous=False) is None
    assert rules.decide("+31687654321", anonymous=False) is Refusal.DO_NOT_DISTURB
    assert rules.decide(None, anonymous=True) is Refusal.DO_NOT_DISTURB
    assert Refusal.DO_NOT_DISTURB.code == 486
    assert CallPolicy(block=parse_entries("06*"), allow=(JAN,)).decide(JAN, anonymous=False) is None


def test_wire_round_trip() -> None:
    """to_wire / from_wire keep every field."""
    rules = CallPolicy(do_not_disturb=True, block_anonymous=True, block=("+31900*",), allow=(JAN,))
    assert CallPolicy.from_wire(rules.to_wire()) == rules
    assert CallPolicy.from_wire({}) == CallPolicy()


@pytest.mark.parametrize(
    "wire",
    [
        {"do_not_disturb": "yes"},
        {"block_anonymous": 1},
        {"block": "0900*"},
        {"allow": [1]},
        {"block": ["nope"]},
    ],
)
def test_from_wire_refuses(wire: dict[str, Any]) -> None:
    """A malformed policy is a ValueError (the engine's bad_request)."""
    with pytest.raises(ValueError):
        CallPolicy.from_wire(wire)
