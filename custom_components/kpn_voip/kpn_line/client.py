"""The asyncio client of the line engine (docs/engine-protocol.md).

Starts `python -m kpn_line.engine` as a child process, speaks JSON lines with
it, hands events to `on_event` on the event loop, and notices when the engine
dies (its stdout closes) or hangs (no answer to a ping): `on_exit` is called
once then.  The password travels only inside the `start` command (K9): never
on the command line or in the child's environment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
import contextlib
import io
import itertools
import logging
import os
from pathlib import Path
import signal
import sys
import time
from typing import Any, Final, override

from . import PROTOCOL_VERSION
from .commands import (
    Answer,
    Command,
    Dial,
    Hangup,
    Ping,
    Play,
    Record,
    SendDtmf,
    SetCallPolicy,
    Start,
    Stop,
    StopPlayback,
    encode_command,
)
from .policy import CallPolicy
from .protocol import (
    CREDENTIALS_OUTCOME_WAIT,
    MAX_LINE_BYTES,
    REGISTRATION_OUTCOMES,
    Event,
    Hello,
    ProtocolError,
    RegistrationEvent,
    RegState,
    Reply,
    decode,
)
from .settings import LineSettings

_LOGGER = logging.getLogger(__name__)

HELLO_TIMEOUT: Final = 20.0  # importing pjsua2 on a slow box takes a while
STOP_TIMEOUT: Final = 5.0  # a clean stop un-REGISTERs first (up to ~1.5 s)
KILL_TIMEOUT: Final = 3.0
# pjsip's log level asked for when this module's logger is at debug: pjsua logs each SIP
# message sent and received at level 4 (its msg_logging), with the media and dialog steps.
SIP_DEBUG_LOG_LEVEL: Final = 4
PACKAGE_PARENT: Final = str(Path(__file__).resolve().parent.parent)  # holds kpn_line/


class EngineError(Exception):
    """A command failed; `code` is a protocol ErrorCode value or engine_died/timeout/protocol."""

    def __init__(self, code: str, message: str = "") -> None:
        """Code and a message (never a secret, K9)."""
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class EngineDiedError(EngineError):
    """The engine process is gone (or was killed because it hung)."""

    def __init__(self, message: str = "the engine process ended") -> None:
        """Always code engine_died."""
        super().__init__("engine_died", message)


def _check_hello(hello: Hello) -> None:
    if hello.protocol != PROTOCOL_VERSION:
        raise EngineError("protocol", f"the engine speaks protocol {hello.protocol}")


OVER_LONG: Final = "the engine sent an over-long line"
CLOSED_OUTPUT: Final = "the engine closed its output"


class LineReader(asyncio.Protocol):
    """The engine's stdout as lines, each handed to `on_line` inside `data_received`.

    `on_line(line)` gets each line with its newline (the last one of the output
    without it, if the engine ended in the middle of a line), in order, as soon
    as its chunk is read: no task wakes up per line, so an event reaches the
    client's handler in the same loop iteration that read it (issue 11: a
    `StreamReader.readline()` loop cost one more iteration of Home Assistant's
    loop per line).  A line longer than `limit` bytes (without its newline), or
    more than `limit` bytes without a newline, ends the reading: `closed` gets
    OVER_LONG, nothing after it is handed on.  The end of the output (or a
    read error) sets `closed` to CLOSED_OUTPUT.  An exception from `on_line`
    is the caller's to contain (it would end the transport).
    """

    def __init__(self, on_line: Callable[[bytes], None], limit: int) -> None:
        """`limit`: the longest line in bytes, as StreamReader's `limit`."""
        self._on_line = on_line
        self._limit = limit
        self._buffer = b""
        self._transport: asyncio.ReadTransport | None = None
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @override
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport, to stop reading after an over-long line."""
        assert isinstance(transport, asyncio.ReadTransport)
        self._transport = transport

    @override
    def data_received(self, data: bytes) -> None:
        """Split `data` (after what is left of the previous chunk) into lines."""
        if self.closed.done():
            return
        buffer = self._buffer + data if self._buffer else data
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            if end - start > self._limit:
                self._end(OVER_LONG)
                return
            self._on_line(buffer[start : end + 1])
            if self.closed.done():
                return
            start = end + 1
        rest = buffer[start:] if start else buffer
        if len(rest) > self._limit:
            self._end(OVER_LONG)
            return
        self._buffer = rest

    @override
    def eof_received(self) -> bool:
        """A last line without its newline is still a line (as readline() returns it)."""
        rest, self._buffer = self._buffer, b""
        if rest and not self.closed.done():
            self._on_line(rest)
        self._end(CLOSED_OUTPUT)
        return False

    @override
    def connection_lost(self, exc: Exception | None) -> None:
        """The pipe is closed (after its end, a read error or close())."""
        self._end(CLOSED_OUTPUT)

    def _end(self, reason: str) -> None:
        self._buffer = b""
        if not self.closed.done():
            self.closed.set_result(reason)
        if reason == OVER_LONG and self._transport is not None:
            self._transport.pause_reading()


def default_engine_command(python: str | None = None) -> list[str]:
    """`<python> -m kpn_line.engine` (PYTHONPATH is set by the client)."""
    return [python or sys.executable, "-m", "kpn_line.engine"]


class EngineClient:
    """One engine process; see the module docstring."""

    def __init__(
        self,
        *,
        on_event: Callable[[Event], None],
        on_exit: Callable[[int | None, str], None] | None = None,
        command: Sequence[str] | None = None,
        ping_interval: float = 10.0,
        reply_timeout: float = 5.0,
        hello_timeout: float = HELLO_TIMEOUT,
    ) -> None:
        """Nothing runs until `start`.

        `hello_timeout`: seconds `start` waits for the engine's hello (spawn and
        the pjsua2 import); `reply_timeout`: seconds for each command's reply;
        `ping_interval`: seconds between pings (0: none).  Longer ones for an
        engine that runs emulated (tests/wheels/test_aarch64.py).
        """
        self._on_event = on_event
        self._on_exit = on_exit
        self._command = list(command) if command else default_engine_command()
        self._ping_interval = ping_interval
        self._reply_timeout = reply_timeout
        self._hello_timeout = hello_timeout
        self._proc: asyncio.subprocess.Process | None = None
        # The engine's stdout: a pipe of our own, read by a LineReader (issue 11).
        self._stdout: io.FileIO | None = None
        self._stdout_transport: asyncio.ReadTransport | None = None
        self._spawn: asyncio.Future[asyncio.subprocess.Process] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._hello: asyncio.Future[Hello] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._exited = False
        self._started = False  # start() returned: from now on a death goes to on_exit
        self._exit_reported = False
        self._greeted = False
        self._exit_info: tuple[int | None, str] = (None, "")
        self._write_lock = asyncio.Lock()
        self._previous: tuple[str, ...] = ()  # Start.previous_contacts
        self._contact: str | None = None  # the newest `registered` event's

    # -- properties ---------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the engine process runs and was not stopped."""
        return (
            self._proc is not None
            and self._proc.returncode is None
            and not self._exited
            and not self._stopping
        )

    @property
    def leftover_contacts(self) -> tuple[str, ...]:
        """K7: `host:port` of the bindings the registrar may still hold for this engine.

        The Contact of its newest `registered` event; before one came, the
        `previous_contacts` it was started with (its first REGISTER may not
        have removed them).  After its death, the next engine of the line
        gets them (`start(previous_contacts=...)`): should that one take
        another port, it removes them instead of reporting them as another
        device.
        """
        return (self._contact,) if self._contact is not None else self._previous

    @property
    def pid(self) -> int | None:
        """The engine's process id, while there is one."""
        return self._proc.pid if self._proc is not None else None

    # -- life cycle ---------------------------------------------------------------

    async def start(
        self,
        settings: LineSettings,
        *,
        single_attempt: bool = False,
        policy: CallPolicy | None = None,
        previous_contacts: Sequence[str] = (),
    ) -> None:
        """Spawn the engine, wait for its hello, send `start` with `settings`.

        `single_attempt`: exactly one registration attempt, no retries (K8, login test).
        `policy`: sent before `start`, so no call can ring that it refuses.
        `previous_contacts`: the `leftover_contacts` of this line's engine that
        died (K7: removed by the first REGISTER, never taken for another device).
        """
        if self._spawn is not None:
            raise EngineError("bad_request", "this client was started already")
        if self._stopping:
            raise EngineDiedError("the engine was stopped")
        env = dict(os.environ)
        # The engine package must be importable as `kpn_line`; nothing secret here.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (PACKAGE_PARENT, env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        loop = asyncio.get_running_loop()
        self._hello = loop.create_future()
        # stdout is a pipe of our own, read by a LineReader protocol (not the Process's
        # StreamReader): each line is handled as it is read (issue 11).
        read_fd, write_fd = os.pipe()
        self._stdout = io.FileIO(read_fd, "rb", closefd=True)
        # The spawn is a task of its own, so that a stop() (or a cancellation of this
        # start) in the middle of it still gets the process to end and reap.
        self._spawn = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                *self._command,
                stdin=asyncio.subprocess.PIPE,
                stdout=write_fd,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                limit=MAX_LINE_BYTES + 2,
            )
        )
        # The child has its copy once the spawn is over (or never will): ours goes, so
        # that the engine's end is the end of the pipe.
        self._spawn.add_done_callback(lambda _: os.close(write_fd))
        try:
            proc = await asyncio.shield(self._spawn)
        except OSError as err:
            self._close_stdout()
            raise EngineError("engine_died", f"cannot start the engine: {err.strerror}") from None
        except asyncio.CancelledError:
            await self.stop()
            raise
        if self._stopping:  # stop() ran meanwhile and has ended this process already
            raise EngineDiedError("the engine was stopped")
        self._proc = proc
        reader = LineReader(self._handle_line, MAX_LINE_BYTES + 2)
        self._tasks = [
            asyncio.create_task(self._read_stdout(reader), name="kpn_line engine stdout"),
            asyncio.create_task(self._read_stderr(), name="kpn_line engine stderr"),
        ]
        try:
            assert self._stdout is not None
            self._stdout_transport, _ = await loop.connect_read_pipe(lambda: reader, self._stdout)
            hello = await asyncio.wait_for(asyncio.shield(self._hello), self._hello_timeout)
            _check_hello(hello)
            self._greeted = True  # speaks our protocol: a `stop` command will be understood
            if policy is not None:
                await self._request(SetCallPolicy(policy=policy))
            self._previous = tuple(previous_contacts)
            start = Start(
                settings=settings,
                single_attempt=single_attempt,
                previous_contacts=self._previous,
                # The engine's SIP messages in the debug log (README "Debug logs");
                # the engine redacts them (K9).
                log_level=SIP_DEBUG_LOG_LEVEL if _LOGGER.isEnabledFor(logging.DEBUG) else None,
            )
            await self._request(start)
        except TimeoutError:
            await self.stop()
            raise EngineError("timeout", "the engine did not say hello") from None
        except BaseException:
            await self.stop()
            raise
        self._started = True
        if self._exited:  # died right after answering `start`
            self._report_exit()
        elif self._ping_interval > 0:
            self._tasks.append(asyncio.create_task(self._pinger(), name="kpn_line engine ping"))

    async def stop(self, *, credentials: bool = True) -> None:
        """Stop the engine: `stop`, wait, then SIGKILL.  Idempotent; never hangs.

        `credentials` False: the un-REGISTER answers no challenge (K8 window).
        """
        if self._stopping:
            return
        self._stopping = True
        proc = self._proc
        if proc is None and self._spawn is not None:
            proc = self._proc = await self._spawned()
        current = asyncio.current_task()
        for task in self._tasks:
            if task.get_name() == "kpn_line engine ping" and task is not current:
                task.cancel()
        if proc is not None and proc.returncode is None and not self._exited and self._greeted:
            deadline = time.monotonic() + STOP_TIMEOUT
            listening = True
            try:
                await self._request(Stop(credentials=credentials), timeout=STOP_TIMEOUT)
            except EngineDiedError:
                listening = False  # it does not read its input: nothing to wait for
            except (EngineError, OSError):
                pass  # no reply in time: it gets what is left of the deadline
            if listening:
                try:
                    await asyncio.wait_for(proc.wait(), max(0.1, deadline - time.monotonic()))
                except TimeoutError:
                    _LOGGER.warning("the line engine did not stop: killing it")
        if proc is not None:
            await self._kill(proc)
        for task in self._tasks:
            if task is not current and not task.done():
                task.cancel()
        for task in self._tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._tasks.clear()
        self._close_stdout()
        self._fail_pending(EngineDiedError("the engine was stopped"))
        if self._hello is not None and not self._hello.done():
            # A start() waiting for the hello ends now, not after HELLO_TIMEOUT.
            self._hello.set_exception(EngineDiedError("the engine was stopped"))
            self._hello.exception()  # retrieved: no "never retrieved" warning

    def _close_stdout(self) -> None:
        """Close our end of the engine's stdout (idempotent)."""
        if self._stdout_transport is not None:
            self._stdout_transport.close()  # closes the pipe too, once it is off the loop
        elif self._stdout is not None:
            self._stdout.close()

    async def _spawned(self) -> asyncio.subprocess.Process | None:
        """The process of a spawn that may still be under way (None if it failed).

        Waits for it even through a cancellation (it takes milliseconds), so
        that no engine is left running; a cancellation is raised afterwards.
        """
        spawn = self._spawn
        assert spawn is not None
        cancelled = False
        while not spawn.done():
            try:
                await asyncio.wait((spawn,))
            except asyncio.CancelledError:
                cancelled = True
        proc = None if spawn.cancelled() or spawn.exception() is not None else spawn.result()
        if cancelled:
            if proc is not None:
                await self._kill(proc)
            self._close_stdout()
            raise asyncio.CancelledError
        return proc

    async def _kill(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), KILL_TIMEOUT)
        if proc.stdin is not None:
            proc.stdin.close()
            with contextlib.suppress(Exception):
                await proc.stdin.wait_closed()

    # -- commands -----------------------------------------------------------------

    async def dial(
        self, number: str, *, hide_caller_id: bool = False, hangup_after: float | None = None
    ) -> str:
        """Place a call (K25, K26); returns its call_id."""
        result = await self._request(
            Dial(number=number, hide_caller_id=hide_caller_id, hangup_after=hangup_after)
        )
        return str(result["call_id"])

    async def hangup(self, call_id: str | None = None) -> int:
        """End one call (or all with None); returns how many."""
        result = await self._request(Hangup(call_id=call_id))
        return int(result.get("ended", 0))

    async def answer(self, call_id: str) -> None:
        """Answer a ringing incoming call (200); its sound starts (silence, K20)."""
        await self._request(Answer(call_id=call_id))

    async def play(
        self, call_id: str, file: str, *, loops: int = 1, then_hangup: bool = False
    ) -> None:
        """Play a WAV file into an answered call; `playback_finished` follows."""
        await self._request(Play(call_id=call_id, file=file, loops=loops, then_hangup=then_hangup))

    async def stop_playback(self, call_id: str) -> bool:
        """Stop what plays into a call; True if something played."""
        result = await self._request(StopPlayback(call_id=call_id))
        return bool(result.get("stopped"))

    async def record(
        self,
        call_id: str,
        file: str,
        *,
        max_seconds: float = 120.0,
        silence_seconds: float | None = None,
    ) -> None:
        """Record what the far end sends to a new WAV file; `recording_saved` follows."""
        await self._request(
            Record(
                call_id=call_id,
                file=file,
                max_seconds=max_seconds,
                silence_seconds=silence_seconds,
            )
        )

    async def send_dtmf(self, call_id: str, digits: str) -> None:
        """Send digits as RFC 2833 telephone-events (K15)."""
        await self._request(SendDtmf(call_id=call_id, digits=digits))

    async def set_call_policy(self, policy: CallPolicy) -> None:
        """Which incoming calls may ring, from the next INVITE on (policy.py)."""
        await self._request(SetCallPolicy(policy=policy))

    async def ping(self) -> None:
        """Round trip to the engine (raises EngineError on timeout)."""
        await self._request(Ping())

    async def _request(
        self,
        command: Command,
        *,
        timeout: float | None = None,  # noqa: ASYNC109  a per-command reply timeout
    ) -> dict[str, Any]:
        """Send `command` (its `id` is given here); the result of its reply.

        EngineError for an error reply or no reply in time, EngineDiedError
        when the engine is gone or does not read its input.
        """
        proc = self._proc
        if proc is None or proc.stdin is None or self._exited or proc.returncode is not None:
            raise EngineDiedError()
        if self._stopping and not isinstance(command, Stop):
            raise EngineDiedError("the engine was stopped")
        cmd_id = next(self._ids)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[cmd_id] = future
        try:
            async with self._write_lock:
                proc.stdin.write(encode_command(command, cmd_id))
                await proc.stdin.drain()
            reply = await asyncio.wait_for(future, timeout or self._reply_timeout)
        except TimeoutError:
            raise EngineError("timeout", f"no reply to {command.type}") from None
        except (BrokenPipeError, ConnectionResetError):
            # Alive but deaf is as good as dead: report it (the pinger could not) and kill it.
            await self._died("the engine does not read its commands", kill=True)
            raise EngineDiedError() from None
        finally:
            self._pending.pop(cmd_id, None)
        if not reply.ok:
            raise EngineError(reply.error_code or "internal", reply.error_message or "")
        return reply.result

    # -- reading ------------------------------------------------------------------

    async def _read_stdout(self, reader: LineReader) -> None:
        """Wait for the end of the engine's output (the LineReader hands on its lines)."""
        reason = CLOSED_OUTPUT
        try:
            reason = await reader.closed
        finally:
            if not self._stopping:
                await self._died(reason)

    def _handle_line(self, line: bytes) -> None:
        """One line of the engine's output: a reply, the hello or an event (on_event)."""
        try:
            message = decode(line)
        except ProtocolError as err:
            _LOGGER.warning("bad line from the line engine: %s", err)
            return
        match message:
            case Reply():
                future = self._pending.get(message.id)
                if future is not None and not future.done():
                    future.set_result(message)
            case Hello():
                if self._hello is not None and not self._hello.done():
                    self._hello.set_result(message)
            case _:  # an Event
                if isinstance(message, RegistrationEvent) and message.contact is not None:
                    self._contact = message.contact
                try:
                    self._on_event(message)
                except Exception:
                    _LOGGER.exception("error in the line engine's event handler")

    async def _read_stderr(self) -> None:
        proc = self._proc
        assert proc is not None
        assert proc.stderr is not None
        while True:
            try:
                line = await proc.stderr.readline()
            except ValueError:
                continue
            if not line:
                return
            # The engine redacts its own log (K9); pass it on at debug level.
            _LOGGER.debug("engine: %s", line.decode(errors="replace").rstrip())

    async def _pinger(self) -> None:
        while True:
            await asyncio.sleep(self._ping_interval)
            if self._stopping or self._exited:
                return
            try:
                await self._request(Ping())
            except EngineDiedError:
                return
            except EngineError:
                await self._died("the engine did not answer a ping", kill=True)
                return

    async def _died(self, reason: str, *, kill: bool = False) -> None:
        """The engine is gone or hung: fail what waits, report once."""
        if self._exited or self._stopping:
            return
        self._exited = True
        proc = self._proc
        self._fail_pending(EngineDiedError(reason))
        if self._hello is not None and not self._hello.done():
            self._hello.set_exception(EngineDiedError(reason))
            self._hello.exception()  # retrieved: no "never retrieved" warning
        returncode: int | None = None
        if proc is not None:
            if kill:
                await self._kill(proc)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 1.0)
                if proc.returncode is None:
                    await self._kill(proc)
            returncode = proc.returncode
            if proc.stdin is not None:
                proc.stdin.close()
        self._exit_info = (returncode, reason)
        if self._started:
            self._report_exit()

    def _report_exit(self) -> None:
        """on_exit, once; a failed start() raises instead."""
        returncode, reason = self._exit_info
        _LOGGER.warning("the line engine stopped (%s, exit code %s)", reason, returncode)
        if self._on_exit is not None and not self._exit_reported:
            self._exit_reported = True
            try:
                self._on_exit(returncode, reason)
            except Exception:
                _LOGGER.exception("error in the line engine's exit handler")

    def _fail_pending(self, error: EngineError) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()


async def probe_login(
    settings: LineSettings,
    *,
    timeout: float = 15.0,  # noqa: ASYNC109  the contract's signature
    command: Sequence[str] | None = None,
    on_credentials_sent: Callable[[], None] | None = None,
) -> RegistrationEvent:
    """Test a login with exactly one registration attempt (K8); the engine is stopped after.

    Returns the first terminal RegistrationEvent (registered / auth_failed /
    locked_out / unreachable); unreachable on timeout.  K8: once the engine
    has sent the credentials, `timeout` no longer ends the wait: their
    outcome (at most CREDENTIALS_OUTCOME_WAIT later) is waited for, so a
    late 401/403 is seen and the next attempt does not send them again.  An
    `unreachable` returned while their outcome is still unknown (an engine
    that hung) has `credentials_sent` set.  `on_credentials_sent` is called
    (on the loop, once) the moment the engine reports them out, so that the
    caller can keep "sent, outcome unknown" should the engine die before it.
    """
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[RegistrationEvent] = loop.create_future()
    sent_at: list[float] = []  # monotonic time the credentials went out

    def on_event(event: Event) -> None:
        if isinstance(event, RegistrationEvent) and event.credentials_sent and not sent_at:
            sent_at.append(time.monotonic())
            if on_credentials_sent is not None:
                on_credentials_sent()
        if (
            isinstance(event, RegistrationEvent)
            and event.state in REGISTRATION_OUTCOMES
            and not outcome.done()
        ):
            outcome.set_result(event)

    def on_exit(returncode: int | None, reason: str) -> None:
        if not outcome.done():
            outcome.set_exception(EngineDiedError(reason))

    client = EngineClient(on_event=on_event, on_exit=on_exit, command=command, ping_interval=0)
    deadline = time.monotonic() + timeout
    try:
        try:
            await asyncio.wait_for(client.start(settings, single_attempt=True), timeout)
            remaining = max(0.1, deadline - time.monotonic())
            try:
                return await asyncio.wait_for(asyncio.shield(outcome), remaining)
            except TimeoutError:
                if not sent_at:
                    raise
            # K8: the credentials are out; their outcome decides, not our timeout.
            remaining = max(0.1, sent_at[0] + CREDENTIALS_OUTCOME_WAIT - time.monotonic())
            return await asyncio.wait_for(asyncio.shield(outcome), remaining)
        except TimeoutError:
            return RegistrationEvent(
                state=RegState.UNREACHABLE,
                reason="no answer in time",
                time=time.time(),
                credentials_sent=bool(sent_at),
            )
        except EngineError as err:
            if err.code == "locked_out":
                return RegistrationEvent(
                    state=RegState.LOCKED_OUT, reason=err.message, time=time.time()
                )
            raise
    finally:
        await client.stop()
        if not outcome.done():
            outcome.cancel()
