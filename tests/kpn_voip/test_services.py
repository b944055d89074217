"""The kpn_voip.dial and kpn_voip.hangup actions."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import translation
from homeassistant.setup import async_setup_component
import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.kpn_voip import coordinator as coordinator_module
from custom_components.kpn_voip.const import DOMAIN
from custom_components.kpn_voip.kpn_line.client import EngineError
from custom_components.kpn_voip.kpn_line.protocol import CallState, RegState
from custom_components.kpn_voip.models import LINE_STATUSES

from .conftest import (
    PASSWORD,
    Line,
    call_event,
    registration,
    setup_entry,
)


async def _refused(
    hass: HomeAssistant,
    action: str,
    data: dict[str, Any],
    error_type: type[Exception] = ServiceValidationError,
) -> HomeAssistantError:
    """The error an action call raises; it must be of `error_type` (translated)."""
    with pytest.raises(error_type) as err:
        await hass.services.async_call(DOMAIN, action, data, blocking=True)
    assert isinstance(err.value, HomeAssistantError)
    return err.value


async def test_services_registered_without_entries(hass: HomeAssistant) -> None:
    """The actions exist as soon as the integration is set up (action-setup)."""
    assert await async_setup_component(hass, DOMAIN, {})
    assert hass.services.has_service(DOMAIN, "dial")
    assert hass.services.has_service(DOMAIN, "hangup")
    err = await _refused(hass, "dial", {"number": "112"})
    assert err.translation_key == "service_found_no_config_entry_for_domain"


async def test_dial(line: Line) -> None:
    """K25: the number goes to the engine as given; the call id comes back."""
    response = await line.hass.services.async_call(
        DOMAIN,
        "dial",
        {"number": "020-123 45 67", "hangup_after": 30},
        blocking=True,
        return_response=True,
    )
    assert response == {"call_id": "out1"}
    assert line.engine.dialled == [("020-123 45 67", False, 30.0)]


async def test_dial_hide_caller_id_with_target(line: Line) -> None:
    """K26: hide_caller_id is passed on; the line can be named."""
    await line.hass.services.async_call(
        DOMAIN,
        "dial",
        {"number": "0612345678", "hide_caller_id": True, "config_entry_id": line.entry.entry_id},
        blocking=True,
    )
    assert line.engine.dialled == [("0612345678", True, None)]


@pytest.mark.parametrize("number", ["", "call me", "+31 6 12-34-56-78 ext 5"])
async def test_dial_invalid_number(line: Line, number: str) -> None:
    """A number that is no dial string is refused (by the engine's one check): no call."""
    err = await _refused(line.hass, "dial", {"number": number})
    assert err.translation_key == "invalid_dial_number"
    assert line.engine.dialled == []


@pytest.mark.parametrize(
    "number", ["020\n1234567", "020 123\r\n4567", "+31 20\u2028123 4567", "020\x001234567"]
)
async def test_dial_number_with_a_line_break_is_invalid(line: Line, number: str) -> None:
    """A number with a line break or another control character inside (two lines pasted)
    is refused with the translated invalid-number error; nothing is dialled.  Around the
    number, white space is trimmed as before."""
    err = await _refused(line.hass, "dial", {"number": number})
    assert err.translation_key == "invalid_dial_number"
    assert line.engine.dialled == []
    await line.hass.services.async_call(
        DOMAIN, "dial", {"number": " 020 123 4567\n"}, blocking=True
    )
    assert line.engine.dialled == [(" 020 123 4567\n", False, None)]


MEDIA = "media-source://media_source/local/greeting.wav"


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"message": "Hello", "media": MEDIA}, "dial_message_and_media", "not both"),
        ({"message": "Hello", "media": {"media_content_id": MEDIA}}, "dial_message_and_media", ""),
        ({"loops": 2}, "playback_without_sound", "(loops)"),
        ({"loops": 0}, "playback_without_sound", ""),
        ({"hangup_after_playback": True}, "playback_without_sound", "(hangup_after_playback)"),
        ({"loops": 3, "hangup_after_playback": True}, "playback_without_sound", ""),
        ({"language": "nl"}, "speech_without_message", "(language)"),
        ({"tts_engine": "tts.chirp"}, "speech_without_message", "(tts_engine)"),
        ({"media": MEDIA, "voice": "Anna"}, "speech_without_message", "(voice)"),
    ],
)
async def test_dial_sound_fields_that_do_not_go_together(
    line: Line, data: dict[str, Any], key: str, words: str
) -> None:
    """message and media both (one plays), loops / hangup_after_playback without either,
    TTS options without a message: a translated error (en + nl, test_validation), not a
    schema error in English or a field silently ignored; nothing is dialled."""
    err = await _refused(line.hass, "dial", {"number": "0612345678", **data})
    assert err.translation_key == key
    assert err.translation_domain == DOMAIN
    assert words in str(err)
    assert line.engine.dialled == []


async def test_dial_sound_fields_left_at_nothing_are_no_error(line: Line) -> None:
    """hangup_after_playback off asks for nothing: a plain dial, as without it."""
    await line.hass.services.async_call(
        DOMAIN,
        "dial",
        {"number": "0612345678", "hangup_after_playback": False},
        blocking=True,
    )
    assert line.engine.dialled == [("0612345678", False, None)]
    assert line.coordinator.sound.pending == {}


@pytest.mark.parametrize(
    ("number", "hide_caller_id"),
    [
        ("1" * 40, False),
        ("0" + "6" * 29, False),  # the newcomer's 30-digit dial
        ("+49 301 2345 6789 012", False),  # 16 digits: E.164 has at most 15
        ("020 123 45678", True),  # K26: *31* and an 11-digit Dutch number
    ],
)
async def test_dial_too_long_number(line: Line, number: str, hide_caller_id: bool) -> None:
    """A number longer than any (E.164's 15 digits, a Dutch one's ten) is refused with
    its own translated error (en + nl) and nothing is dialled; the longest ones go."""
    err = await _refused(line.hass, "dial", {"number": number, "hide_caller_id": hide_caller_id})
    assert err.translation_key == "dial_number_too_long"
    assert "too long" in str(err)
    assert line.engine.dialled == []
    for longest in ("+49 301 2345 6789 01", "0800 123 4567", "020 123 4567"):
        await line.hass.services.async_call(
            DOMAIN, "dial", {"number": longest, "hide_caller_id": hide_caller_id}, blocking=True
        )
    assert len(line.engine.dialled) == 3


@pytest.mark.parametrize(
    ("number", "hide_caller_id"), [("*31*#", False), ("*31*", False), ("#", True), ("*31*", True)]
)
async def test_dial_prefix_without_number(line: Line, number: str, hide_caller_id: bool) -> None:
    """K26: "*31*" hides the caller ID of the number after it; with no number after it
    (or only "#") nothing is dialled and the error says what is missing (en + nl)."""
    err = await _refused(line.hass, "dial", {"number": number, "hide_caller_id": hide_caller_id})
    assert err.translation_key == "no_number_after_prefix"
    assert err.translation_placeholders == {"prefix": "*31*"}
    assert "after *31*" in str(err)
    assert line.engine.dialled == []


@pytest.mark.parametrize(
    ("hangup_after", "error"),
    [(0, ServiceValidationError), (-5, ServiceValidationError), ("soon", probatio.Invalid)],
)
async def test_dial_invalid_hangup_after(
    line: Line, hangup_after: object, error: type[Exception]
) -> None:
    """hangup_after must be a positive number of seconds: a number out of range is a
    translated error (test_numbers_out_of_range_are_translated), no number at all the
    schema's."""
    with pytest.raises(error):
        await line.hass.services.async_call(
            DOMAIN, "dial", {"number": "112", "hangup_after": hangup_after}, blocking=True
        )
    assert line.engine.dialled == []


@pytest.mark.parametrize(
    ("loops", "error"),
    [(-1, ServiceValidationError), (101, ServiceValidationError), ("often", probatio.Invalid)],
)
async def test_dial_invalid_loops(line: Line, loops: object, error: type[Exception]) -> None:
    """dial's loops is a whole number 0..100, as play's and say's: anything else is
    refused before anything is dialled (out of range: a translated error)."""
    with pytest.raises(error):
        await line.hass.services.async_call(
            DOMAIN,
            "dial",
            {"number": "112", "message": "hi", "loops": loops},
            blocking=True,
        )
    assert line.engine.dialled == []


async def test_dial_not_registered(line: Line) -> None:
    """A line that is not registered refuses with a translated error naming its status
    in words (the Line status sensor's state name), not its raw value."""
    await line.emit(registration(RegState.UNREACHABLE, 408))
    err = await _refused(line.hass, "dial", {"number": "112"}, HomeAssistantError)
    assert not isinstance(err, ServiceValidationError)
    assert err.translation_key == "not_registered_unreachable"
    assert err.translation_placeholders == {"line": "Thuis"}
    assert str(err) == "The line Thuis is not registered with KPN (status: KPN unreachable)"
    assert line.engine.dialled == []


async def test_dial_not_registered_in_dutch(line: Line) -> None:
    """The whole text, status included, is in the reader's language: one text per
    status (a placeholder is never translated; the frontend translates the key)."""
    await line.die()
    err = await _refused(line.hass, "dial", {"number": "112"}, HomeAssistantError)
    assert err.translation_key == "not_registered_engine_down"
    nl = await _dutch(line.hass, err)
    assert nl == "De lijn Thuis is niet aangemeld bij KPN (status: Engine onverwacht gestopt)."


@pytest.mark.parametrize("language", ["en", "nl"])
async def test_every_line_status_has_its_not_registered_text(
    hass: HomeAssistant, language: str
) -> None:
    """Each status the line can have (LINE_STATUSES) has its text, with the line's name."""
    texts = await translation.async_get_translations(hass, language, "exceptions", {DOMAIN})
    assert set(coordinator_module.NOT_REGISTERED_KEYS) == set(LINE_STATUSES)
    for status in LINE_STATUSES:
        key = coordinator_module.NOT_REGISTERED_KEYS[status]
        assert key == f"not_registered_{status.value}"
        assert "{line}" in texts[f"component.{DOMAIN}.exceptions.{key}.message"], language


async def test_dial_engine_down(line: Line) -> None:
    """With the engine dead, dial and hangup say so."""
    await line.die()
    err = await _refused(line.hass, "dial", {"number": "112"}, HomeAssistantError)
    assert err.translation_key == "not_registered_engine_down"
    err = await _refused(line.hass, "hangup", {}, HomeAssistantError)
    assert err.translation_key == "engine_not_running"


@pytest.mark.parametrize(
    ("code", "error_type", "key"),
    [
        ("invalid_number", ServiceValidationError, "invalid_dial_number"),
        ("not_registered", HomeAssistantError, "not_registered_registered"),
        ("locked_out", HomeAssistantError, "not_registered_registered"),
        ("internal", HomeAssistantError, "engine_internal"),
        ("line_busy", ServiceValidationError, "line_busy"),  # K24: two calls up already
        ("timeout", HomeAssistantError, "engine_timeout"),
    ],
)
async def test_dial_engine_errors(
    line: Line, code: str, error_type: type[Exception], key: str
) -> None:
    """Engine errors become translated Home Assistant errors, never secrets."""
    line.engines.dial_error = EngineError(code, "something went wrong")
    err = await _refused(line.hass, "dial", {"number": "112"}, error_type)
    assert err.translation_key == key
    assert PASSWORD not in str(err)


async def test_hangup(line: Line) -> None:
    """Hang up one call or every call."""
    response = await line.hass.services.async_call(
        DOMAIN, "hangup", {"call_id": "out1"}, blocking=True, return_response=True
    )
    assert response == {"ended": 1}
    await line.hass.services.async_call(DOMAIN, "hangup", {}, blocking=True)
    assert line.engine.hangups == ["out1", None]

    line.engines.hangup_error = EngineError("no_such_call", "no call out9")
    err = await _refused(line.hass, "hangup", {"call_id": "out9"})
    assert err.translation_key == "no_such_call"
    assert err.translation_placeholders == {"call_id": "out9"}
    assert str(err).startswith("There is no call out9 on the line")
    nl = await _dutch(line.hass, err)
    assert nl.startswith("Er is geen gesprek out9 op de lijn")


async def _dutch(hass: HomeAssistant, err: HomeAssistantError) -> str:
    """`err`'s message as a Dutch user reads it (translations/nl.json)."""
    loaded = await translation.async_get_translations(hass, "nl", "exceptions", {DOMAIN})
    text = loaded[f"component.{DOMAIN}.exceptions.{err.translation_key}.message"]
    return text.format(**(err.translation_placeholders or {}))


async def test_line_busy_is_a_validation_error_and_logs_nothing_of_ours(
    line: Line,
    hass_ws_client: WebSocketGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """K24: a dial while two calls are up is the user's to change (end a call): a
    ServiceValidationError, shown in the user's language, that reaches the frontend as
    a validation error; no log line of the integration's own, and none from Home
    Assistant with a stack trace or "Error during service call" (its HomeAssistantError
    form)."""
    line.engines.dial_error = EngineError("line_busy", "the line carries 2 calls already (K24)")
    client = await hass_ws_client(line.hass)
    caplog.clear()
    await client.send_json_auto_id(
        {
            "type": "call_service",
            "domain": DOMAIN,
            "service": "dial",
            "service_data": {"number": "0612345678"},
        }
    )
    reply = await client.receive_json()
    assert not reply["success"]
    error = reply["error"]
    assert (error["code"], error["translation_key"]) == ("service_validation_error", "line_busy")
    assert "end a call before dialling another" in error["message"]
    ours = [r for r in caplog.records if r.name.startswith("custom_components.kpn_voip")]
    assert [r for r in ours if r.levelno >= logging.WARNING] == []
    theirs = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert all(r.exc_info is None for r in theirs)
    assert not any("Error during service call" in r.getMessage() for r in theirs)
    assert line.engine.dialled == []


async def test_several_lines_need_a_target(line: Line) -> None:
    """With two lines the action must name one; then it uses that one."""
    first = line.engine
    second_entry = MockConfigEntry(
        domain=DOMAIN,
        title="Kantoor",
        unique_id="+31107654321",
        data={
            "number": "+31107654321",
            "username": "87654321@ims.imscore.net",
            "password": "another-password",
            "display_name": "Kantoor",
        },
    )
    await setup_entry(line.hass, second_entry)
    second = line.engine
    err = await _refused(line.hass, "dial", {"number": "112"})
    assert err.translation_key == "service_found_multiple_config_entry_for_domain"
    await line.hass.services.async_call(
        DOMAIN,
        "dial",
        {"number": "112", "config_entry_id": second_entry.entry_id},
        blocking=True,
    )
    assert (first.dialled, second.dialled) == ([], [("112", False, None)])


async def test_target_must_be_loaded(line: Line) -> None:
    """A line that is not loaded (or not ours) is refused."""
    await _refused(line.hass, "dial", {"number": "112", "config_entry_id": "nope"})
    await line.hass.config_entries.async_unload(line.entry.entry_id)
    await _refused(line.hass, "dial", {"number": "112", "config_entry_id": line.entry.entry_id})


@pytest.mark.parametrize(
    ("code", "key", "english", "dutch"),
    [
        ("internal", "engine_internal", "its SIP library failed", "SIP-bibliotheek faalde"),
        ("timeout", "engine_timeout", "did not answer in time", "antwoordde niet op tijd"),
        ("bad_request", "engine_bad_request", "did not understand", "begreep het verzoek niet"),
        ("engine_died", "engine_died", "stopped unexpectedly", "onverwacht gestopt"),
        ("protocol", "engine_protocol", "does not fit this version", "past niet bij deze"),
        # a code this integration does not know: the generic sentence
        ("brand_new_code", "engine_error", "an unexpected error", "een onverwachte fout"),
    ],
)
async def test_engine_failures_are_sentences_not_codes(
    line: Line, caplog: pytest.LogCaptureFixture, code: str, key: str, english: str, dutch: str
) -> None:
    """The engine's own failure of a command reads as a sentence in the user's language
    (en + nl), never as the engine's raw code (issue 11's newcomer check: "The line
    engine reported an error: internal."); the code and the engine's detail are in the
    log.  It is a HomeAssistantError (the line failed, not the input)."""
    line.engines.dial_error = EngineError(code, "detail of the failure")
    err = await _refused(line.hass, "dial", {"number": "112"}, HomeAssistantError)
    assert not isinstance(err, ServiceValidationError)
    assert (err.translation_domain, err.translation_key) == (DOMAIN, key)
    assert not err.translation_placeholders
    assert english in str(err)
    assert code not in str(err)
    nl = await _dutch(line.hass, err)
    assert dutch in nl
    assert code not in nl
    assert f"{code}: detail of the failure" in caplog.text


# Each out-of-range error in full, en and nl (placeholders: value, min, max).
OUT_OF_RANGE = {
    "hangup_after_out_of_range": (
        "Ring for at most (hangup_after) must be from {min} to {max} seconds, not {value}",
        "Maximaal laten overgaan (hangup_after) moet van {min} tot {max} seconden zijn,"
        " niet {value}",
    ),
    "loops_out_of_range": (
        "Repeat (loops) must be a whole number from {min} to {max} (0 plays until the call"
        " ends), not {value}",
        "Herhalen (loops) moet een heel getal van {min} tot {max} zijn (0 speelt tot het"
        " gesprek eindigt), niet {value}",
    ),
    "max_seconds_out_of_range": (
        "Maximum length (max_seconds) must be from {min} to {max} seconds, not {value}",
        "Maximale lengte (max_seconds) moet van {min} tot {max} seconden zijn, niet {value}",
    ),
    "silence_seconds_out_of_range": (
        "Stop after silence (silence_seconds) must be from {min} to {max} seconds, not {value}",
        "Stoppen na stilte (silence_seconds) moet van {min} tot {max} seconden zijn, niet {value}",
    ),
}


@pytest.mark.parametrize(
    ("action", "data", "key", "value_min_max"),
    [
        ("dial", {"hangup_after": 0}, "hangup_after_out_of_range", ("0", "1", "86400")),
        ("dial", {"hangup_after": "nan"}, "hangup_after_out_of_range", ("nan", "1", "86400")),
        ("dial", {"message": "Hi", "loops": 101}, "loops_out_of_range", ("101", "0", "100")),
        ("play", {"media": MEDIA, "loops": -1}, "loops_out_of_range", ("-1", "0", "100")),
        ("say", {"message": "Hi", "loops": 1000}, "loops_out_of_range", ("1000", "0", "100")),
        ("record", {"max_seconds": 0}, "max_seconds_out_of_range", ("0", "1", "3600")),
        ("record", {"max_seconds": 7200}, "max_seconds_out_of_range", ("7200", "1", "3600")),
        (
            "record",
            {"silence_seconds": 0.25},
            "silence_seconds_out_of_range",
            ("0.25", "0.5", "60"),
        ),
        ("record", {"silence_seconds": 61}, "silence_seconds_out_of_range", ("61", "0.5", "60")),
    ],
)
async def test_numbers_out_of_range_are_translated(
    line: Line,
    action: str,
    data: dict[str, Any],
    key: str,
    value_min_max: tuple[str, str, str],
) -> None:
    """A number outside its field's range (max_seconds: 0, loops: 101, ...) is a
    translated ServiceValidationError naming the field, its range and the value (en +
    nl), not the schema's English "value must be at least 1"; nothing reaches the
    engine."""
    target = {"number": "112"} if action == "dial" else {"call_id": "c1"}
    err = await _refused(line.hass, action, {**target, **data})
    assert (err.translation_domain, err.translation_key) == (DOMAIN, key)
    placeholders = dict(zip(("value", "min", "max"), value_min_max, strict=True))
    assert err.translation_placeholders == placeholders
    english, dutch = OUT_OF_RANGE[key]
    assert str(err) == english.format(**placeholders)
    assert await _dutch(line.hass, err) == dutch.format(**placeholders) + "."
    assert line.engine.dialled == []
    assert line.engine.sound == []


async def test_numbers_at_the_ends_of_their_ranges_are_taken(line: Line, media_dir: Path) -> None:
    """The ends of each range are allowed (the selectors' min and max)."""
    hass = line.hass
    await hass.services.async_call(
        DOMAIN, "dial", {"number": "112", "hangup_after": 86400}, blocking=True
    )
    await hass.services.async_call(
        DOMAIN, "dial", {"number": "112", "hangup_after": 1}, blocking=True
    )
    assert [hangup for *_, hangup in line.engine.dialled] == [86400.0, 1.0]
    for call_id, max_seconds, silence_seconds in (("c1", 3600, 60), ("c2", 1, 0.5)):
        await line.emit(call_event(CallState.ANSWERED, call_id=call_id))
        await hass.services.async_call(
            DOMAIN,
            "record",
            {"call_id": call_id, "max_seconds": max_seconds, "silence_seconds": silence_seconds},
            blocking=True,
            return_response=True,
        )
    assert [c[3:] for c in line.engine.sound] == [(3600.0, 60.0), (1.0, 0.5)]
