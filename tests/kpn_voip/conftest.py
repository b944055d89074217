"""Fixtures for the Home Assistant side of kpn_voip.

HA-side unit tests use a fake EngineClient (FakeEngine) patched where the
integration imports it: what these tests check is the integration's own
logic (flows, supervision, K8 guard, entities, actions).  Claims about SIP
behaviour are made by the end-to-end tests (test_e2e.py) with the real
engine against Kamailio and SIPp.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
import io
import math
from pathlib import Path
import struct
import time
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, patch
import wave

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import tts
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState, ConfigSubentryData
from homeassistant.const import Platform
from homeassistant.core import DOMAIN as HOMEASSISTANT_DOMAIN, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockModule,
    async_fire_time_changed,
    mock_integration,
    mock_platform,
)
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.kpn_voip import PLATFORMS
from custom_components.kpn_voip.const import (
    CONF_DISPLAY_NAME,
    CONF_NUMBER,
    DOMAIN,
    SUBENTRY_CALL_TARGET,
)
from custom_components.kpn_voip.coordinator import KpnVoipCoordinator
from custom_components.kpn_voip.issues import lockout_issue_id
from custom_components.kpn_voip.kpn_line.client import EngineError
from custom_components.kpn_voip.kpn_line.numbers import InvalidNumberError, dial_string
from custom_components.kpn_voip.kpn_line.policy import CallPolicy
from custom_components.kpn_voip.kpn_line.protocol import (
    CallerId,
    CallEvent,
    CallState,
    Direction,
    DtmfEvent,
    EndReason,
    ErrorCode,
    RegistrationEvent,
    RegState,
)
from custom_components.kpn_voip.kpn_line.settings import LineSettings

NUMBER = "+31201234567"
USERNAME = "12345678@ims.imscore.net"
PASSWORD = "correct-horse-battery"  # a test value, never a real one
WRONG_PASSWORD = "wrong-password-1"
DISPLAY_NAME = "Thuis"
INTEGRATION = Path(__file__).parents[2] / "custom_components" / "kpn_voip"


def registration(state: RegState, code: int | None = None) -> RegistrationEvent:
    """A registration event as the engine sends it."""
    reasons = {200: "OK", 403: "Forbidden", 408: "Request Timeout"}
    return RegistrationEvent(
        state=state,
        code=code,
        reason=reasons.get(code or 0),
        expires=3600 if state is RegState.REGISTERED else None,
        time=time.time(),
    )


def call_event(
    state: CallState,
    *,
    call_id: str = "c1",
    direction: Direction = Direction.INCOMING,
    number: str | None = "+31612345678",
    national: str | None = "0612345678",
    name: str | None = "Jan",
    anonymous: bool = False,
    missed: bool = False,
    duration: float | None = None,
    waiting: bool = False,
    at: float | None = None,
    end_reason: EndReason | None = None,
) -> CallEvent:
    """A call event as the engine sends it."""
    return CallEvent(
        call_id=call_id,
        direction=direction,
        state=state,
        caller=CallerId(number=number, national=national, name=name, anonymous=anonymous),
        missed=missed,
        duration=duration,
        waiting=waiting,
        end_reason=end_reason,
        code=487 if missed else (200 if state is CallState.ENDED else None),
        reason="Request Terminated" if missed else None,
        time=time.time() if at is None else at,
    )


@dataclass
class FakeEngineFactory:
    """Builds FakeEngines and says how the next one behaves."""

    instances: list[FakeEngine] = field(default_factory=list)
    # The registration the engine reports right after start (None: nothing).
    first_state: RegState | None = RegState.REGISTERED
    # Other devices' bindings the first `registered` lists (K7).
    first_other_bindings: int = 0
    # How start() fails, as the real EngineClient does: it raises without
    # calling on_exit (start_error); the engine dies right after start()
    # returned (die_on_start: on_exit later, on the loop); or it died while
    # answering `start` (die_during_start: on_exit before start() returns).
    start_error: BaseException | None = None
    die_on_start: bool = False
    die_during_start: bool = False
    # The engine reports the credentials sent (outcome unknown), then dies: an engine
    # killed between the credentialed REGISTER and its answer (issue 9 item 5).
    sent_then_die: bool = False
    sent_then_silent: bool = False  # ... or hangs: no outcome, no exit
    dial_error: EngineError | None = None
    hangup_error: EngineError | None = None
    sound_error: EngineError | None = None  # answer, play, record, send_dtmf (issue 11)

    def __call__(self, **kwargs: Any) -> FakeEngine:
        """Like EngineClient(**kwargs)."""
        engine = FakeEngine(self, **kwargs)
        self.instances.append(engine)
        return engine

    @property
    def last(self) -> FakeEngine:
        """The newest engine."""
        return self.instances[-1]

    @property
    def started(self) -> list[FakeEngine]:
        """Engines whose start() was called (each sends credentials once)."""
        return [engine for engine in self.instances if engine.settings is not None]


class FakeEngine:
    """Stands in for kpn_line.client.EngineClient (HA-side tests only)."""

    def __init__(
        self,
        factory: FakeEngineFactory,
        *,
        on_event: Callable[[Any], None],
        on_exit: Callable[[int | None, str], None] | None = None,
        command: Any = None,
        ping_interval: float = 10.0,
        reply_timeout: float = 5.0,
    ) -> None:
        """Remember the callbacks."""
        self.factory = factory
        self.on_event = on_event
        self.on_exit = on_exit
        self.command = command
        self.settings: LineSettings | None = None
        self.running = False
        self.stop_calls = 0
        self.stop_credentials: list[bool] = []
        self.dialled: list[tuple[str, bool, float | None]] = []
        self.hangups: list[str | None] = []
        self.policies: list[CallPolicy | None] = []  # with start, then set_call_policy
        self.sound: list[tuple[Any, ...]] = []  # answer/play/stop_playback/record/send_dtmf
        self.previous_contacts: tuple[str, ...] = ()  # what start() was given (K7)
        self.leftover_contacts: tuple[str, ...] = ()  # set by a test: what it would leave

    @property
    def pid(self) -> int | None:
        """A pretend process id."""
        return 4242 if self.running else None

    async def start(
        self,
        settings: LineSettings,
        *,
        policy: CallPolicy | None = None,
        previous_contacts: Sequence[str] = (),
    ) -> None:
        """Pretend to spawn the engine; report the scripted registration."""
        self.settings = settings
        self.policies.append(policy)
        self.previous_contacts = tuple(previous_contacts)
        if self.factory.start_error is not None:
            raise self.factory.start_error
        self.running = True
        loop = asyncio.get_running_loop()
        if self.factory.die_during_start:
            self.die()
        elif self.factory.sent_then_die or self.factory.sent_then_silent:
            sent = RegistrationEvent(
                state=RegState.REGISTERING, credentials_sent=True, time=time.time()
            )
            loop.call_soon(self.emit, sent)
            if self.factory.sent_then_die:
                loop.call_soon(self.die)
        elif self.factory.die_on_start:
            loop.call_soon(self.die)
        elif (state := self.factory.first_state) is not None:
            code = {RegState.REGISTERED: 200, RegState.AUTH_FAILED: 403}.get(state)
            first = registration(state, code)
            if self.factory.first_other_bindings:
                first = replace(first, other_bindings=self.factory.first_other_bindings)
            loop.call_soon(self.emit, first)

    def emit(self, event: Any) -> None:
        """Deliver an event as the real client does (on the loop)."""
        self.on_event(event)

    def die(self, returncode: int | None = -9, reason: str = "engine exited") -> None:
        """The engine process died."""
        self.running = False
        if self.on_exit is not None:
            self.on_exit(returncode, reason)

    async def dial(
        self, number: str, *, hide_caller_id: bool = False, hangup_after: float | None = None
    ) -> str:
        """Record the dial; a number the engine would refuse is refused (K25)."""
        if self.factory.dial_error is not None:
            raise self.factory.dial_error
        try:
            # The engine's own check, so that its reply is the real one.
            dial_string(number, hide_caller_id=hide_caller_id)
        except InvalidNumberError as err:
            raise EngineError(ErrorCode.INVALID_NUMBER, err.message) from None
        self.dialled.append((number, hide_caller_id, hangup_after))
        return f"out{len(self.dialled)}"

    async def hangup(self, call_id: str | None = None) -> int:
        """Record the hang-up."""
        if self.factory.hangup_error is not None:
            raise self.factory.hangup_error
        self.hangups.append(call_id)
        return 1

    def _sound(self, *command: Any) -> None:
        if self.factory.sound_error is not None:
            raise self.factory.sound_error
        self.sound.append(command)

    async def answer(self, call_id: str) -> None:
        """Record the answer."""
        self._sound("answer", call_id)

    async def play(
        self, call_id: str, file: str, *, loops: int = 1, then_hangup: bool = False
    ) -> None:
        """Record the play (the file must be there: the engine reads it)."""
        assert Path(file).is_file(), file
        self._sound("play", call_id, file, loops, then_hangup)

    async def stop_playback(self, call_id: str) -> bool:
        """Record it; something played."""
        self._sound("stop_playback", call_id)
        return True

    async def record(
        self, call_id: str, file: str, *, max_seconds: float, silence_seconds: float | None
    ) -> None:
        """Record the recording's start."""
        self._sound("record", call_id, file, max_seconds, silence_seconds)

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        """Record the digits."""
        self._sound("send_dtmf", call_id, digits)

    async def set_call_policy(self, policy: CallPolicy) -> None:
        """Record the policy (issue 12)."""
        self.policies.append(policy)

    async def ping(self) -> None:
        """Nothing to do."""

    async def stop(self, *, credentials: bool = True) -> None:
        """Idempotent, like the real one; `credentials` as the coordinator asked (K8)."""
        self.stop_calls += 1
        self.stop_credentials.append(credentials)
        self.running = False


@pytest.fixture
def fake_engine() -> Generator[FakeEngineFactory]:
    """Patch the engine client the coordinator starts."""
    factory = FakeEngineFactory()
    with patch("custom_components.kpn_voip.coordinator.EngineClient", factory):
        yield factory


@pytest.fixture(autouse=True)
def pjsua2_present() -> Generator[Any]:
    """pjsua2 is importable (tests of the missing case patch this to False)."""
    with patch("custom_components.kpn_voip.issues._pjsua2_importable", return_value=True) as mock:
        yield mock


@pytest.fixture
def mock_probe_login() -> Generator[AsyncMock]:
    """The config flow's single test REGISTER; registered unless told otherwise."""
    with patch(
        "custom_components.kpn_voip.config_flow.probe_login",
        new=AsyncMock(return_value=registration(RegState.REGISTERED, 200)),
    ) as mock:
        yield mock


@pytest.fixture
def mock_setup_entry() -> Generator[AsyncMock]:
    """Keep the config flow tests from setting the entry up."""
    with patch("custom_components.kpn_voip.async_setup_entry", return_value=True) as mock:
        yield mock


@pytest.fixture
def mock_config_entry() -> MockConfigEntry:
    """A configured line."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=DISPLAY_NAME,
        unique_id=NUMBER,
        entry_id="01KPNLINE0000000000000000A",
        data={
            CONF_NUMBER: NUMBER,
            "username": USERNAME,
            "password": PASSWORD,
            CONF_DISPLAY_NAME: DISPLAY_NAME,
        },
        options={},
    )


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots in Home Assistant's format (volatile ids and times masked)."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


def with_call_target(
    entry: MockConfigEntry, number: str = "06 1234 5678", title: str = "Mobile Jan"
) -> MockConfigEntry:
    """A copy of the line `entry` with one call target (a config subentry, issue 11)."""
    target = ConfigSubentryData(
        data={CONF_NUMBER: number}, subentry_type=SUBENTRY_CALL_TARGET, title=title, unique_id=None
    )
    return MockConfigEntry(
        domain=entry.domain,
        title=entry.title,
        unique_id=entry.unique_id,
        data=dict(entry.data),
        options=dict(entry.options),
        subentries_data=[target],
    )


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Add the entry and set it up (whatever the outcome)."""
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


def lockout_issue(hass: HomeAssistant, entry: MockConfigEntry) -> ir.IssueEntry | None:
    """The entry's K8 repair issue, if raised."""
    return ir.async_get(hass).async_get_issue(DOMAIN, lockout_issue_id(entry))


def reauth_flows(hass: HomeAssistant) -> list[Any]:
    """The reauth flows in progress (Home Assistant's, started for a refused password)."""
    return [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH
    ]


def reauth_repair(entry: MockConfigEntry) -> tuple[str, str]:
    """(domain, issue id) of the repair Home Assistant raises with a reauth flow."""
    return (HOMEASSISTANT_DOMAIN, f"config_entry_reauth_{DOMAIN}_{entry.entry_id}")


def repairs(hass: HomeAssistant, entry: MockConfigEntry) -> list[tuple[str, str]]:
    """Every repair about `entry`, as (domain, issue id), sorted: ours and Home Assistant's
    reauth repair (reauth_repair) - one per cause (K8)."""
    return sorted(
        key
        for key in ir.async_get(hass).issues
        if key[0] in (DOMAIN, HOMEASSISTANT_DOMAIN) and entry.entry_id in key[1]
    )


@pytest.fixture
def platforms() -> list[Platform]:
    """The platforms set up; a test module overrides this to test only one."""
    return PLATFORMS


@pytest.fixture(autouse=True)
def _only_platforms(platforms: list[Platform]) -> Generator[None]:
    with patch("custom_components.kpn_voip.PLATFORMS", platforms):
        yield


@dataclass
class Line:
    """A loaded line on fake engines: drives engine events and the clock."""

    hass: HomeAssistant
    entry: MockConfigEntry
    engines: FakeEngineFactory
    freezer: FrozenDateTimeFactory

    @property
    def engine(self) -> FakeEngine:
        """The newest engine."""
        return self.engines.last

    @property
    def coordinator(self) -> KpnVoipCoordinator:
        """The entry's coordinator."""
        coordinator: KpnVoipCoordinator = self.entry.runtime_data
        return coordinator

    def state(self, entity_id: str) -> str:
        """An entity's state."""
        state = self.hass.states.get(entity_id)
        assert state is not None, entity_id
        return state.state

    async def emit(self, *events: Any, engine: FakeEngine | None = None) -> None:
        """The (newest) engine sends `events`; then the loop settles."""
        for event in events:
            (engine or self.engine).emit(event)
        await self.hass.async_block_till_done()

    async def die(self, engine: FakeEngine | None = None) -> None:
        """The (newest) engine process dies; then the loop settles."""
        (engine or self.engine).die()
        await self.hass.async_block_till_done()

    async def advance(self, seconds: float) -> None:
        """Let `seconds` pass."""
        self.freezer.tick(seconds)
        async_fire_time_changed(self.hass)
        await self.hass.async_block_till_done()


@pytest.fixture
async def line(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> Line:
    """The configured line, set up (registered) at a fixed time."""
    freezer.move_to("2026-11-25 20:00:00+00:00")
    await setup_entry(hass, mock_config_entry)
    assert mock_config_entry.state is ConfigEntryState.LOADED
    return Line(hass, mock_config_entry, fake_engine, freezer)


# -- sound (issue 11): ffmpeg stand-in, media folder, offline TTS ---------------------

FAKE_FFMPEG = Path(__file__).with_name("fake_ffmpeg.py")


def wav_bytes(seconds: float = 0.3, rate: int = 16000, channels: int = 2) -> bytes:
    """A tone as a 16-bit WAV file."""
    n = int(seconds * rate)
    samples = []
    for i in range(n):
        value = round(8000 * math.sin(2 * math.pi * 440 * i / rate))
        samples += [value] * channels
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return buf.getvalue()


def open_wav(path: Path, frames: int) -> bytes:
    """`frames` of 8 kHz 16-bit mono audio (K14) in a WAV file whose header is as pjmedia
    writes it on opening (RIFF and data sizes 0), as a killed engine leaves it; the audio."""
    audio = struct.pack(f"<{frames}h", *((i * 91) % 16000 - 8000 for i in range(frames)))
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)  # PCM, mono, 8000 Hz, 16 bits
    header = b"RIFF\0\0\0\0WAVEfmt " + struct.pack("<I", 16) + fmt + b"data\0\0\0\0"
    path.write_bytes(header + audio)
    return audio


class ChirpProvider(tts.Provider):
    """An offline TTS engine: every message is the same audio (a short WAV tone unless
    told otherwise: `audio` = (extension, bytes), e.g. an MP3 as cloud engines give)."""

    name = "Test speech"

    def __init__(self, audio: tuple[str, bytes] | None = None) -> None:
        self.spoken: list[tuple[str, str, dict[str, Any]]] = []
        self.audio = audio
        self.delay = 0.0  # seconds each message takes to speak (a slow engine, a long text)

    @property
    def default_language(self) -> str:
        return "en"

    @property
    def supported_languages(self) -> list[str]:
        return ["en", "nl"]

    @property
    def supported_options(self) -> list[str]:
        return ["voice"]

    def get_tts_audio(
        self, message: str, language: str, options: dict[str, Any]
    ) -> tts.TtsAudioType:
        self.spoken.append((message, language, dict(options)))
        time.sleep(self.delay)  # Home Assistant runs this in an executor thread
        return self.audio or ("wav", wav_bytes())


@pytest.fixture
def media_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Home Assistant's media folder ("local"), with a stereo 16 kHz greeting in it."""
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "greeting.wav").write_bytes(wav_bytes())
    (folder / "broken.wav").write_bytes(b"no sound in here")
    hass.config.media_dirs = {"local": str(folder)}
    return folder


@pytest.fixture(autouse=True)
async def ffmpeg_stand_in(hass: HomeAssistant) -> None:
    """Home Assistant's ffmpeg integration with fake_ffmpeg.py as its binary (before the line)."""
    assert await async_setup_component(hass, "ffmpeg", {"ffmpeg": {"ffmpeg_bin": str(FAKE_FFMPEG)}})


@pytest.fixture
def tts_audio() -> tuple[str, bytes] | None:
    """What the offline TTS engine says (None: its WAV tone); a module may override it."""
    return None


@pytest.fixture
async def speech(
    hass: HomeAssistant, socket_enabled: None, media_dir: Path, tts_audio: tuple[str, bytes] | None
) -> ChirpProvider:
    """media_source and an offline TTS engine `test` (ChirpProvider)."""
    provider = ChirpProvider(tts_audio)

    async def async_get_engine(*args: Any) -> ChirpProvider:
        return provider

    mock_integration(hass, MockModule("test"))
    mock_platform(hass, "test.tts", SimpleNamespace(async_get_engine=async_get_engine))
    assert await async_setup_component(hass, "http", {})
    assert await async_setup_component(hass, "media_source", {})
    assert await async_setup_component(hass, "tts", {"tts": {"platform": "test", "cache": False}})
    await hass.async_block_till_done()
    return provider


async def configure(
    hass: HomeAssistant, flow_id: str, user_input: Any = None, *, progress_ok: bool = False
) -> dict[str, Any]:
    """Post a config flow form: the result (entry, form or abort).

    A login test that answers within LOGIN_ANSWER_WAIT (the fake probe answers at
    once) goes straight to its result: a progress step then fails the test.  With
    `progress_ok` (a real login, which may be slower), a login test's progress (step
    `login`, K8) is followed to its end, as the frontend does.
    """
    result = await hass.config_entries.flow.async_configure(flow_id, user_input)
    if result["type"] is FlowResultType.SHOW_PROGRESS:
        assert progress_ok, f"a fast login showed progress: {result}"
        assert result["step_id"] == "login"
        assert result["progress_action"] == "login"
        await hass.async_block_till_done()
        result = await hass.config_entries.flow.async_configure(flow_id)
    return dict(result)


async def configure_after_block(
    hass: HomeAssistant,
    flow_id: str,
    user_input: Any,
    freezer: FrozenDateTimeFactory,
    probe: AsyncMock,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Post a password while KPN blocks the account after a failure (K8): the flow holds it
    (progress `lockout_wait`) and `probe` (the test REGISTER) is not called until the block
    has ended; then the clock moves to that end.  (the progress shown, the result after it)"""
    sent = probe.await_count
    held = dict(await hass.config_entries.flow.async_configure(flow_id, user_input))
    assert held["type"] is FlowResultType.SHOW_PROGRESS
    assert (held["step_id"], held["progress_action"]) == ("login", "lockout_wait")
    await asyncio.sleep(0)
    assert probe.await_count == sent  # held: nothing sent during the block
    freezer.tick(int(held["description_placeholders"]["block_minutes"]) * 60 - 61)
    async_fire_time_changed(hass)
    await asyncio.sleep(0)
    assert probe.await_count == sent  # a minute before the end: still held
    freezer.tick(61 + 60)  # past the end, whatever the rounding of the minutes shown
    async_fire_time_changed(hass)
    # The held login and its progress are background tasks (HA's stop cancels them).
    await hass.async_block_till_done(wait_background_tasks=True)
    assert probe.await_count == sent + 1  # one REGISTER, once the block has ended
    result = await hass.config_entries.flow.async_configure(flow_id)
    return held, dict(result)


async def emit_until(engine: FakeEngine, event: Any, done: Callable[[], bool]) -> None:
    """The engine reports `event` (a sound event of call c1) until `done()` holds.

    An automation arms its wait for the event only after the command before it
    (play, record) returned, and a template trigger fires only when it turns
    true: an event reported before that is missed (a real greeting or message
    lasts seconds, a scripted one none).  So until `done()`, the event is
    reported again, after a key press that turns the wait's template false.
    """
    for _ in range(300):
        engine.emit(event)
        for _ in range(10):
            if done():
                return
            await asyncio.sleep(0.02)
        engine.emit(DtmfEvent(call_id="c1", digit="5"))
    raise AssertionError(f"the automation did not go on after {type(event).__name__}")


async def until(check: Callable[[], Any], seconds: float = 30.0) -> None:
    """Let the loop run (real time: automations wait) until `check()` holds.

    Not async_block_till_done: it would wait for the automations' waits too.
    """
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the automation did not get there")


def phone_device(hass: HomeAssistant) -> str:
    """A companion-app phone (a mobile_app device) for a blueprint's notify input; its id."""
    entry = MockConfigEntry(domain="mobile_app")
    entry.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={("mobile_app", "phone")}, name="Phone"
    )
    return device.id


@pytest.fixture
def phone_app() -> Generator[None]:
    """The companion app's notify device action, as mobile_app resolves it: webhook ->
    the service notify.mobile_app_phone (mock it with async_mock_service)."""
    action = "homeassistant.components.mobile_app.device_action"
    with (
        patch(f"{action}.webhook_id_from_device_id", return_value="hook"),
        patch(f"{action}.get_notify_service", return_value="mobile_app_phone"),
    ):
        yield
