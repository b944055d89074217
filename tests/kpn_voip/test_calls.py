"""The calls of a line: history, outcomes, missed count, phone book, persistence (issue 12)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kpn_voip import calls as calls_module
from custom_components.kpn_voip.calls import CallOutcome, CallRecord, LineCalls, call_outcome
from custom_components.kpn_voip.const import CONF_BLOCK, CONF_PHONE_BOOK
from custom_components.kpn_voip.kpn_line.protocol import (
    CallerId,
    CallEvent,
    CallState,
    Direction,
    EndReason,
    RecordingEnd,
    RecordingSavedEvent,
)

from .conftest import Line, call_event, setup_entry

STORE_KEY = "kpn_voip.calls.01KPNLINE0000000000000000A"
LAST_CALLER = "sensor.thuis_last_caller"
EVENT = "event.thuis_call"
T0 = 1764100800.0  # 2025-11-25 20:00:00 UTC

VCARDS = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jan Jansen\r\nTEL:06 1234 5678\r\nEND:VCARD\r\n"
    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Oma\r\nTEL:+31 (0)30 765 4321\r\nEND:VCARD\r\n"
)


@pytest.fixture
def platforms() -> list[Platform]:
    """The event entity and the sensors: what the phone book's names reach."""
    return [Platform.EVENT, Platform.SENSOR]


def with_options(entry: MockConfigEntry, options: dict[str, Any]) -> MockConfigEntry:
    """The same line with `options`."""
    return MockConfigEntry(
        domain=entry.domain,
        title=entry.title,
        unique_id=entry.unique_id,
        entry_id=entry.entry_id,
        data=dict(entry.data),
        options=options,
    )


def outgoing(state: CallState, call_id: str = "o1", **changes: Any) -> CallEvent:
    """An outgoing call event."""
    event = call_event(state, call_id=call_id, direction=Direction.OUTGOING, name=None, at=T0 + 5)
    return replace(event, **changes)


def refused(reason: str, code: int, call_id: str = "r1", **caller: Any) -> CallEvent:
    """The single event of a call the engine refused before it rang."""
    event = call_event(CallState.ENDED, call_id=call_id, duration=0, at=T0 + 9, **caller)
    return replace(event, code=code, reason="Declined", refused=reason)


def outcomes(line: Line) -> list[tuple[str, str]]:
    """(call id, outcome) of every call in the history, oldest first."""
    return [(record.call_id, record.outcome.value) for record in line.coordinator.calls.history]


async def test_answered_elsewhere_is_not_missed(line: Line) -> None:
    """RFC 3326: an incoming call another device answered (CANCEL with Reason
    SIP;cause=200) is `answered_elsewhere` and not counted; a Q.850 reason is missed."""
    elsewhere = EndReason("SIP", 200, "Call completed elsewhere")
    await line.emit(
        call_event(CallState.RINGING, call_id="e", at=T0),
        call_event(CallState.ENDED, call_id="e", duration=0, at=T0 + 2, end_reason=elsewhere),
        call_event(CallState.RINGING, call_id="q", at=T0 + 10),
        call_event(
            CallState.ENDED,
            call_id="q",
            missed=True,
            duration=0,
            at=T0 + 12,
            end_reason=EndReason("Q.850", 16),
        ),
    )
    assert outcomes(line) == [("e", "answered_elsewhere"), ("q", "missed")]
    assert line.coordinator.calls.missed == 1


async def test_outcomes(line: Line) -> None:
    """Each way a call ends gives its outcome; only missed incoming calls are counted."""
    await line.emit(
        call_event(CallState.RINGING, call_id="a", at=T0),
        call_event(CallState.ANSWERED, call_id="a", at=T0 + 3),
        call_event(CallState.ENDED, call_id="a", duration=42.04, at=T0 + 45),
        call_event(CallState.RINGING, call_id="m", at=T0 + 50),
        call_event(CallState.ENDED, call_id="m", missed=True, duration=0, at=T0 + 60),
        outgoing(CallState.DIALING, "busy"),
        outgoing(CallState.ENDED, "busy", code=486, duration=0),
        outgoing(CallState.DIALING, "declined"),
        outgoing(CallState.ENDED, "declined", code=603, duration=0),
        outgoing(CallState.DIALING, "failed"),
        outgoing(CallState.ALERTING, "failed"),
        outgoing(CallState.ENDED, "failed", code=487, duration=0),
        outgoing(CallState.ANSWERED, "talked"),
        outgoing(CallState.ENDED, "talked", code=200, duration=3.0),
        refused("blocked", 603),
        refused("do_not_disturb", 486, call_id="r2"),
    )
    assert outcomes(line) == [
        ("a", "answered"),
        ("m", "missed"),
        ("busy", "busy"),
        ("declined", "rejected"),
        ("failed", "failed"),
        ("talked", "answered"),
        ("r1", "rejected"),
        ("r2", "rejected"),
    ]
    calls = line.coordinator.calls
    assert calls.missed == 1
    answered = calls.history[0]
    assert answered.duration == 42.0
    assert answered.start.timestamp() == T0
    assert answered.end.timestamp() == T0 + 45
    assert answered.caller == CallerId("+31612345678", "0612345678", "Jan", anonymous=False)
    assert answered.recording is None
    assert calls.history[-1].refused == "do_not_disturb"
    assert calls.history[-1].start == calls.history[-1].end  # never rang


def test_outcome_answered_without_answered_event() -> None:
    """An ended event with talk time is answered even if its answered event was lost."""
    event = call_event(CallState.ENDED, direction=Direction.OUTGOING, duration=5)
    assert call_outcome(event, answered=False) is CallOutcome.FAILED
    assert call_outcome(event, answered=True) is CallOutcome.ANSWERED


async def test_history_is_bounded(line: Line, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the newest HISTORY_SIZE calls are kept."""
    events = [
        call_event(CallState.ENDED, call_id=f"c{n}", missed=True, duration=0, at=T0 + n)
        for n in range(calls_module.HISTORY_SIZE + 5)
    ]
    await line.emit(*events)
    history = line.coordinator.calls.history
    assert len(history) == calls_module.HISTORY_SIZE
    assert history[0].call_id == "c5"
    # The count is not bounded by the history.
    assert line.coordinator.calls.missed == calls_module.HISTORY_SIZE + 5


async def test_history_survives_restart(
    hass: HomeAssistant, line: Line, hass_storage: dict[str, Any]
) -> None:
    """Stored after a delay; an unload (reload, HA stop) writes what is pending."""
    await line.emit(
        call_event(CallState.RINGING, at=T0),
        call_event(CallState.ENDED, missed=True, duration=0, at=T0 + 20),
    )
    await line.coordinator.calls.async_set_do_not_disturb(True)
    assert STORE_KEY not in hass_storage  # not yet: SAVE_DELAY
    await line.advance(calls_module.SAVE_DELAY + 1)
    assert hass_storage[STORE_KEY]["data"]["missed"] == 1
    await line.emit(call_event(CallState.ENDED, call_id="c2", missed=True, duration=0, at=T0 + 30))
    await hass.config_entries.async_reload(line.entry.entry_id)
    await hass.async_block_till_done()
    stored = hass_storage[STORE_KEY]["data"]
    assert [call["call_id"] for call in stored["calls"]] == ["c1", "c2"]
    calls = line.coordinator.calls  # the new coordinator's
    assert [record.call_id for record in calls.history] == ["c1", "c2"]
    assert calls.missed == 2
    assert calls.do_not_disturb is True
    assert calls.history[0] == CallRecord.from_store(stored["calls"][0])


async def test_damaged_store_entries_are_dropped(
    hass: HomeAssistant,
    fake_engine: Any,
    mock_config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A damaged entry (a hand-edited file) is dropped, the rest is kept."""
    good = {
        "uid": "u1",
        "call_id": "c1",
        "direction": "incoming",
        "outcome": "missed",
        "start": "2025-11-25T20:00:00+00:00",
        "end": "2025-11-25T20:00:10+00:00",
        "duration": 0,
    }
    hass_storage[STORE_KEY] = {
        "version": 1,
        "minor_version": 1,
        "key": STORE_KEY,
        "data": {
            "calls": [good, {**good, "outcome": "exploded"}, {**good, "start": "never"}, {}],
            "missed": 3,
        },
    }
    await setup_entry(hass, mock_config_entry)
    calls: LineCalls = mock_config_entry.runtime_data.calls
    assert [record.uid for record in calls.history] == ["u1"]
    assert calls.missed == 3
    assert "3 damaged entries of the call history were dropped" in caplog.text


async def test_remove_entry_deletes_history(line: Line, hass_storage: dict[str, Any]) -> None:
    """Removing the line removes its stored calls (personal data)."""
    await line.emit(call_event(CallState.ENDED, missed=True, duration=0, at=T0))
    await line.advance(calls_module.SAVE_DELAY + 1)
    assert STORE_KEY in hass_storage
    await line.hass.config_entries.async_remove(line.entry.entry_id)
    await line.hass.async_block_till_done()
    assert STORE_KEY not in hass_storage


async def test_phone_book_names_callers(
    hass: HomeAssistant,
    fake_engine: Any,
    mock_config_entry: MockConfigEntry,
    tmp_path: Path,
) -> None:
    """The book's name wins; the network's name (K16) stays when the book has none."""
    book = tmp_path / "contacts.vcf"
    book.write_text(VCARDS, encoding="utf-8")
    mock_config_entry = with_options(mock_config_entry, {CONF_PHONE_BOOK: str(book)})
    await setup_entry(hass, mock_config_entry)
    engine = fake_engine.last

    engine.emit(call_event(CallState.RINGING, name="J. JANSEN", at=T0))
    await hass.async_block_till_done()
    state = hass.states.get(EVENT)
    assert state is not None
    assert state.attributes["name"] == "Jan Jansen"
    state = hass.states.get(LAST_CALLER)
    assert state is not None
    assert state.attributes["name"] == "Jan Jansen"

    engine.emit(
        call_event(
            CallState.ENDED,
            call_id="c2",
            number="+31201112233",
            national="0201112233",
            name="Bakkerij",
            missed=True,
            duration=0,
            at=T0 + 10,
        )
    )
    engine.emit(
        call_event(
            CallState.ENDED,
            call_id="c3",
            number="+31307654321",
            national=None,
            name=None,
            missed=True,
            duration=0,
            at=T0 + 20,
        )
    )
    await hass.async_block_till_done()
    calls: LineCalls = mock_config_entry.runtime_data.calls
    assert [record.caller.name for record in calls.history] == ["Bakkerij", "Oma"]
    assert calls.diagnostics()["phone_book"] == {
        "configured": True,
        "numbers": 2,
        "cards": 2,
        "duplicates": 0,
        "error": None,
    }


@pytest.mark.parametrize(
    ("content", "code"),
    [(None, "phone_book_unreadable"), (b"\xff\xfe no vcard", "not_a_vcard")],
)
async def test_unusable_phone_book(
    hass: HomeAssistant,
    fake_engine: Any,
    mock_config_entry: MockConfigEntry,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    content: bytes | None,
    code: str,
) -> None:
    """A missing or broken file: a warning, no names, the line works."""
    book = tmp_path / "contacts.vcf"
    if content is not None:
        book.write_bytes(content)
    mock_config_entry = with_options(mock_config_entry, {CONF_PHONE_BOOK: str(book)})
    await setup_entry(hass, mock_config_entry)
    calls: LineCalls = mock_config_entry.runtime_data.calls
    assert calls.phone_book_error == code
    assert "is not used" in caplog.text
    fake_engine.last.emit(call_event(CallState.RINGING, at=T0))
    await hass.async_block_till_done()
    state = hass.states.get(EVENT)
    assert state is not None
    assert state.attributes["name"] == "Jan"


async def test_bad_list_in_options_is_ignored(
    hass: HomeAssistant,
    fake_engine: Any,
    mock_config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A list that no longer parses (options edited by hand) is left empty, and logged."""
    mock_config_entry = with_options(mock_config_entry, {CONF_BLOCK: ["0900*", "not a number"]})
    await setup_entry(hass, mock_config_entry)
    assert mock_config_entry.runtime_data.calls.policy.block == ()
    assert "The block list is ignored" in caplog.text
    assert "not a number" not in caplog.text


async def test_diagnostics_counts_only(line: Line) -> None:
    """Counts by outcome, direction and refusal; nothing about who called."""
    await line.emit(
        call_event(CallState.ENDED, missed=True, duration=0, at=T0),
        refused("anonymous", 603, number=None, national=None, name=None, anonymous=True),
    )
    diagnostics = line.coordinator.calls.diagnostics()
    assert diagnostics["outcomes"] == {"missed": 1, "rejected": 1}
    assert diagnostics["directions"] == {"incoming": 2}
    assert diagnostics["refused"] == {"anonymous": 1}
    assert diagnostics["missed"] == 1
    assert "Jan" not in str(diagnostics)
    assert "612345678" not in str(diagnostics)


async def test_recordings_reach_their_call(line: Line) -> None:
    """A recording saved during a call, or just after it ended, is in its record."""
    await line.emit(
        call_event(CallState.RINGING, call_id="a", at=T0),
        call_event(CallState.ANSWERED, call_id="a", at=T0 + 1),
        RecordingSavedEvent(
            call_id="a", file="/media/a.wav", duration=3.0, reason=RecordingEnd.ENDED
        ),
        call_event(CallState.ENDED, call_id="a", duration=4, at=T0 + 5),
        call_event(CallState.RINGING, call_id="b", at=T0 + 10),
        call_event(CallState.ANSWERED, call_id="b", at=T0 + 11),
        call_event(CallState.ENDED, call_id="b", duration=4, at=T0 + 15),
        RecordingSavedEvent(
            call_id="b", file="/media/b.wav", duration=3.5, reason=RecordingEnd.ENDED
        ),
        RecordingSavedEvent(  # a call this history never saw: nothing happens
            call_id="zz", file="/media/z.wav", duration=1.0, reason=RecordingEnd.ENDED
        ),
    )
    calls = line.coordinator.calls
    assert [record.recording for record in calls.history] == ["/media/a.wav", "/media/b.wav"]
    assert calls.diagnostics()["recordings"] == 2
    assert "/media" not in str(calls.diagnostics())
