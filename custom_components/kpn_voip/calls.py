"""The calls of one line: history, missed-call count, do-not-disturb, phone book, call policy.

One ``LineCalls`` per config entry, owned by the coordinator.  It puts the
phone book's name on every call event before the entities see it
(``named``), and when a call ends it adds one ``CallRecord`` to the history
(``handle_call``, after the line's state is written).  The history, the
missed-call count and the do-not-disturb switch are kept in Home Assistant's
``Store`` (a private file in ``.storage``), so they survive a restart; the
history is bounded (``HISTORY_SIZE`` newest calls).  The block and allow
lists and the phone book come from the entry's options.  docs/calls.md describes the rules.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util, ulid as ulid_util

from .const import (
    CONF_ALLOW,
    CONF_BLOCK,
    CONF_BLOCK_ANONYMOUS,
    CONF_PHONE_BOOK,
    DOMAIN,
    LOGGER,
    PHONE_BOOK_UPLOAD_PATH,
)
from .kpn_line.policy import CallPolicy, InvalidEntryError, Refusal, parse_entries
from .kpn_line.protocol import (
    CallerId,
    CallEvent,
    CallState,
    Direction,
    MediaEvent,
    RecordingSavedEvent,
)
from .phonebook import UNREADABLE, PhoneBook, PhoneBookError, parse_vcards

HISTORY_SIZE: Final = 200
STORAGE_VERSION: Final = 1
SAVE_DELAY: Final = 10.0  # seconds; a burst of calls is written once
# Far-end answers to an outgoing call that mean "busy" (RFC 3261 21.4.24, 21.6.1)
# and "declined" (21.6.2).
_BUSY_CODES: Final = frozenset({486, 600})
_DECLINED_CODES: Final = frozenset({603})


class CallOutcome(StrEnum):
    """How a call ended, from this line's side."""

    ANSWERED = "answered"  # talked (either direction)
    MISSED = "missed"  # incoming, rang, nobody answered
    # incoming, another device answered it (CANCEL with Reason SIP;cause=200, RFC 3326)
    ANSWERED_ELSEWHERE = "answered_elsewhere"
    REJECTED = "rejected"  # incoming refused before it rang, or outgoing declined (603)
    BUSY = "busy"  # outgoing, the far end was busy (486/600)
    FAILED = "failed"  # outgoing, not answered for another reason


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call in the history.

    ``start`` is when it began to ring (or was dialled), ``end`` when it
    ended; ``duration`` is the talk time in seconds (0 unless answered).
    ``caller`` is the other party as the call event carried it (K16), with
    the phone book's name.  ``refused`` says why the line refused it before
    it rang.
    ``recording`` is the file of the call's last recording (the `record`
    command's `recording_saved`), if one was made.
    """

    uid: str
    call_id: str
    direction: Direction
    outcome: CallOutcome
    start: datetime
    end: datetime
    duration: float
    caller: CallerId = field(default_factory=CallerId)
    code: int | None = None
    refused: Refusal | None = None
    recording: str | None = None

    def to_store(self) -> dict[str, Any]:
        """The JSON-ready form kept in the Store."""
        data = asdict(self)
        data.pop("caller")
        data |= self.caller.attributes()
        data["start"] = self.start.isoformat()
        data["end"] = self.end.isoformat()
        return data

    @classmethod
    def from_store(cls, data: Mapping[str, Any]) -> CallRecord:
        """Back from the Store; raises KeyError/ValueError/TypeError for a damaged entry."""
        start = dt_util.parse_datetime(data["start"])
        end = dt_util.parse_datetime(data["end"])
        if start is None or end is None:
            raise ValueError("bad time")
        refused = data.get("refused")
        return cls(
            uid=str(data["uid"]),
            call_id=str(data["call_id"]),
            direction=Direction(data["direction"]),
            outcome=CallOutcome(data["outcome"]),
            start=start,
            end=end,
            duration=float(data["duration"]),
            caller=CallerId(
                number=data.get("number"),
                national=data.get("national"),
                name=data.get("name"),
                anonymous=bool(data.get("anonymous", False)),
            ),
            code=data.get("code"),
            refused=None if refused is None else Refusal(refused),
            recording=data.get("recording"),
        )


def call_outcome(event: CallEvent, *, answered: bool) -> CallOutcome:
    """The outcome of a call from its ``ended`` event (and whether it was answered)."""
    if event.refused is not None:
        return CallOutcome.REJECTED
    if answered:
        return CallOutcome.ANSWERED
    if event.direction is Direction.INCOMING:
        if event.end_reason is not None and event.end_reason.answered_elsewhere:
            return CallOutcome.ANSWERED_ELSEWHERE
        return CallOutcome.MISSED
    if event.code in _BUSY_CODES:
        return CallOutcome.BUSY
    if event.code in _DECLINED_CODES:
        return CallOutcome.REJECTED
    return CallOutcome.FAILED


def call_policy(options: Mapping[str, Any], *, do_not_disturb: bool) -> CallPolicy:
    """The call policy from an entry's options and the do-not-disturb switch.

    Lists were validated by the options flow; an entry that no longer parses
    (an options file edited by hand) leaves its list empty and is logged.
    """
    lists: dict[str, tuple[str, ...]] = {}
    for key in (CONF_BLOCK, CONF_ALLOW):
        try:
            lists[key] = parse_entries(options.get(key) or ())
        except InvalidEntryError as err:
            LOGGER.warning("The %s list is ignored: %s", key, err)
            lists[key] = ()
    return CallPolicy(
        do_not_disturb=do_not_disturb,
        block_anonymous=bool(options.get(CONF_BLOCK_ANONYMOUS, False)),
        block=lists[CONF_BLOCK],
        allow=lists[CONF_ALLOW],
    )


def read_phone_book(path: Path) -> PhoneBook:
    """Read and parse a .vcf file (blocking: run it in the executor).

    Raises PhoneBookError (``phone_book_unreadable`` when the file cannot be read).
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise PhoneBookError(UNREADABLE, "The phone book file cannot be read.") from err
    # vCard 4.0 is UTF-8 (RFC 6350 section 3.1); older exports may be Latin-1.
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_vcards(text)


# Texts in Home Assistant's language, from the integration's entity translations:
# the calendar's summaries, and "Hidden number" in them.  HIDDEN_NUMBER is also the
# Last caller sensor's state for a hidden caller, translated by the frontend.
TEXTS: Final = f"component.{DOMAIN}.entity.calendar.calls.state_attributes.summary.state"
HIDDEN_NUMBER: Final = "hidden_number"


def translated(translations: Mapping[str, str], key: str, **placeholders: str) -> str:
    """A text of TEXTS in the user's language (the key itself if it is missing)."""
    text = translations.get(f"{TEXTS}.{key}") or key
    for name, value in placeholders.items():
        text = text.replace(f"{{{name}}}", value)
    return text


def caller_text(caller: CallerId, translations: Mapping[str, str]) -> str:
    """Who called (or was called), as people read it: "Jan Jansen (0612345678)",
    "0612345678", or "Hidden number" in the user's language (K16)."""
    number = caller.national or caller.number
    if caller.name and number:
        return f"{caller.name} ({number})"
    if name_or_number := caller.name or number:
        return name_or_number
    return translated(translations, HIDDEN_NUMBER)


type PolicyListener = Callable[[CallPolicy], Awaitable[None]]


class LineCalls:
    """The calls of one line (see the module's docstring)."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Initialise empty; async_load reads the Store and the phone book."""
        self.hass = hass
        self.entry = entry
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.calls.{entry.entry_id}", private=True
        )
        self.history: deque[CallRecord] = deque(maxlen=HISTORY_SIZE)
        self.missed = 0
        self.missed_since: datetime | None = None
        self.do_not_disturb = False
        self.phone_book = PhoneBook()
        self.phone_book_error: str | None = None
        self.policy = CallPolicy()
        # Calls in progress: the time they started and whether they were answered.
        self._open: dict[str, tuple[float, bool]] = {}
        # Recordings of calls in progress (call id -> file), for their record.
        self._recordings: dict[str, str] = {}
        self._listeners: list[CALLBACK_TYPE] = []
        self._policy_listener: PolicyListener | None = None
        self._unsaved = False

    # -- life cycle ------------------------------------------------------------

    async def async_load(self) -> None:
        """Read the history from the Store and the phone book from its file."""
        data = await self._store.async_load() or {}
        records: list[CallRecord] = []
        damaged = 0
        for item in data.get("calls", []):
            try:
                records.append(CallRecord.from_store(item))
            except (KeyError, ValueError, TypeError):
                damaged += 1
        if damaged:
            LOGGER.warning("%d damaged entries of the call history were dropped", damaged)
        self.history.extend(records[-HISTORY_SIZE:])
        self.missed = int(data.get("missed", 0))
        self.missed_since = dt_util.parse_datetime(data.get("missed_since") or "")
        self.do_not_disturb = bool(data.get("do_not_disturb", False))
        self.policy = call_policy(self.entry.options, do_not_disturb=self.do_not_disturb)
        await self._async_load_phone_book()
        # A reload (options) must not lose the calls of the last SAVE_DELAY seconds.
        self.entry.async_on_unload(self._async_flush)

    async def _async_load_phone_book(self) -> None:
        if not (name := self.entry.options.get(CONF_PHONE_BOOK)):
            return
        path = Path(self.hass.config.path(name))
        try:
            self.phone_book = await self.hass.async_add_executor_job(read_phone_book, path)
        except PhoneBookError as err:
            # The file name is the user's, the content never appears (personal data).
            LOGGER.warning("The phone book %s is not used: %s", name, err)
            self.phone_book_error = err.code
        else:
            self.phone_book_error = None

    async def _async_flush(self) -> None:
        if self._unsaved:
            self._unsaved = False
            await self._store.async_save(self._data_to_save())

    async def async_remove(self) -> None:
        """Delete the stored history and an uploaded phone book (the line is removed)."""
        await self._store.async_remove()
        upload = Path(
            self.hass.config.path(PHONE_BOOK_UPLOAD_PATH.format(entry_id=self.entry.entry_id))
        )
        await self.hass.async_add_executor_job(upload.unlink, True)

    @callback
    def _data_to_save(self) -> dict[str, Any]:
        self._unsaved = False
        return {
            "calls": [record.to_store() for record in self.history],
            "missed": self.missed,
            "missed_since": None if self.missed_since is None else self.missed_since.isoformat(),
            "do_not_disturb": self.do_not_disturb,
        }

    @callback
    def _changed(self) -> None:
        self._unsaved = True
        self._store.async_delay_save(self._data_to_save, SAVE_DELAY)
        for listener in tuple(self._listeners):
            listener()

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Be told when the history, the count or do-not-disturb changes; returns the remover."""
        self._listeners.append(listener)

        @callback
        def remove() -> None:
            self._listeners.remove(listener)

        return remove

    @callback
    def async_set_policy_listener(self, listener: PolicyListener | None) -> None:
        """Who sends a changed policy to the engine (the coordinator)."""
        self._policy_listener = listener

    # -- calls -----------------------------------------------------------------

    def named(self, event: CallEvent) -> CallEvent:
        """The event as the entities see it: the phone book's name wins, the network's
        name (K16) stays when the book has none."""
        if (name := self.phone_book.name_for(event.caller.number)) is not None:
            event = replace(event, caller=replace(event.caller, name=name))
        return event

    @callback
    def handle_call(self, event: CallEvent) -> None:
        """Follow a call (its event as `named` gave it); record it in the history when it
        ends.  The coordinator calls this after the line's state is written (issue 11)."""
        if event.state is not CallState.ENDED:
            started, answered = self._open.get(event.call_id, (event.time, False))
            self._open[event.call_id] = (started, answered or event.state is CallState.ANSWERED)
            return
        started, answered = self._open.pop(event.call_id, (event.time, False))
        self._record(event, started=started, answered=answered or bool(event.duration))

    @callback
    def handle_sound(self, event: MediaEvent) -> None:
        """A saved recording goes to its call: the one in progress, or the newest record
        with that call id (the recording usually ends with the call)."""
        if not isinstance(event, RecordingSavedEvent):
            return
        if event.call_id in self._open:
            self._recordings[event.call_id] = event.file
            return
        for index in range(len(self.history) - 1, -1, -1):
            if (record := self.history[index]).call_id == event.call_id:
                self.history[index] = replace(record, recording=event.file)
                self._changed()
                return

    @callback
    def _record(self, event: CallEvent, *, started: float, answered: bool) -> None:
        end = dt_util.utc_from_timestamp(event.time) if event.time else dt_util.utcnow()
        start = dt_util.utc_from_timestamp(started) if started else end
        record = CallRecord(
            uid=ulid_util.ulid_now(),
            call_id=event.call_id,
            direction=event.direction,
            outcome=call_outcome(event, answered=answered),
            start=min(start, end),
            end=end,
            duration=round(event.duration or 0.0, 1),
            caller=event.caller,
            code=event.code,
            refused=None if event.refused is None else Refusal(event.refused),
            recording=self._recordings.pop(event.call_id, None),
        )
        self.history.append(record)
        if record.outcome is CallOutcome.MISSED:
            self.missed += 1
        self._changed()

    @callback
    def clear_missed(self) -> None:
        """Set the missed-call count to 0 (the button)."""
        self.missed = 0
        self.missed_since = dt_util.utcnow()
        self._changed()

    def records_between(self, start: datetime, end: datetime) -> Iterable[CallRecord]:
        """The calls that overlap [start, end), oldest first."""
        return (record for record in self.history if record.start < end and record.end >= start)

    @property
    def last(self) -> CallRecord | None:
        """The newest call in the history."""
        return self.history[-1] if self.history else None

    # -- do not disturb and the call policy --------------------------------------

    async def async_set_do_not_disturb(self, on: bool) -> None:
        """Switch do-not-disturb; the engine gets the new policy at once."""
        self.do_not_disturb = on
        self.policy = call_policy(self.entry.options, do_not_disturb=on)
        self._changed()
        if self._policy_listener is not None:
            await self._policy_listener(self.policy)

    # -- diagnostics -------------------------------------------------------------

    def diagnostics(self) -> dict[str, Any]:
        """Counts only: no number, name or time of anybody's call (personal data)."""
        return {
            "history_size": len(self.history),
            "outcomes": dict(Counter(record.outcome.value for record in self.history)),
            "directions": dict(Counter(record.direction.value for record in self.history)),
            "refused": dict(
                Counter(record.refused.value for record in self.history if record.refused)
            ),
            "recordings": sum(record.recording is not None for record in self.history),
            "missed": self.missed,
            "do_not_disturb": self.do_not_disturb,
            "block_anonymous": self.policy.block_anonymous,
            "block_entries": len(self.policy.block),
            "allow_entries": len(self.policy.allow),
            "phone_book": {
                "configured": bool(self.entry.options.get(CONF_PHONE_BOOK)),
                "numbers": len(self.phone_book),
                "cards": self.phone_book.cards,
                "duplicates": self.phone_book.duplicates,
                "error": self.phone_book_error,
            },
        }
