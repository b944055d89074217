"""The call event entity: the natural trigger for automations."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Final, override

from homeassistant.components.event import (
    EventEntity,
    EventEntityDescription,
    EventExtraStoredData,
)
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import EVENT_CALL
from .coordinator import KpnVoipConfigEntry
from .entity import KpnVoipEntity
from .kpn_line.protocol import (
    CallEvent,
    CallState,
    Direction,
    DtmfEvent,
    MediaEvent,
    PlaybackFinishedEvent,
    RecordingSavedEvent,
)

PARALLEL_UPDATES = 0

EVENT_INCOMING_CALL: Final = "incoming_call"
EVENT_ANSWERED: Final = "answered"
EVENT_MISSED_CALL: Final = "missed_call"
EVENT_CALL_ENDED: Final = "call_ended"
# Refused before it rang (do-not-disturb, block list): no incoming_call came first.
EVENT_REJECTED_CALL: Final = "rejected_call"
# Sound on the line (issue 11): a digit the caller pressed (K15), a playback or a
# recording that ended.
EVENT_DTMF: Final = "dtmf"
EVENT_PLAYBACK_FINISHED: Final = "playback_finished"
EVENT_RECORDING_SAVED: Final = "recording_saved"

DESCRIPTION = EventEntityDescription(
    key="call",
    translation_key="call",
    event_types=[
        EVENT_INCOMING_CALL,
        EVENT_ANSWERED,
        EVENT_MISSED_CALL,
        EVENT_CALL_ENDED,
        EVENT_REJECTED_CALL,
        EVENT_DTMF,
        EVENT_PLAYBACK_FINISHED,
        EVENT_RECORDING_SAVED,
    ],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KpnVoipConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the line's call event entity."""
    async_add_entities([KpnVoipCallEventEntity(entry.runtime_data, DESCRIPTION)])


class KpnVoipCallEventEntity(KpnVoipEntity, EventEntity):
    """Fires incoming_call, answered, missed_call, call_ended and rejected_call."""

    # Available while the engine is down or restarts: a state that went unavailable and
    # back would show the last event again as a new state change, which a state
    # trigger (and the logbook) takes for a new event.  The line status sensor says
    # the engine is down; the events of that (calls and recordings cut off) still come.
    _available_without_engine = True

    @override
    async def async_get_last_event_data(self) -> EventExtraStoredData | None:
        """Nothing: the last event is not restored after a restart or reload.

        A restored event would reappear as a new state, which a state trigger
        takes for a new call; the state is `unknown` until the next event.
        """
        return None

    @override
    async def async_added_to_hass(self) -> None:
        """Follow the line's call events."""
        await super().async_added_to_hass()
        self.async_on_remove(self.coordinator.async_add_call_listener(self._handle_call))
        self.async_on_remove(self.coordinator.async_add_sound_listener(self._handle_sound))

    @callback
    def _handle_sound(self, event: MediaEvent) -> None:
        """dtmf (one per digit, in order; `digit`, and `digits`: the call's so far),
        playback_finished, recording_saved."""
        attributes: dict[str, Any] = {"call_id": event.call_id}
        match event:
            case DtmfEvent():
                event_type = EVENT_DTMF
                attributes["digit"] = event.digit
                # Every digit of this call so far (until it ends), this one last: a
                # trigger on any one dtmf event sees a PIN keyed in a burst whole.
                attributes["digits"] = self.coordinator.sound.digits.get(event.call_id, "")
            case PlaybackFinishedEvent():
                event_type = EVENT_PLAYBACK_FINISHED
                attributes["reason"] = event.reason.value
            case RecordingSavedEvent():
                event_type = EVENT_RECORDING_SAVED
                attributes["file"] = event.file
                attributes["media_content_id"] = self.coordinator.sound.recordings.get(event.file)
                attributes["duration"] = event.duration
                attributes["reason"] = event.reason.value
        self._trigger_event(event_type, attributes)
        self.async_write_ha_state()

    @callback
    def _handle_call(self, event: CallEvent) -> None:
        """Fire the event type of a call event, with its attributes (K16: caller ID as
        presented, parsed); dialing / alerting show in the call state sensor only."""
        match event:
            case CallEvent(state=CallState.RINGING, direction=Direction.INCOMING):
                event_type = EVENT_INCOMING_CALL
            case CallEvent(state=CallState.ANSWERED):
                event_type = EVENT_ANSWERED
            case CallEvent(state=CallState.ENDED, refused=None):
                event_type = EVENT_MISSED_CALL if event.missed else EVENT_CALL_ENDED
            case CallEvent(state=CallState.ENDED):
                event_type = EVENT_REJECTED_CALL
            case _:
                return
        caller = event.caller.attributes()  # number (E.164), national, name, anonymous
        attributes: dict[str, Any] = {
            "call_id": event.call_id,
            "direction": event.direction.value,
            **caller,
            "waiting": event.waiting,  # K24: a second call during a call
        }
        if event.state is CallState.ENDED:
            attributes["duration"] = event.duration
            attributes["code"] = event.code
            attributes["reason"] = event.reason
            attributes["refused"] = event.refused  # do_not_disturb, blocked, anonymous or None
            # RFC 3326: the far end's Reason {protocol, cause, text}, or None
            far = event.end_reason
            attributes["end_reason"] = None if far is None else asdict(far)
            attributes["answered_elsewhere"] = far is not None and far.answered_elsewhere
        # On the bus for event triggers: what happened and who.  Not in the logbook: the
        # state written below is the call event's one logbook entry, which the frontend
        # words in each viewer's language (the event_type's translation); a described
        # bus event gave a second entry, in the system language (a logbook description
        # is plain text: HA has no translation key for it).  Fired before the state is
        # written (issue 11: sooner on the bus); what it triggers runs after this
        # callback, when the state is written too.
        self.hass.bus.async_fire(
            EVENT_CALL,
            {ATTR_ENTITY_ID: self.entity_id, "event_type": event_type} | caller,
        )
        self._trigger_event(event_type, attributes)
        self.async_write_ha_state()
