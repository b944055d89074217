"""The line's actions: dial, hangup, and sound on calls (answer, play, say, record, ...)."""

from __future__ import annotations

from collections.abc import Mapping
import re
from typing import Any, Final, cast

from homeassistant.const import ATTR_CONFIG_ENTRY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service import async_get_config_entry
import probatio

from .const import DOMAIN
from .coordinator import KpnVoipConfigEntry, KpnVoipCoordinator
from .sound import tts_media_id

HANGUP_AFTER_MAX = 24 * 3600
MAX_LOOPS: Final = 100
MAX_RECORD_SECONDS: Final = 3600
MAX_SILENCE_SECONDS: Final = 60
DTMF_DIGITS: Final = re.compile(r"[0-9*#A-D]{1,32}")
# The number fields' ranges, (least, most), as services.yaml's selectors show them.  They
# are checked by _check_ranges, not by the schemas: Home Assistant sends a schema's
# error (probatio.Invalid) to the user as it is, in English ("value must be at least
# 1"), while a ServiceValidationError is shown in the user's language.
# Each field: (least, most, the translation key of its error).
RANGES: Final[dict[str, tuple[float, float, str]]] = {
    "hangup_after": (1, HANGUP_AFTER_MAX, "hangup_after_out_of_range"),  # seconds
    "loops": (0, MAX_LOOPS, "loops_out_of_range"),  # times; 0: until the call ends
    "max_seconds": (1, MAX_RECORD_SECONDS, "max_seconds_out_of_range"),  # seconds
    "silence_seconds": (0.5, MAX_SILENCE_SECONDS, "silence_seconds_out_of_range"),  # seconds
}
LINE: Final[dict[Any, Any]] = {probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string}
CALL: Final[dict[Any, Any]] = {**LINE, probatio.Required("call_id"): cv.string}
# What to play: a media source id (TTS too), as text or from the media selector.
MEDIA: Final = probatio.Any(
    cv.string, probatio.Schema({"media_content_id": cv.string}, extra=probatio.ALLOW_EXTRA)
)
# What to say: a text and, optionally, which TTS engine, language and voice.
SPEECH_FIELDS: Final = ("tts_engine", "language", "voice")
SPEECH: Final[dict[Any, Any]] = {probatio.Optional(field): cv.string for field in SPEECH_FIELDS}
LOOPS: Final = probatio.Coerce(int)
PLAYBACK: Final[dict[Any, Any]] = {
    probatio.Optional("loops", default=1): LOOPS,
    probatio.Optional("hangup_after_playback", default=False): cv.boolean,
}

# An action's fields (besides the target line) go to the coordinator method
# it calls as they are: async_dial, async_hangup.
DIAL_SCHEMA = probatio.Schema(
    {
        probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Required("number"): cv.string,
        probatio.Optional("hide_caller_id", default=False): cv.boolean,
        probatio.Optional("hangup_after"): probatio.Coerce(float),
        # Played once the far end answers (issue 11): a text to say, or media,
        # `loops` times.  Which of these go together is checked by _dial_sound, with
        # translated errors (a schema's Exclusive error is English only).
        probatio.Optional("message"): cv.string,
        probatio.Optional("media"): MEDIA,
        **SPEECH,
        # No defaults: given without message or media they are an error, not ignored.
        probatio.Optional("loops"): LOOPS,
        probatio.Optional("hangup_after_playback"): cv.boolean,
    }
)
ANSWER_SCHEMA = probatio.Schema(CALL)
PLAY_SCHEMA = probatio.Schema({**CALL, probatio.Required("media"): MEDIA, **PLAYBACK})
SAY_SCHEMA = probatio.Schema(
    {**CALL, probatio.Required("message"): cv.string, **SPEECH, **PLAYBACK}
)
RECORD_SCHEMA = probatio.Schema(
    {
        **CALL,
        probatio.Optional("max_seconds", default=120): probatio.Coerce(float),
        probatio.Optional("silence_seconds"): probatio.Coerce(float),
    }
)
SEND_DTMF_SCHEMA = probatio.Schema({**CALL, probatio.Required("digits"): cv.string})
STOP_PLAYBACK_SCHEMA = probatio.Schema(CALL)
HANGUP_SCHEMA = probatio.Schema(
    {
        probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Optional("call_id"): cv.string,
    }
)


def _line(hass: HomeAssistant, entry_id: str | None) -> KpnVoipCoordinator:
    """The line an action targets: the entry given, or the only one loaded."""
    entry = cast(KpnVoipConfigEntry, async_get_config_entry(hass, DOMAIN, entry_id))
    return entry.runtime_data


def _media_id(hass: HomeAssistant, data: dict[str, Any]) -> str | None:
    """The media source id to play: `media`, or `message` said by TTS (a thin wrapper
    over the TTS media source); None when there is neither."""
    if (media := data.get("media")) is not None:
        return str(media["media_content_id"] if isinstance(media, dict) else media)
    if (message := data.get("message")) is None:
        return None
    return tts_media_id(
        hass,
        message,
        engine=data.get("tts_engine"),
        language=data.get("language"),
        voice=data.get("voice"),
    )


def _check_ranges(data: Mapping[str, Any]) -> None:
    """Check the number fields of an action's data against RANGES.

    Raises ServiceValidationError `<field>_out_of_range` (placeholders `value`, `min`,
    `max`: numbers as the user writes them, in the field's unit) for the first field
    outside its range; NaN is outside every range.
    """
    for field, (least, most, key) in RANGES.items():
        value = data.get(field)
        if value is not None and not least <= value <= most:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key=key,
                translation_placeholders={
                    "value": f"{value:g}",
                    "min": f"{least:g}",
                    "max": f"{most:g}",
                },
            )


def _dial_sound(data: dict[str, Any]) -> None:
    """Check that dial's sound fields go together; nothing given is ever ignored.

    Raises ServiceValidationError: dial_message_and_media (both given: one plays),
    speech_without_message (tts_engine, language or voice without a message),
    playback_without_sound (loops, or hangup_after_playback on, without a message
    or media to play).
    """
    if "message" in data and "media" in data:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="dial_message_and_media"
        )
    if "message" not in data and any(field in data for field in SPEECH_FIELDS):
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="speech_without_message"
        )
    if (
        "message" not in data
        and "media" not in data
        and ("loops" in data or data.get("hangup_after_playback"))
    ):
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="playback_without_sound"
        )


async def _async_dial(call: ServiceCall) -> ServiceResponse:
    # The number goes as typed: the engine checks it once, as it builds the
    # INVITE (K25, K26), and its invalid_number becomes a translated error.
    data = dict(call.data)
    _check_ranges(data)
    _dial_sound(data)
    call_id = await _line(call.hass, data.get(ATTR_CONFIG_ENTRY_ID)).async_dial(
        data["number"],
        hide_caller_id=data["hide_caller_id"],
        hangup_after=data.get("hangup_after"),
        media_id=_media_id(call.hass, data),
        loops=data.get("loops", 1),
        hangup_after_playback=data.get("hangup_after_playback", False),
    )
    return {"call_id": call_id}


async def _async_answer(call: ServiceCall) -> None:
    data = call.data
    await _line(call.hass, data.get(ATTR_CONFIG_ENTRY_ID)).async_answer(data["call_id"])


async def _async_play(call: ServiceCall) -> None:
    data = call.data
    _check_ranges(data)
    line = _line(call.hass, data.get(ATTR_CONFIG_ENTRY_ID))
    line.live_call(data["call_id"])  # a wrong call is named before the media or TTS
    media_id = _media_id(call.hass, dict(data))
    assert media_id is not None  # `media` or `message` is required by the schema
    await line.async_play(
        data["call_id"],
        media_id,
        loops=data["loops"],
        hangup_after_playback=data["hangup_after_playback"],
    )


async def _async_stop_playback(call: ServiceCall) -> ServiceResponse:
    data = call.data
    line = _line(call.hass, data.get(ATTR_CONFIG_ENTRY_ID))
    return {"stopped": await line.async_stop_playback(data["call_id"])}


async def _async_record(call: ServiceCall) -> ServiceResponse:
    data = call.data
    _check_ranges(data)
    silence = data.get("silence_seconds")
    if silence is not None and silence >= data["max_seconds"]:
        # The recording would end at max_seconds first: silence_seconds would be ignored.
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="silence_not_shorter_than_max",
            translation_placeholders={
                "silence_seconds": f"{silence:g}",
                "max_seconds": f"{data['max_seconds']:g}",
            },
        )
    recording = await _line(call.hass, data.get(ATTR_CONFIG_ENTRY_ID)).async_record(
        data["call_id"],
        max_seconds=data["max_seconds"],
        silence_seconds=data.get("silence_seconds"),
    )
    return {"file": str(recording.path), "media_content_id": recording.media_content_id}


async def _async_send_dtmf(call: ServiceCall) -> None:
    data = call.data
    digits = str(data["digits"]).replace(" ", "").upper()
    if not DTMF_DIGITS.fullmatch(digits):  # K15: what a telephone-event can carry
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="invalid_dtmf_digits"
        )
    await _line(call.hass, data.get(ATTR_CONFIG_ENTRY_ID)).async_send_dtmf(data["call_id"], digits)


async def _async_hangup(call: ServiceCall) -> ServiceResponse:
    data = call.data
    ended = await _line(call.hass, data.get(ATTR_CONFIG_ENTRY_ID)).async_hangup(data.get("call_id"))
    return {"ended": ended}


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the line actions."""
    hass.services.async_register(
        DOMAIN,
        "dial",
        _async_dial,
        schema=DIAL_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        "hangup",
        _async_hangup,
        schema=HANGUP_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(DOMAIN, "answer", _async_answer, schema=ANSWER_SCHEMA)
    hass.services.async_register(DOMAIN, "play", _async_play, schema=PLAY_SCHEMA)
    hass.services.async_register(DOMAIN, "say", _async_play, schema=SAY_SCHEMA)
    hass.services.async_register(
        DOMAIN,
        "stop_playback",
        _async_stop_playback,
        schema=STOP_PLAYBACK_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        "record",
        _async_record,
        schema=RECORD_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(DOMAIN, "send_dtmf", _async_send_dtmf, schema=SEND_DTMF_SCHEMA)
