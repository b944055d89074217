"""Call targets (config subentries) and their notify entities (issue 11).

notify.send_message calls the target's number and speaks the title and the
message once the call is answered, then hangs up.
"""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er, translation
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kpn_voip.const import CONF_NUMBER, SUBENTRY_CALL_TARGET
from custom_components.kpn_voip.kpn_line.protocol import CallState, Direction

from .conftest import (
    ChirpProvider,
    FakeEngineFactory,
    Line,
    call_event,
    setup_entry,
    until,
    with_call_target,
)

ENTITY = "notify.mobile_jan"


async def test_add_call_target(line: Line) -> None:
    """The subentry flow checks the number as the engine dials it (K25); the new
    target's notify entity comes at once; a removed target's entity goes."""
    hass = line.hass
    result = await hass.config_entries.subentries.async_init(
        (line.entry.entry_id, SUBENTRY_CALL_TARGET), context={"source": "user"}
    )
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": "Mobile Jan", CONF_NUMBER: "+31 020 123"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_NUMBER: "invalid_number"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": "Mobile Jan", CONF_NUMBER: "06 1234 5678 9"}
    )
    assert result["errors"] == {CONF_NUMBER: "number_too_long"}  # a Dutch number has ten digits
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": "Mobile Jan", CONF_NUMBER: " 06 1234 5678 "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    (subentry,) = line.entry.subentries.values()
    assert subentry.title == "Mobile Jan"
    assert subentry.data == {CONF_NUMBER: "06 1234 5678"}
    assert hass.states.get(ENTITY) is not None
    entity = er.async_get(hass).async_get(ENTITY)
    assert entity is not None
    assert entity.config_subentry_id == subentry.subentry_id
    hass.config_entries.async_remove_subentry(line.entry, subentry.subentry_id)
    await hass.async_block_till_done()
    assert er.async_get(hass).async_get(ENTITY) is None


async def test_a_call_target_twice_is_refused(line: Line) -> None:
    """The same number (as dialled) or the same name as another target: a translated
    error naming that target, nothing added; an empty name takes the number."""
    hass = line.hass

    async def add(name: str, number: str) -> dict[str, Any]:
        flow = await hass.config_entries.subentries.async_init(
            (line.entry.entry_id, SUBENTRY_CALL_TARGET), context={"source": "user"}
        )
        return await hass.config_entries.subentries.async_configure(
            flow["flow_id"], {"name": name, CONF_NUMBER: number}
        )

    assert (await add("Mobile Jan", "0612345678"))["type"] is FlowResultType.CREATE_ENTRY
    result = await add("Jan again", "06 1234 5678")
    assert result["errors"] == {CONF_NUMBER: "number_taken"}
    assert result["description_placeholders"] == {"target": "Mobile Jan"}
    result = await add("mobile jan", "0201234567")
    assert result["errors"] == {"name": "name_taken"}
    assert len(line.entry.subentries) == 1
    assert (await add("  ", "0201234567"))["type"] is FlowResultType.CREATE_ENTRY
    assert sorted(s.title for s in line.entry.subentries.values()) == ["0201234567", "Mobile Jan"]
    for language in ("en", "nl"):
        texts = await translation.async_get_translations(
            hass, language, "config_subentries", ["kpn_voip"]
        )
        for code in ("number_taken", "name_taken"):
            key = f"component.kpn_voip.config_subentries.call_target.error.{code}"
            assert "{target}" in texts[key], (language, code)


async def test_send_message_calls_and_speaks(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    speech: ChirpProvider,
) -> None:
    """notify.send_message: dial the number, speak title + message once answered, then
    hang up (hangup_after_playback); ringing is ended after RING_SECONDS."""
    entry = with_call_target(mock_config_entry)
    await setup_entry(hass, entry)
    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": ENTITY, "title": "Alarm", "message": "The smoke detector went off"},
        blocking=True,
    )
    engine = fake_engine.last
    assert engine.dialled == [("06 1234 5678", False, 90.0)]
    engine.emit(call_event(CallState.ANSWERED, call_id="out1", direction=Direction.OUTGOING))
    # the message is made while the call rings, and plays once answered and made
    await until(lambda: any(c[0] == "play" for c in engine.sound))
    (_, call_id, _, loops, then_hangup) = next(c for c in engine.sound if c[0] == "play")
    assert (call_id, loops, then_hangup) == ("out1", 1, True)
    assert speech.spoken[-1][0] == "Alarm. The smoke detector went off"
