"""The push coordinator: owns the line engine of one config entry.

The engine (pjsua2) runs in a child process; this class starts it, follows
its events, restarts it with a bounded exponential back-off when it dies, and
stops it on unload.  A dead engine is a line status, never an exception that
reaches Home Assistant.  K8 (KPN blocks the account for ~15 minutes after a
wrong password; attempts inside the block can extend it) has two cases, told
apart by `LockoutGuard.refused`, and every failure is persisted first
(`lockout.py`):

* The registrar refused the line's own stored password (`auth_failed`):
  nothing here sends it again; the engine is stopped and Home Assistant's
  reauth flow (its repair) asks for a new one.
* A block the line met without its password being judged (`locked_out`: a
  403 before the credentials went out, as after another device's wrong
  password; or another password's failure recorded for the account): the
  line holds, with the status locked_out and one repair issue that says
  until when, and when the K8 window has passed it starts the engine once -
  one login.  Blocked again, it holds again: never more than one login per
  K8 window, and no reauth, since the stored password was not refused.

Credentials the engine sent without an outcome (it died or hung before the
registrar answered) are kept as such (`lockout.py`, issue 9 item 5): the line
waits, with the status outcome_unknown, until the K8 window from their sending
has passed.  Inside a K8 window the entry still loads, showing why it does not
register, and nothing sends a credentialed request, not even the un-REGISTER of
a stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import replace
from datetime import datetime
import time
from typing import Any, Final, Literal, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryNotReady,
    HomeAssistantError,
    ServiceValidationError,
)
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util

from .calls import LineCalls
from .const import (
    DOMAIN,
    FIRST_REGISTRATION_TIMEOUT,
    LOGGER,
    RESTART_BACKOFF_INITIAL,
    RESTART_BACKOFF_MAX,
    RESTART_STABLE_SECONDS,
)
from .helpers import engine_command, settings_from_entry
from .issues import (
    async_create_lockout_issue,
    async_create_outcome_unknown_issue,
    async_delete_lockout_issue,
    async_update_other_device_issue,
    local_time,
)
from .kpn_line.client import EngineClient, EngineError
from .kpn_line.lockout import minutes_left
from .kpn_line.numbers import (
    NO_NUMBER_AFTER_PREFIX,
    NUMBER_TOO_LONG,
    InvalidNumberError,
    dial_string,
)
from .kpn_line.policy import CallPolicy
from .kpn_line.profile import K26_HIDE_CALLER_ID_PREFIX
from .kpn_line.protocol import (
    AUTH_FAILURE_STATES,
    CREDENTIALS_OUTCOME_WAIT,
    REGISTRATION_OUTCOMES,
    CallEvent,
    CallState,
    Direction,
    DtmfEvent,
    ErrorCode,
    ErrorEvent,
    Event,
    MediaEvent,
    PlaybackEnd,
    PlaybackFinishedEvent,
    RecordingEnd,
    RecordingSavedEvent,
    RegistrationEvent,
    RegState,
)
from .kpn_line.wavfile import WavHeaderError, complete_header
from .lockout import LockoutGuard, LockoutRecord
from .models import DOWN_STATUSES, CallStatus, EngineStatus, LastCaller, LineState, LineStatus
from .sound import (
    LineSound,
    MediaSource,
    PendingPlay,
    Recording,
    async_make_recording_folder,
    async_media_source,
    async_prepare_media,
    is_tts_media,
    recording_path,
    remove,
)

type KpnVoipConfigEntry = ConfigEntry[KpnVoipCoordinator]
type CallListener = Callable[[CallEvent], None]
type SoundListener = Callable[[MediaEvent], None]


def _invalid_number(number: str, hide_caller_id: bool) -> ServiceValidationError:
    """The translated error for a number the engine refused, saying why where it can.

    The engine's check (numbers.dial_string, K25/K26) is run again here, pure,
    to learn its reason: "*31*" without a number and a number longer than any
    (E.164, the Dutch numbering plan) get their own messages.
    """
    try:
        dial_string(number, hide_caller_id=hide_caller_id)
    except InvalidNumberError as err:
        if err.code == NO_NUMBER_AFTER_PREFIX:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key=NO_NUMBER_AFTER_PREFIX,
                translation_placeholders={"prefix": K26_HIDE_CALLER_ID_PREFIX},
            )
        if err.code == NUMBER_TOO_LONG:
            return ServiceValidationError(
                translation_domain=DOMAIN, translation_key="dial_number_too_long"
            )
    return ServiceValidationError(translation_domain=DOMAIN, translation_key="invalid_dial_number")


# The engine's refusals of a command that the user can act on, each with its own error
# text (translation key = the code): not_ringing is a second answer before `answered`
# came in, line_busy a dial while two calls are up (K24: no INVITE went out).
USER_REFUSALS: Final = frozenset(
    {
        ErrorCode.NOT_RINGING,
        ErrorCode.ALREADY_RECORDING,
        ErrorCode.NOT_ANSWERED,
        ErrorCode.NO_DTMF,
        ErrorCode.BAD_FILE,
        ErrorCode.LINE_BUSY,
    }
)
# The engine's own failures (none the user's input can cause or change), each with
# an error text of its own: EngineError codes of the client (timeout, engine_died,
# protocol) and of the engine's replies (docs/engine-protocol.md).
ENGINE_FAULT_KEYS: Final = {
    "timeout": "engine_timeout",
    "engine_died": "engine_died",
    "protocol": "engine_protocol",
    ErrorCode.BAD_REQUEST: "engine_bad_request",
    ErrorCode.INTERNAL: "engine_internal",
}


def _engine_fault(code: str, unknown: str = "engine_error") -> str:
    """The translation key (exceptions) of an engine failure's `code`: its own sentence,
    or `unknown`'s generic one for a code not in ENGINE_FAULT_KEYS.  The code itself
    goes to the log only: to a user it means nothing (issue 11 newcomer check)."""
    return ENGINE_FAULT_KEYS.get(code, unknown)


type HoldStatus = Literal[RegState.LOCKED_OUT, EngineStatus.OUTCOME_UNKNOWN]
# The line's K8 holds (coordinator._hold): the warning logged (with the line's title and
# the hold's end, HH:MM) and the repair raised (issues.py) while it lasts.
HOLDS: Final[dict[HoldStatus, tuple[str, Callable[[HomeAssistant, ConfigEntry, float], None]]]] = {
    RegState.LOCKED_OUT: (
        "KPN line %s: KPN blocks the line after a refused login (not of the password Home"
        " Assistant has stored); one login at %s (K8)",
        async_create_lockout_issue,
    ),
    EngineStatus.OUTCOME_UNKNOWN: (
        "KPN line %s: the password went out and no answer came; not sent again before %s"
        " (K8: KPN blocks the line after a wrong one)",
        async_create_outcome_unknown_issue,
    ),
}

# Characters of a call id an error shows (engine ids are ~12: "c3-miezlbls").
SHOWN_CALL_ID_LENGTH: Final = 40


def _no_such_call(call_id: str) -> ServiceValidationError:
    """The translated error for a call id that names no call on the line; it names the
    id (its first SHOWN_CALL_ID_LENGTH characters: an id is ~12, a paste may be long)."""
    shown = (
        call_id if len(call_id) <= SHOWN_CALL_ID_LENGTH else call_id[:SHOWN_CALL_ID_LENGTH] + "…"
    )
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="no_such_call",
        translation_placeholders={"call_id": shown},
    )


def _changed(
    data: LineState, call_status: CallStatus, active_calls: int, changes: dict[str, Any]
) -> LineState:
    """`data` with the call status, the number of calls and `changes` (other fields of
    LineState by name; TypeError for a name that is none).

    dataclasses.replace written out: it runs on every call event, before the call state
    sensor's write (issue 11), where replace's loop over the fields cost ~20 us on a
    cold CPU.  tests/kpn_voip/test_coordinator.py holds it to replace.
    """
    new = LineState(
        status=changes.pop("status", data.status),
        call_status=call_status,
        engine_running=changes.pop("engine_running", data.engine_running),
        code=changes.pop("code", data.code),
        reason=changes.pop("reason", data.reason),
        active_calls=active_calls,
        last_caller=changes.pop("last_caller", data.last_caller),
    )
    if changes:
        raise TypeError(f"not a field of LineState: {', '.join(changes)}")
    return new


# The "not registered" error's text per line status (_not_registered): the status in
# words inside each, so the whole text is in the reader's language.
NOT_REGISTERED_KEYS: Final[dict[LineStatus, str]] = {
    RegState.STARTING: "not_registered_starting",
    RegState.REGISTERING: "not_registered_registering",
    RegState.REGISTERED: "not_registered_registered",  # a refusal racing a registration
    RegState.AUTH_FAILED: "not_registered_auth_failed",
    RegState.LOCKED_OUT: "not_registered_locked_out",
    RegState.UNREACHABLE: "not_registered_unreachable",
    RegState.STOPPED: "not_registered_stopped",
    EngineStatus.ENGINE_DOWN: "not_registered_engine_down",
    EngineStatus.OUTCOME_UNKNOWN: "not_registered_outcome_unknown",
}


class _EngineExitedError(Exception):
    """The engine died before the first registration outcome."""


def _subscribe[T](listeners: list[T], listener: T) -> CALLBACK_TYPE:
    """Add `listener` to `listeners`; returns the callback that removes it again."""
    listeners.append(listener)

    @callback
    def remove() -> None:
        listeners.remove(listener)

    return remove


class KpnVoipCoordinator(DataUpdateCoordinator[LineState]):
    """Owns one EngineClient and turns its events into a LineState."""

    config_entry: KpnVoipConfigEntry

    def __init__(self, hass: HomeAssistant, entry: KpnVoipConfigEntry, guard: LockoutGuard) -> None:
        """Initialise; async_start starts the engine."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=None,  # push: the engine reports every change
        )
        self.data = LineState()
        self.settings = settings_from_entry(entry)
        self.command = engine_command(entry)
        self._guard = guard
        self._client: EngineClient | None = None
        # Events and exits of an engine that is no longer ours are ignored.
        self._generation = 0
        self._calls: dict[str, CallEvent] = {}
        self._call_listeners: list[CallListener] = []
        # Told before every other entity when the call status changes (issue 11).
        self._call_status_listeners: list[CALLBACK_TYPE] = []
        self._sound_listeners: list[SoundListener] = []
        self.sound = LineSound()  # converted media, plays waiting for an answer (issue 11)
        self._first_outcome: asyncio.Future[RegistrationEvent] | None = None
        self._started = False
        self._stopping = False
        self._blocked = False  # K8: set the moment an auth failure is seen
        self._down_logged = False
        self._backoff = RESTART_BACKOFF_INITIAL
        self._registered_since: float | None = None  # monotonic; for the back-off reset
        self._restart_unsub: CALLBACK_TYPE | None = None
        self._restart_job = HassJob(self._async_restart, cancel_on_shutdown=True)
        self.restarts = 0
        # K7: the bindings the last dead engine left, for the next one to remove
        # (removing one the registrar no longer holds is a no-op, RFC 3261 §10.3).
        self._leftover_contacts: tuple[str, ...] = ()
        # INVITEs refused from the proxy's network, not the registered proxy (issue 9 item 8).
        self.refused_proxy_network = 0
        self.last_registration: RegistrationEvent | None = None
        # K7: other devices' bindings on the account, as the last 2xx to a REGISTER listed.
        self.other_devices = 0
        self.last_exit: str | None = None
        # History, missed calls, do-not-disturb, phone book (issue 12).
        self.calls = LineCalls(hass, entry)
        self.calls.async_set_policy_listener(self._async_send_policy)
        self.async_add_sound_listener(self.calls.handle_sound)  # recordings in the history

    @property
    def blocked(self) -> bool:
        """True once an auth failure keeps the credentials unsent (K8)."""
        return self._blocked

    @property
    def next_restart_delay(self) -> float:
        """Seconds the next engine restart waits (the back-off after a death)."""
        return self._backoff

    # -- life cycle --------------------------------------------------------

    async def async_start(self) -> None:
        """Start the engine and wait for the first registration outcome.

        Raises ConfigEntryNotReady when the engine or the proxy cannot be
        reached, ConfigEntryAuthFailed when the registrar refuses the stored
        password (K8).  While an earlier failure still blocks the account (K8),
        while credentials sent earlier have no outcome (issue 9 item 5), and
        when the first answer is a block (`locked_out`, K8), it returns without
        a running engine: the entry loads and its line status says why
        (`_k8_wait`).
        """
        await self.calls.async_load()
        if self._k8_wait():
            # Loaded, not failed: the line status shows the block, not "unavailable".
            self._started = True
            return
        self._first_outcome = self.hass.loop.create_future()
        try:
            await self._async_start_engine()
            outcome = await self._async_first_outcome(self._first_outcome)
        except EngineError as err:
            await self._async_stop_engine()
            LOGGER.warning(
                "The line engine of %s could not start: %s", self.config_entry.title, err
            )
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN, translation_key=_engine_fault(err.code, "engine_failed")
            ) from err
        except _EngineExitedError as err:
            if self._k8_wait():  # died after sending the credentials
                self._started = True
                return
            LOGGER.warning(
                "The line engine of %s died as it started: %s", self.config_entry.title, err
            )
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN, translation_key=_engine_fault("engine_died")
            ) from err
        except TimeoutError as err:
            await self._async_stop_engine()
            if self._k8_wait():  # hung after sending the credentials
                self._started = True
                return
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN, translation_key="registration_timeout"
            ) from err
        finally:
            self._first_outcome = None
        if outcome.state is RegState.LOCKED_OUT:
            # K8: blocked, the password not judged: loaded, holding (no reauth).
            await self._async_auth_failure(outcome)
            self._k8_wait()
            self._started = True
            return
        if outcome.state is RegState.AUTH_FAILED:
            record = await self._async_auth_failure(outcome)
            async_delete_lockout_issue(self.hass, self.config_entry)  # one repair: the reauth
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN,
                translation_key=outcome.state.value,
                translation_placeholders={"minutes": str(minutes_left(record.until, time.time()))},
            )
        if outcome.state is RegState.UNREACHABLE:
            await self._async_stop_engine()
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN,
                translation_key="unreachable",
                translation_placeholders={"proxy": self.settings.proxy_host},
            )
        self._started = True
        async_delete_lockout_issue(self.hass, self.config_entry)

    async def _async_first_outcome(
        self, first: asyncio.Future[RegistrationEvent]
    ) -> RegistrationEvent:
        """The first registration outcome, within FIRST_REGISTRATION_TIMEOUT (TimeoutError).

        K8: once the engine has sent the credentials, their outcome is waited for
        (at most CREDENTIALS_OUTCOME_WAIT), so that a late 401/403 is recorded and a
        retried setup does not send them again.
        """
        started = time.monotonic()
        try:
            return await asyncio.wait_for(asyncio.shield(first), FIRST_REGISTRATION_TIMEOUT)
        except TimeoutError:
            reg = self.last_registration
            if reg is None or not reg.credentials_sent:
                raise
        left = started + FIRST_REGISTRATION_TIMEOUT + CREDENTIALS_OUTCOME_WAIT - time.monotonic()
        return await asyncio.wait_for(asyncio.shield(first), max(0.1, left))

    @override
    async def async_shutdown(self) -> None:
        """Stop the engine (unload, failed setup, Home Assistant stop)."""
        await super().async_shutdown()
        self._stopping = True
        self._cancel_restart()
        await self._async_stop_engine()
        await self.hass.async_add_executor_job(self.sound.close)

    async def _async_start_engine(self) -> None:
        self._generation += 1
        generation = self._generation
        self._registered_since = None
        client = EngineClient(
            on_event=lambda event: self._handle_event(generation, event),
            on_exit=lambda code, reason: self._handle_exit(generation, code, reason),
            command=self.command,
        )
        self._client = client
        self._publish(status=RegState.STARTING, engine_running=True, code=None, reason=None)
        try:
            await client.start(
                self.settings, policy=self.calls.policy, previous_contacts=self._leftover_contacts
            )
        except BaseException:
            if self._client is client:
                self._client = None
            await client.stop()
            raise

    @callback
    def async_end_calls(self, reason: str) -> None:
        """Every call still in progress ends now, with its event (the engine is going).

        An unanswered incoming call is a missed call, an answered one ends with the
        time it lasted; code 0 (no SIP answer ended it).  Nothing happens for a
        call that has ended already, so it is safe to call more than once.
        """
        now = time.time()
        for last in list(self._calls.values()):
            answered = last.state is CallState.ANSWERED
            self._handle_call(
                replace(
                    last,
                    state=CallState.ENDED,
                    code=0,
                    reason=reason,
                    duration=max(0.0, now - last.time) if answered and last.time else 0.0,
                    missed=last.direction is Direction.INCOMING and not answered,
                    refused=None,
                    time=now,
                )
            )

    @callback
    def _end_media(self, reason: PlaybackEnd) -> list[tuple[str, str]]:
        """The engine is going: what it plays ends now (`playback_finished` with `reason`);
        the recordings it writes are returned, as (call id, file), to be completed.

        Its own events of them would come from an engine that is no longer ours
        (stopped: ignored) or never (died): Home Assistant knows what was on.
        """
        now = time.time()
        for call_id, file in list(self.sound.playing):
            self._handle_sound(
                PlaybackFinishedEvent(call_id=call_id, file=file, reason=reason, time=now)
            )
        recordings = [(call_id, file) for file, call_id in self.sound.unsaved.items()]
        self.sound.unsaved.clear()
        return recordings

    async def _async_complete_recordings(self, recordings: list[tuple[str, str]]) -> None:
        """Recordings the engine left: each file's header completed (the audio that
        reached the disk plays), then its `recording_saved` with the file's length.

        `reason` cut_off when the header had to be written (the engine died while it
        recorded), else ended (the engine closed the file as the line stopped).  A
        file with no WAV header left (the engine died as it made it) is saved as 0 s.
        """
        for call_id, file in recordings:
            try:
                done = await self.hass.async_add_executor_job(complete_header, file)
            except (OSError, WavHeaderError) as err:
                LOGGER.warning("Recording %s of call %s has no audio: %s", file, call_id, err)
                duration, reason = 0.0, RecordingEnd.CUT_OFF
            else:
                duration = done.seconds
                reason = RecordingEnd.CUT_OFF if done.completed else RecordingEnd.ENDED
                if done.completed:
                    LOGGER.info(
                        "Recording %s was cut off by the engine's end; %.3f s of audio kept",
                        file,
                        duration,
                    )
            self._handle_sound(
                RecordingSavedEvent(
                    call_id=call_id, file=file, duration=duration, reason=reason, time=time.time()
                )
            )

    async def _async_stop_engine(self) -> None:
        client, self._client = self._client, None
        self._generation += 1
        recordings = self._end_media(PlaybackEnd.ENDED)
        self.async_end_calls("line stopped")
        if client is not None:
            # K8: inside a block window not even the un-REGISTER answers a challenge.
            await client.stop(credentials=not self._in_k8_window())
        await self._async_complete_recordings(recordings)
        if not self._stopping:
            self._publish(engine_running=False)

    # -- engine supervision ------------------------------------------------

    @callback
    def _handle_exit(self, generation: int, returncode: int | None, reason: str) -> None:
        if generation != self._generation or self._stopping:
            return
        dead, self._client = self._client, None
        if dead is not None:
            self._leftover_contacts = dead.leftover_contacts
            # stop() is idempotent: on a dead engine it only releases the
            # client's own tasks and pipes, so nothing lingers.
            self.config_entry.async_create_task(self.hass, dead.stop(), f"{DOMAIN} engine cleanup")
        # Nothing is lost: what played and recorded ends with its event, as the calls do.
        recordings = self._end_media(PlaybackEnd.CUT_OFF)
        self.async_end_calls("engine stopped")
        if recordings:
            self.config_entry.async_create_task(
                self.hass, self._async_complete_recordings(recordings), f"{DOMAIN} recordings"
            )
        self.last_exit = f"{reason} (exit code {returncode})"
        if self._first_outcome is not None and not self._first_outcome.done():
            self._first_outcome.set_exception(_EngineExitedError(reason))
            return
        self._publish(status=EngineStatus.ENGINE_DOWN, engine_running=False)
        since, self._registered_since = self._registered_since, None
        if since is not None and time.monotonic() - since >= RESTART_STABLE_SECONDS:
            self._backoff = RESTART_BACKOFF_INITIAL  # it ran well: start the back-off over
        self._schedule_restart()

    @callback
    def _schedule_restart(self) -> None:
        if self._stopping or self._blocked or self._restart_unsub is not None:
            return
        delay = self._backoff
        self._backoff = min(self._backoff * 2, RESTART_BACKOFF_MAX)
        LOGGER.debug("Restarting the engine of %s in %.0f s", self.config_entry.title, delay)
        self._restart_unsub = async_call_later(self.hass, delay, self._restart_job)

    @callback
    def _cancel_restart(self) -> None:
        if self._restart_unsub is not None:
            self._restart_unsub()
            self._restart_unsub = None

    async def _async_restart(self, _now: datetime) -> None:
        """Start the engine again: after its death (back-off) or when a K8 hold ends;
        the guard is asked first, so that this is one login per K8 window at most."""
        self._restart_unsub = None
        if self._stopping or self._blocked:
            return
        # K8: the guard is on disk, so this holds across HA restarts too.
        if self._k8_wait():
            return
        self.restarts += 1
        try:
            await self._async_start_engine()
        except EngineError as err:
            LOGGER.debug("Engine restart failed: %s", err.code)
            self.last_exit = f"restart failed: {err.code}"
            self._publish(status=EngineStatus.ENGINE_DOWN, engine_running=False)
            self._schedule_restart()

    # -- events --------------------------------------------------------------

    @callback
    def _handle_event(self, generation: int, event: Event) -> None:
        if generation != self._generation:
            return
        if isinstance(event, RegistrationEvent):
            self._handle_registration(event)
        elif isinstance(event, CallEvent):
            self._handle_call(event)
        elif isinstance(event, ErrorEvent):
            LOGGER.debug("Engine error event %s: %s", event.code, event.message)
            if event.code == ErrorCode.REJECTED_PROXY_NETWORK:
                self.refused_proxy_network += 1
        elif isinstance(event, DtmfEvent | PlaybackFinishedEvent | RecordingSavedEvent):
            self._handle_sound(event)

    @callback
    def _note_attempt(self, event: RegistrationEvent) -> None:
        """Keep the state of the credentials' attempt in the guard (issue 9 item 5, K8)."""
        username, password = self.settings.username, self.settings.password
        if event.credentials_sent:
            self._guard.note_credentials_sent(username, password)
        elif event.state is RegState.REGISTERED:
            self._guard.note_accepted(username, password)
        elif event.state is RegState.UNREACHABLE and event.code is not None:
            # The engine's verdict (408 after Timer F, 5xx): the attempt has ended.
            self._guard.note_ended(username)
        # Auth failures are recorded (and the unknown outcome cleared) by async_record.

    def _in_k8_window(self) -> bool:
        """True while no credentialed request may go out for this line (K8, item 5)."""
        username, password = self.settings.username, self.settings.password
        return (
            self._guard.active(username) is not None
            or self._guard.unknown_outcome(username, password) is not None
        )

    @callback
    def _k8_wait(self) -> bool:
        """K8: True while no login may go out now; the line then shows why, and waits.

        * the stored password was refused (`LockoutGuard.refused`): no login by
          itself at all; the reauth flow asks for a new password (`_refused`);
        * the account is blocked otherwise (`LockoutGuard.active`: a 403 before the
          credentials went out, another password's failure): one login when the K8
          window has passed (`_hold`, status locked_out);
        * credentials sent earlier have no outcome: the same, with the status
          outcome_unknown (issue 9 item 5).
        """
        username, password = self.settings.username, self.settings.password
        if (refused := self._guard.refused(username, password)) is not None:
            self._refused(refused)
            return True
        if (record := self._guard.active(username)) is not None:
            self._hold(RegState.LOCKED_OUT, record.until)
            return True
        if (pending := self._guard.unknown_outcome(username, password)) is not None:
            self._hold(EngineStatus.OUTCOME_UNKNOWN, pending.until)
            return True
        return False

    @callback
    def _hold(self, status: HoldStatus, until: float) -> None:
        """Show `status` with no engine, its warning (logged) and its repair (HOLDS), and
        start the engine once at `until` (epoch seconds): `_async_restart`, which asks
        the guard again first (K8)."""
        message, raise_issue = HOLDS[status]
        LOGGER.warning(message, self.config_entry.title, local_time(until))
        raise_issue(self.hass, self.config_entry, until)
        self._blocked = False  # a hold ends by itself; a refusal does not
        self._publish(status=status, engine_running=False)
        self._cancel_restart()
        self._restart_unsub = async_call_later(
            self.hass, max(1.0, until - time.time()), self._restart_job
        )

    @callback
    def _handle_registration(self, event: RegistrationEvent) -> None:
        self._note_attempt(event)
        self.last_registration = event
        if event.state is RegState.REGISTERED and self._registered_since is None:
            self._registered_since = time.monotonic()  # see RESTART_STABLE_SECONDS
        if event.state in AUTH_FAILURE_STATES:
            # K8: before anything else can run, so no restart slips through; a
            # locked_out line holds instead once its failure is on disk (_k8_wait).
            self._blocked = True
            self._cancel_restart()
        self._publish(status=event.state, code=event.code, reason=event.reason)
        if event.state is RegState.REGISTERED:
            self._note_other_devices(event.other_bindings)
        if self._first_outcome is not None and not self._first_outcome.done():
            if event.state in REGISTRATION_OUTCOMES:
                self._first_outcome.set_result(event)
            return
        if event.state is RegState.REGISTERED:
            async_delete_lockout_issue(self.hass, self.config_entry)
        elif event.state in AUTH_FAILURE_STATES and self._started:
            self.config_entry.async_create_task(
                self.hass, self._async_runtime_auth_failure(event), f"{DOMAIN} auth failure"
            )

    @callback
    def _note_other_devices(self, count: int) -> None:
        """K7: the registrar lists `count` bindings of other devices on the account.

        The line stays `registered` (it is), but the user is told, with a repair
        issue while any is listed; logged once when one appears and once when gone.
        """
        seen, self.other_devices = self.other_devices, count
        async_update_other_device_issue(self.hass, self.config_entry, count)
        if count and not seen:
            LOGGER.warning(
                "KPN line %s: %d other device(s) registered on the line (K7): switch off"
                " Vast Bellen in the KPN Box or the other device",
                self.config_entry.title,
                count,
            )
        elif seen and not count:
            LOGGER.info("KPN line %s: no other device registered any more", self.config_entry.title)

    async def _async_runtime_auth_failure(self, event: RegistrationEvent) -> None:
        await self._async_auth_failure(event)
        self._k8_wait()

    async def _async_auth_failure(self, event: RegistrationEvent) -> LockoutRecord:
        """Persist the failure and stop the engine (K8); what follows is `_k8_wait`'s."""
        record = await self._guard.async_record(
            self.settings.username, self.settings.password, event.state.value
        )
        await self._async_stop_engine()
        return record

    @callback
    def _refused(self, record: LockoutRecord) -> None:
        """The stored password was refused (K8): no login by itself; the reauth flow asks
        for a new one, and its repair is the only one (none of ours besides)."""
        self._blocked = True
        self._cancel_restart()
        self._publish(status=RegState(record.reason), engine_running=False)
        async_delete_lockout_issue(self.hass, self.config_entry)
        self.config_entry.async_start_reauth(self.hass)

    @callback
    def _handle_call(self, event: CallEvent) -> None:
        if event.state is CallState.ENDED:
            self._calls.pop(event.call_id, None)
        else:
            self._calls[event.call_id] = event
        # The call state sensor's write first of all (issue 11: INVITE -> its state),
        # before the phone book and the last caller are looked up and made.
        self._write_call_status()
        LOGGER.debug(  # lazy arguments: nothing is formatted on this path unless at debug
            "Call %s (%s): %s (code %s, %s)",
            event.call_id,
            event.direction,
            event.state,
            event.code,
            event.reason,
        )
        event = self.calls.named(event)  # the phone book's name
        if event.state is not CallState.ENDED:
            self._calls[event.call_id] = event
        changes: dict[str, Any] = {}
        if event.direction is Direction.INCOMING and event.state is CallState.RINGING:
            changes["last_caller"] = LastCaller(
                caller=event.caller,
                time=dt_util.utc_from_timestamp(event.time) if event.time else dt_util.utcnow(),
            )
        # State first, so an automation triggered by the event sees it.
        self._publish(**changes)
        self.calls.handle_call(event)  # history (its entities, its store save)
        for listener in tuple(self._call_listeners):
            listener(event)
        if event.state is CallState.ANSWERED and event.call_id in self.sound.pending:
            self.sound.pending[event.call_id].settled.set()  # its sound plays once ready
        elif event.state is CallState.ENDED:
            self.sound.ended(event.call_id)

    @callback
    def async_add_call_listener(self, listener: CallListener) -> CALLBACK_TYPE:
        """Be told about every call event; returns the unsubscribe callback."""
        return _subscribe(self._call_listeners, listener)

    @callback
    def async_add_call_status_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Be told of a new call status (`data.call_status`) before every other listener
        of the coordinator; returns the unsubscribe callback."""
        return _subscribe(self._call_status_listeners, listener)

    @callback
    def restore_last_caller(self, last: LastCaller) -> None:
        """Put back the last caller from before a reload or restart (the Last caller
        sensor's restore state) while no call has rung since; the sensor writes its own
        state, so no listener is told."""
        if self.data.last_caller is None:
            self.data = replace(self.data, last_caller=last)

    @callback
    def _handle_sound(self, event: MediaEvent) -> None:
        if isinstance(event, PlaybackFinishedEvent) and (
            file := self.sound.played(event.call_id, event.file)
        ):
            self.hass.async_add_executor_job(remove, file)
        elif isinstance(event, RecordingSavedEvent):
            self.sound.recording.pop(event.call_id, None)
            self.sound.unsaved.pop(event.file, None)
        elif isinstance(event, DtmfEvent):
            self.sound.keyed(event.call_id, event.digit)
        for listener in tuple(self._sound_listeners):
            listener(event)
        if isinstance(event, RecordingSavedEvent):
            # Forgotten here, after the listeners read it (the call event entity's
            # media_content_id), not by them: a disabled entity reads nothing.
            self.sound.recordings.pop(event.file, None)

    @callback
    def async_add_sound_listener(self, listener: SoundListener) -> CALLBACK_TYPE:
        """Be told about every dtmf / playback_finished / recording_saved event."""
        return _subscribe(self._sound_listeners, listener)

    def _call_status(self) -> CallStatus:
        """The line's call status from the calls on it."""
        states = {call.state for call in self._calls.values()}
        if CallState.ANSWERED in states:
            return CallStatus.TALKING
        if states & {CallState.DIALING, CallState.ALERTING}:
            return CallStatus.DIALING
        if CallState.RINGING in states:
            return CallStatus.RINGING
        return CallStatus.IDLE

    @callback
    def _write_call_status(self) -> None:
        """A new call status goes to its listeners (the call state sensor) at once, with
        only the call status and the number of calls changed in `data`; the rest of a
        call event's changes follow in `_publish` (issue 11)."""
        data = self.data
        if not data.engine_running or not self._call_status_listeners:
            return
        call_status = self._call_status()
        if call_status is not data.call_status:
            self.data = _changed(data, call_status, len(self._calls), {})
            for listener in tuple(self._call_status_listeners):
                listener()

    @callback
    def _publish(self, **changes: Any) -> None:
        new = _changed(self.data, self._call_status(), len(self._calls), changes)
        if not new.engine_running:
            new = replace(new, call_status=CallStatus.IDLE, active_calls=0)
        self._log_transition(new.status)
        if new.call_status is not self.data.call_status and self._call_status_listeners:
            # The call state sensor writes before every other entity (issue 11); it
            # finds nothing new in the update that follows.
            self.data = new
            for listener in tuple(self._call_status_listeners):
                listener()
        self.async_set_updated_data(new)

    @callback
    def _log_transition(self, status: LineStatus) -> None:
        """Log once when the line goes down and once when it is back.

        Only after a successful first start: before that, Home Assistant's
        own setup-retry messages say it.
        """
        if not self._started or self._stopping:
            return
        if status in DOWN_STATUSES and not self._down_logged:
            self._down_logged = True
            LOGGER.warning("KPN line %s is down: %s", self.config_entry.title, status.value)
        elif status is RegState.REGISTERED and self._down_logged:
            self._down_logged = False
            LOGGER.info("KPN line %s is registered again", self.config_entry.title)

    @override
    async def _async_update_data(self) -> LineState:
        """Nothing to poll: the engine pushes every change."""
        return self.data

    # -- commands ------------------------------------------------------------

    def _not_registered(self) -> HomeAssistantError:
        """The translated "not registered" error with the line status in the reader's
        language: one text per status (`not_registered_<status>`, the Line status
        sensor's state name inside it; NOT_REGISTERED_KEYS), as a placeholder is never
        translated."""
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key=NOT_REGISTERED_KEYS[self.data.status],
            translation_placeholders={"line": self.config_entry.title},
        )

    def _registered_client(self) -> EngineClient:
        if self._client is None or self.data.status is not RegState.REGISTERED:
            raise self._not_registered()
        return self._client

    async def async_dial(
        self,
        number: str,
        *,
        hide_caller_id: bool = False,
        hangup_after: float | None = None,
        media_id: str | None = None,
        loops: int = 1,
        hangup_after_playback: bool = False,
    ) -> str:
        """Place a call; the call id.

        `number` goes as typed: the engine checks it once (K25) and an invalid
        one raises ServiceValidationError (invalid_dial_number).  `media_id`
        (a media source id, TTS too) is made ready while the call rings, so the
        INVITE does not wait for text-to-speech (issue 11: 15.8 s for a long
        message), and played `loops` times (0: until the call ends) once the far
        end answers and it is ready; `hangup_after_playback` ends the call after it
        (see _async_dial_sound for a sound that cannot be made).  Media other than
        TTS is resolved before the call: a wrong id raises invalid_media, no call.
        """
        client = self._registered_client()
        source = None
        if media_id is not None and not is_tts_media(media_id):
            source = await async_media_source(self.hass, media_id)
        try:
            call_id = await client.dial(
                number, hide_caller_id=hide_caller_id, hangup_after=hangup_after
            )
        except EngineError as err:
            if err.code == ErrorCode.INVALID_NUMBER:
                raise _invalid_number(number, hide_caller_id) from err
            raise self._command_error(err) from err
        if media_id is not None and call_id not in self.sound.ended_calls:
            pending = PendingPlay(hangup_after_playback, loops)
            if (call := self._calls.get(call_id)) and call.state is CallState.ANSWERED:
                pending.settled.set()
            self.sound.pending[call_id] = pending
            pending.task = self.config_entry.async_create_background_task(
                self.hass,
                self._async_dial_sound(call_id, media_id, source, pending),
                f"{DOMAIN} sound of call {call_id}",
            )
        return call_id

    async def _async_dial_sound(
        self, call_id: str, media_id: str, source: MediaSource | None, pending: PendingPlay
    ) -> None:
        """Make a dialled call's sound while it rings; play it once it is answered.

        A sound that cannot be made (TTS or ffmpeg failed) is logged and, while the
        call is on, ends with a playback_finished of reason `failed`; a call that was
        to end after it (hangup_after_playback) is hung up then, any other call goes
        on without it.  A call that ends first: the sound is still made (a shared TTS
        request is not cancelled), then removed.  Nothing is left behind.
        """
        try:
            pending.file = file = await async_prepare_media(
                self.hass, media_id, self.sound.workdir, source
            )
        except HomeAssistantError as err:
            self.sound.pending.pop(call_id, None)
            LOGGER.warning("The sound of call %s cannot be played: %s", call_id, err)
            if pending.ended:
                return
            self._handle_sound(
                PlaybackFinishedEvent(
                    call_id=call_id, file="", reason=PlaybackEnd.FAILED, time=time.time()
                )
            )
            if pending.hangup_after_playback and self._client is not None:
                with contextlib.suppress(EngineError):  # it ended meanwhile
                    await self._client.hangup(call_id)
            return
        try:
            await pending.settled.wait()
        except asyncio.CancelledError:  # the line unloads
            self.hass.async_add_executor_job(remove, file)
            raise
        self.sound.pending.pop(call_id, None)
        if pending.ended or self._client is None:
            await self.hass.async_add_executor_job(remove, file)
            return
        self.sound.playing[(call_id, str(file))] = file
        try:
            await self._client.play(
                call_id, str(file), loops=pending.loops, then_hangup=pending.hangup_after_playback
            )
        except EngineError as err:  # the call ended meanwhile, or the file was refused
            LOGGER.warning("Could not play the message of call %s: %s", call_id, err.code)
            self.sound.played(call_id, str(file))
            await self.hass.async_add_executor_job(remove, file)

    async def async_answer(self, call_id: str) -> None:
        """Answer a ringing incoming call; from then on it sends sound (K20).

        Raises ServiceValidationError: no_such_call, or not_ringing for a call that is
        outgoing or answered already (also the engine's not_ringing: a second answer sent
        before this call's `answered` event came in; the call stays up).
        """
        client = self._registered_client()
        call = self.live_call(call_id)
        if call.direction is not Direction.INCOMING or call.state is not CallState.RINGING:
            raise ServiceValidationError(translation_domain=DOMAIN, translation_key="not_ringing")
        try:
            await client.answer(call_id)
        except EngineError as err:
            raise self._command_error(err, call_id) from err

    async def async_play(
        self, call_id: str, media_id: str, *, loops: int = 1, hangup_after_playback: bool = False
    ) -> None:
        """Play a media source id (TTS too) into an answered call.

        Raises ServiceValidationError: no_such_call (checked before the media is
        converted, so a wrong call is named as such), or the media's own errors.
        """
        client = self._registered_client()
        self.live_call(call_id)  # before the media is converted
        file = await async_prepare_media(self.hass, media_id, self.sound.workdir)
        self.sound.playing[(call_id, str(file))] = file
        try:
            await client.play(call_id, str(file), loops=loops, then_hangup=hangup_after_playback)
        except EngineError as err:
            self.sound.played(call_id, str(file))
            await self.hass.async_add_executor_job(remove, file)
            raise self._command_error(err, call_id) from err

    async def async_stop_playback(self, call_id: str) -> bool:
        """Stop what plays into a call; True if something played.  Raises
        ServiceValidationError (no_such_call) for a call that is not on the line."""
        client = self._registered_client()
        self.live_call(call_id)
        try:
            return await client.stop_playback(call_id)
        except EngineError as err:
            raise self._command_error(err, call_id) from err

    async def async_record(
        self, call_id: str, *, max_seconds: float, silence_seconds: float | None
    ) -> Recording:
        """Record what the far end says, into the media folder (sound.recording_path)."""
        client = self._registered_client()
        call = self.live_call(call_id)
        if call_id in self.sound.recording:  # the engine would say already_recording
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="already_recording"
            )
        recording = await async_make_recording_folder(
            self.hass,
            recording_path(self.hass, call.caller, dt_util.utcnow()),
            self.sound.recordings,
        )
        try:
            await client.record(
                call_id,
                str(recording.path),
                max_seconds=max_seconds,
                silence_seconds=silence_seconds,
            )
        except EngineError as err:
            raise self._command_error(err, call_id) from err
        self.sound.recordings[str(recording.path)] = recording.media_content_id
        self.sound.recording[call_id] = str(recording.path)
        self.sound.unsaved[str(recording.path)] = call_id
        return recording

    def live_call(self, call_id: str) -> CallEvent:
        """The call's last event; ServiceValidationError (no_such_call) if it is not on
        the line (the actions check this first, before media or TTS)."""
        call = self._calls.get(call_id)
        if call is None:
            raise _no_such_call(call_id)
        return call

    async def async_send_dtmf(self, call_id: str, digits: str) -> None:
        """Send digits as RFC 2833 telephone-events (K15)."""
        client = self._registered_client()
        try:
            await client.send_dtmf(call_id, digits)
        except EngineError as err:
            raise self._command_error(err, call_id) from err

    async def async_hangup(self, call_id: str | None = None) -> int:
        """End one call, or every call; how many ended."""
        if self._client is None:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="engine_not_running",
                translation_placeholders={"line": self.config_entry.title},
            )
        try:
            return await self._client.hangup(call_id)
        except EngineError as err:
            raise self._command_error(err, call_id) from err

    async def _async_send_policy(self, policy: CallPolicy) -> None:
        """A changed call policy (do-not-disturb) to the running engine; the next one gets
        it with `start`."""
        if self._client is None:
            return
        try:
            await self._client.set_call_policy(policy)
        except EngineError as err:
            raise self._command_error(err) from err

    def _command_error(self, err: EngineError, call_id: str | None = None) -> HomeAssistantError:
        """The translated error for an engine's refusal of a command (about `call_id`).

        What the user can change (the input, or the calls on the line: K24's
        line_busy) is a ServiceValidationError; Home Assistant logs its message
        without a stack trace.  A failure of the line is a HomeAssistantError.
        """
        if err.code == ErrorCode.INVALID_NUMBER:
            return ServiceValidationError(
                translation_domain=DOMAIN, translation_key="invalid_dial_number"
            )
        if err.code == ErrorCode.NO_SUCH_CALL and call_id is not None:
            return _no_such_call(call_id)
        if err.code in USER_REFUSALS:
            if err.code == ErrorCode.BAD_FILE:  # the engine's detail (English): for the log
                LOGGER.warning("The line engine cannot use a file of call %s: %s", call_id, err)
            return ServiceValidationError(translation_domain=DOMAIN, translation_key=err.code)
        if err.code in (ErrorCode.NOT_REGISTERED, ErrorCode.NOT_STARTED, ErrorCode.LOCKED_OUT):
            return self._not_registered()
        # The engine's own failure: a sentence per code for the user, the code in the log.
        LOGGER.warning("The line engine of %s failed a command: %s", self.config_entry.title, err)
        return HomeAssistantError(
            translation_domain=DOMAIN, translation_key=_engine_fault(err.code)
        )
