"""Which incoming calls may ring: do-not-disturb, block and allow lists.

Pure data and rules, no pjsua2 and no Home Assistant.  The integration builds
a ``CallPolicy`` from its options and switches; the engine receives it with
the ``set_call_policy`` command and asks ``CallPolicy.decide`` about every
INVITE *before* it answers 180, so a refused call never rings anywhere.

Rules (docs/calls.md):

* An entry is a number (``"020 123 4567"``, ``"+31201234567"``) or a prefix
  ending in ``*`` (``"0900*"``, ``"+44*"``).  Both are normalised like a
  presented caller ID (K16, K25: separators and a bracketed trunk prefix
  removed, national ``0`` -> ``+31``), so ``"0612345678"`` in a list matches
  a caller presented as ``+31612345678``.
* The allow list wins over everything: an allowed caller rings even with
  do-not-disturb on or a matching block entry (the Fritz!Box "VIP" rule).
* Then do-not-disturb refuses every other call with 486 Busy Here
  (RFC 3261 section 21.4.24: the callee's end system was reached but cannot
  take the call now); the network may then treat it as busy (for example
  its voicemail on busy).
* Then a blocked number or prefix, or an anonymous caller while
  ``block_anonymous`` is on, is refused with 603 Decline (RFC 3261 section
  21.6.2: the user does not wish to take the call; a 6xx ends the search at
  every location, section 16.7, so the network does not try elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
import re
from typing import Any, Final

from .numbers import normalize_presented_number, too_long

BUSY_HERE: Final = 486  # RFC 3261 21.4.24: do-not-disturb
DECLINE: Final = 603  # RFC 3261 21.6.2: block list, anonymous callers
PREFIX_MARK: Final = "*"
MAX_ENTRIES: Final = 500
MAX_ENTRY_LENGTH: Final = 32

# Error code (InvalidEntryError.code); Home Assistant translates it.
INVALID_ENTRY: Final = "invalid_list_entry"
TOO_MANY_ENTRIES: Final = "too_many_list_entries"
ERROR_CODES: Final = (INVALID_ENTRY, TOO_MANY_ENTRIES)

_SPLIT = re.compile(r"[,;\n]+")


class Refusal(StrEnum):
    """Why a call was refused before it rang (the ``refused`` field of its call event)."""

    DO_NOT_DISTURB = "do_not_disturb"
    BLOCKED = "blocked"
    ANONYMOUS = "anonymous"
    BUSY = "busy"  # every call slot of the line is taken (the engine's, not a list's)

    @property
    def code(self) -> int:
        """The SIP status code the INVITE is answered with."""
        return BUSY_HERE if self in (Refusal.DO_NOT_DISTURB, Refusal.BUSY) else DECLINE

    @property
    def reason(self) -> str:
        """The reason phrase of that code (RFC 3261 section 21)."""
        return "Busy Here" if self.code == BUSY_HERE else "Decline"


class InvalidEntryError(ValueError):
    """A list entry that is no number or prefix; ``position`` is its 1-based place."""

    def __init__(self, code: str, position: int) -> None:
        """The message never repeats the entry (other people's numbers)."""
        super().__init__(f"entry {position} is not a phone number or a prefix ending in *")
        self.code = code
        self.position = position


def normalize_entry(text: str) -> str:
    """One list entry in its matching form: a number, or a prefix ending in ``*``.

    ``"020-123 4567"`` -> ``"+31201234567"``; ``"0900*"`` -> ``"+31900*"``;
    ``"+44 20*"`` -> ``"+4420*"``.  Raises ValueError for anything else.
    """
    text = text.strip()
    prefix = text.endswith(PREFIX_MARK)
    body = text.removesuffix(PREFIX_MARK)
    if not body or len(text) > MAX_ENTRY_LENGTH:
        raise ValueError("empty or too long")
    if prefix:
        # A prefix is too short to be a presented number: normalise it with a
        # filler so "0900" becomes "+31900", then take the filler off again.
        filler = "0000000"
        number = normalize_presented_number(body + filler)
        if number is None or not number.endswith(filler):
            raise ValueError("not a prefix")
        return number.removesuffix(filler) + PREFIX_MARK
    if (number := normalize_presented_number(body)) is None or too_long(number):
        raise ValueError("not a number")  # too long: longer than the numbering plan's
    return number


def parse_entries(text: str | Iterable[str]) -> tuple[str, ...]:
    """The entries of a list typed in a text box (commas, semicolons or new lines).

    Duplicates are dropped, order kept.  Raises InvalidEntryError with the
    1-based position of the first bad entry, or when there are more than
    MAX_ENTRIES.
    """
    raw = _SPLIT.split(text) if isinstance(text, str) else list(text)
    entries: dict[str, None] = {}
    position = 0
    for item in raw:
        if not item.strip():
            continue
        position += 1
        try:
            entries[normalize_entry(item)] = None
        except ValueError:
            raise InvalidEntryError(INVALID_ENTRY, position) from None
    if len(entries) > MAX_ENTRIES:
        raise InvalidEntryError(TOO_MANY_ENTRIES, MAX_ENTRIES + 1)
    return tuple(entries)


class _Matcher:
    """Exact numbers in a set, prefixes tried by length: O(entries' distinct lengths)."""

    __slots__ = ("_numbers", "_prefix_lengths", "_prefixes")

    def __init__(self, entries: Iterable[str]) -> None:
        self._numbers: set[str] = set()
        self._prefixes: set[str] = set()
        for entry in entries:
            if entry.endswith(PREFIX_MARK):
                self._prefixes.add(entry.removesuffix(PREFIX_MARK))
            else:
                self._numbers.add(entry)
        self._prefix_lengths = sorted({len(prefix) for prefix in self._prefixes})

    def __call__(self, number: str | None) -> bool:
        if not number:
            return False
        if number in self._numbers:
            return True
        return any(number[:length] in self._prefixes for length in self._prefix_lengths)


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """What the engine does with an incoming call before it rings.

    ``block`` and ``allow`` hold normalised entries (``normalize_entry``).
    The default policy lets every call ring.
    """

    do_not_disturb: bool = False
    block_anonymous: bool = False
    block: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    _blocked: _Matcher = field(init=False, repr=False, compare=False)
    _allowed: _Matcher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Build the matchers once; decide() runs for every INVITE."""
        object.__setattr__(self, "_blocked", _Matcher(self.block))
        object.__setattr__(self, "_allowed", _Matcher(self.allow))

    def decide(self, number: str | None, *, anonymous: bool) -> Refusal | None:
        """None when the call may ring, else why it is refused (see the module's rules)."""
        if not anonymous and self._allowed(number):
            return None
        if self.do_not_disturb:
            return Refusal.DO_NOT_DISTURB
        if anonymous:
            return Refusal.ANONYMOUS if self.block_anonymous else None
        return Refusal.BLOCKED if self._blocked(number) else None

    def to_wire(self) -> dict[str, Any]:
        """The ``policy`` field of the ``set_call_policy`` command."""
        return {
            "do_not_disturb": self.do_not_disturb,
            "block_anonymous": self.block_anonymous,
            "block": list(self.block),
            "allow": list(self.allow),
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> CallPolicy:
        """Decode and validate a wire policy; raises ValueError (the engine's bad_request)."""
        flags: list[bool] = []
        for key in ("do_not_disturb", "block_anonymous"):
            value = data.get(key, False)
            if not isinstance(value, bool):
                # ValueError for every bad field: the engine answers it with bad_request.
                raise ValueError(f"{key} must be true or false")  # noqa: TRY004
            flags.append(value)
        lists: list[tuple[str, ...]] = []
        for key in ("block", "allow"):
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise ValueError(f"{key} must be a list of strings")
            try:
                lists.append(parse_entries(value))
            except InvalidEntryError as err:
                raise ValueError(f"{key}: {err}") from None
        return cls(
            do_not_disturb=flags[0], block_anonymous=flags[1], block=lists[0], allow=lists[1]
        )
