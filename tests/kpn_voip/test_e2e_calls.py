"""End to end (issue 12): Home Assistant + the real engine + Kamailio / SIPp.

A blocked number and an anonymous caller (option on) are refused on the wire
(603) before anything rings and never fire incoming_call; the do-not-disturb
switch turns the outcome into 486 and back; every call is in the history,
and the history survives a restart of Home Assistant (its Store written at
the final write, then read by a new set-up of the line).
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import (
    ATTR_ENTITY_ID,
    EVENT_HOMEASSISTANT_FINAL_WRITE,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
)
from homeassistant.core import HomeAssistant
import pytest

from custom_components.kpn_voip.calls import LineCalls
from custom_components.kpn_voip.const import CONF_BLOCK, CONF_BLOCK_ANONYMOUS
from kpn_devtools.kamailio import Kamailio
from kpn_devtools.sipp import Sipp, SippRun

from .test_e2e import (  # the same set-up as the other end-to-end tests
    _entry,
    _no_secrets_logged,  # noqa: F401  (autouse fixture)
    _real_pjsua2_check,  # noqa: F401  (autouse fixture)
    _setup_registered,
    _unload,
    _wait,
    events,  # noqa: F401  (fixture)
)

pytestmark = [pytest.mark.peers, pytest.mark.timeout(120)]

DND = "switch.thuis_do_not_disturb"
STORE_KEY_PREFIX = "kpn_voip.calls."


async def _finished(hass: HomeAssistant, run: SippRun) -> SippRun:
    await hass.async_add_executor_job(run.wait, 15)
    return run


def _outcomes(calls: LineCalls) -> list[tuple[str | None, str, str | None]]:
    return [
        (record.caller.number, record.outcome.value, record.refused) for record in calls.history
    ]


async def test_refused_calls_on_the_wire_and_in_the_history(
    hass: HomeAssistant,
    kamailio: Kamailio,
    sipp: Sipp,
    events: list[dict[str, Any]],  # noqa: F811
    hass_storage: dict[str, Any],
) -> None:
    """Block list and anonymous: 603; DND on: 486, off: rings; history kept over a restart."""
    entry = _entry(kamailio)
    entry = type(entry)(
        domain=entry.domain,
        title=entry.title,
        unique_id=entry.unique_id,
        data=dict(entry.data),
        options={
            **entry.options,
            CONF_BLOCK: ["0900*", "06 1111 1111"],
            CONF_BLOCK_ANONYMOUS: True,
        },
    )
    await _setup_registered(hass, entry)
    try:
        calls: LineCalls = entry.runtime_data.calls

        run = await _finished(hass, sipp.call_line(kamailio, caller="+31611111111", ring_seconds=3))
        assert run.final_code("INVITE") == 603
        run = await _finished(hass, sipp.call_line(kamailio, privacy=True, pai=[], ring_seconds=3))
        assert run.final_code("INVITE") == 603
        await _wait(hass, lambda: len(calls.history) == 2, what="two refused calls")

        await hass.services.async_call(
            SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: DND}, blocking=True
        )
        run = await _finished(hass, sipp.call_line(kamailio, caller="+31622222222", ring_seconds=3))
        assert run.final_code("INVITE") == 486
        await hass.services.async_call(
            SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: DND}, blocking=True
        )
        run = await _finished(
            hass, sipp.call_line(kamailio, caller="+31622222222", ring_seconds=1.5)
        )
        assert 180 in run.responses("INVITE")
        await _wait(hass, lambda: len(calls.history) == 4, what="four calls")

        assert _outcomes(calls) == [
            ("+31611111111", "rejected", "blocked"),
            (None, "rejected", "anonymous"),
            ("+31622222222", "rejected", "do_not_disturb"),
            ("+31622222222", "missed", None),
        ]
        assert calls.missed == 1
        # No incoming_call for a refused call: only for the one that rang.
        assert [e["event_type"] for e in events] == [
            "rejected_call",
            "rejected_call",
            "rejected_call",
            "incoming_call",
            "missed_call",
        ]
        assert [e["refused"] for e in events if e["event_type"] == "rejected_call"] == [
            "blocked",
            "anonymous",
            "do_not_disturb",
        ]

        # Home Assistant stops: its final write stores the pending history.
        hass.bus.async_fire(EVENT_HOMEASSISTANT_FINAL_WRITE)
        await hass.async_block_till_done()
        key = STORE_KEY_PREFIX + entry.entry_id
        assert len(hass_storage[key]["data"]["calls"]) == 4
    finally:
        await _unload(hass, entry)

    # ... and starts again: a new set-up of the line reads it back.
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    try:
        calls = entry.runtime_data.calls
        assert [r[1] for r in _outcomes(calls)] == ["rejected", "rejected", "rejected", "missed"]
        assert calls.missed == 1
        assert calls.do_not_disturb is False
    finally:
        await _unload(hass, entry)


async def test_call_answered_elsewhere_is_not_missed_end_to_end(
    hass: HomeAssistant,
    kamailio: Kamailio,
    sipp: Sipp,
    events: list[dict[str, Any]],  # noqa: F811
) -> None:
    """RFC 3326: the caller CANCELs with `Reason: SIP;cause=200` (another device of the
    forked call answered): call_ended with answered_elsewhere, history outcome
    answered_elsewhere, missed-call count 0; a CANCEL with Q.850 cause 16 is missed."""
    entry = _entry(kamailio)
    await _setup_registered(hass, entry)
    try:
        calls: LineCalls = entry.runtime_data.calls
        elsewhere = 'Reason: SIP;cause=200;text="Call completed elsewhere"'
        run = await _finished(
            hass,
            sipp.call_line(kamailio, ring_seconds=1.5, play_audio=False, end_headers=[elsewhere]),
        )
        assert run.final_code("INVITE") == 487
        await _wait(hass, lambda: len(calls.history) == 1, what="the call answered elsewhere")
        run = await _finished(
            hass,
            sipp.call_line(
                kamailio, ring_seconds=1.5, play_audio=False, end_headers=["Reason: Q.850;cause=16"]
            ),
        )
        assert run.final_code("INVITE") == 487
        await _wait(hass, lambda: len(calls.history) == 2, what="the missed call")

        assert [r.outcome.value for r in calls.history] == ["answered_elsewhere", "missed"]
        assert calls.missed == 1
        ended = [e for e in events if e["event_type"] in ("call_ended", "missed_call")]
        assert [(e["event_type"], e["answered_elsewhere"], e["end_reason"]) for e in ended] == [
            (
                "call_ended",
                True,
                {"protocol": "SIP", "cause": 200, "text": "Call completed elsewhere"},
            ),
            ("missed_call", False, {"protocol": "Q.850", "cause": 16, "text": None}),
        ]
    finally:
        await _unload(hass, entry)


async def test_a_third_call_is_refused_busy_end_to_end(
    hass: HomeAssistant,
    kamailio: Kamailio,
    sipp: Sipp,
    events: list[dict[str, Any]],  # noqa: F811
) -> None:
    """K24: while two calls ring (a call and a waiting one), a third is refused 486 Busy
    Here before it rings: rejected_call with `refused` busy, in the history as rejected,
    no incoming_call; the two go on.  Once one has ended, the next call rings again."""
    entry = _entry(kamailio)
    await _setup_registered(hass, entry)
    try:
        calls: LineCalls = entry.runtime_data.calls

        def fired() -> list[tuple[str, str | None, bool]]:
            return [(e["event_type"], e["number"], e["waiting"]) for e in events]

        first = sipp.call_line(kamailio, caller="+31611111111", ring_seconds=4, play_audio=False)
        await _wait(hass, lambda: len(events) == 1, what="the first call rings")
        second = sipp.call_line(kamailio, caller="+31622222222", ring_seconds=7, play_audio=False)
        await _wait(hass, lambda: len(events) == 2, what="the second call rings")
        third = await _finished(
            hass, sipp.call_line(kamailio, caller="+31633333333", ring_seconds=3)
        )
        assert third.final_code("INVITE") == 486
        assert 180 not in third.responses("INVITE")
        await _wait(hass, lambda: len(calls.history) == 1, what="the refused call")
        assert _outcomes(calls) == [("+31633333333", "rejected", "busy")]
        assert fired() == [
            ("incoming_call", "+31611111111", False),
            ("incoming_call", "+31622222222", True),
            ("rejected_call", "+31633333333", True),
        ]
        assert events[-1]["refused"] == "busy"
        assert events[-1]["code"] == 486
        assert first.running
        assert second.running

        await _finished(hass, first)  # its caller gives up: one call left
        assert first.final_code("INVITE") == 487
        fourth = await _finished(
            hass, sipp.call_line(kamailio, caller="+31644444444", ring_seconds=1)
        )
        assert 180 in fourth.responses("INVITE")
        await _finished(hass, second)
        await _wait(hass, lambda: len(calls.history) == 4, what="four calls")
        assert sorted(_outcomes(calls)) == [
            ("+31611111111", "missed", None),
            ("+31622222222", "missed", None),
            ("+31633333333", "rejected", "busy"),
            ("+31644444444", "missed", None),
        ]
        assert ("incoming_call", "+31644444444", True) in fired()
    finally:
        await _unload(hass, entry)
