"""The asyncio client: contract, failure detection, secrets (K9).

Real engine for the happy paths; tiny scripted stand-in engines for broken ones
(a wrong protocol, silence, a crash): the client's reaction is what is tested.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging
from pathlib import Path
import signal
import sys
import textwrap
import time
from typing import Any

import pytest

from custom_components.kpn_voip.kpn_line import client as client_module
from custom_components.kpn_voip.kpn_line.client import (
    EngineClient,
    EngineDiedError,
    EngineError,
    default_engine_command,
    probe_login,
)
from custom_components.kpn_voip.kpn_line.protocol import RegistrationEvent, RegState
from kpn_devtools.kamailio import TEST_ACCOUNT

from .conftest import LineFactory, Untyped, expect_error, registrar_settings

pytestmark = pytest.mark.timeout(60)

SETTINGS = registrar_settings(9)  # nothing listens: the line never registers


def fake_engine(body: str) -> list[str]:
    """A scripted engine: `body` runs with `send(obj)` and `lines` (stdin) available."""
    prelude = textwrap.dedent(
        """
        import json, os, sys, time
        def send(obj):
            sys.stdout.write(json.dumps(obj) + "\\n"); sys.stdout.flush()
        lines = (json.loads(line) for line in sys.stdin)
        """
    )
    return [sys.executable, "-c", prelude + textwrap.dedent(body)]


HELLO = 'send({"type": "hello", "protocol": 3, "engine": "kpn_line"})\n'
ANSWER_ALL = HELLO + textwrap.dedent(
    """
    for cmd in lines:
        if cmd["type"] == "dial":
            continue  # never answered
        send({"type": "reply", "id": cmd["id"], "ok": True, "result": {}})
        if cmd["type"] == "stop":
            break
    """
)


def test_default_engine_command() -> None:
    assert default_engine_command() == [sys.executable, "-m", "kpn_line.engine"]
    assert default_engine_command("/x/python")[0] == "/x/python"


async def test_password_not_on_command_line_or_in_environment(line_factory: LineFactory) -> None:
    """K9: the password travels only inside the start command."""
    line = await line_factory(SETTINGS, registered=False)
    pid = line.client.pid
    assert pid is not None
    for name in ("cmdline", "environ"):
        data = await asyncio.to_thread(Path(f"/proc/{pid}/{name}").read_bytes)
        assert TEST_ACCOUNT.password.encode() not in data
    assert line.client.running


async def test_commands_before_registration(line_factory: LineFactory) -> None:
    line = await line_factory(SETTINGS, registered=False)
    await line.client.ping()
    await expect_error(line.client.dial("0201234567"), "not_registered")
    await expect_error(line.client.dial(""), "invalid_number")
    assert await line.client.hangup(None) == 0
    await expect_error(line.client._request(Untyped("fly")), "bad_request")
    await expect_error(line.client.start(SETTINGS), "bad_request")  # one engine per client
    await line.client.stop()
    await line.client.stop()  # idempotent
    assert not line.client.running
    with pytest.raises(EngineDiedError):
        await line.client.ping()
    assert line.exits == []  # a stop is not a death


async def test_bad_settings_refused_without_echo() -> None:
    client = EngineClient(on_event=lambda e: None)
    wire = SETTINGS.to_wire() | {"proxy_port": "x"}
    try:
        await client.start(SETTINGS)
        with pytest.raises(EngineError) as err:
            await client._request(Untyped("start", settings=wire))
        assert err.value.code == "bad_request"
        assert "proxy_port" in err.value.message
        assert TEST_ACCOUNT.password not in str(err.value)
    finally:
        await client.stop()


async def test_wrong_protocol_refused() -> None:
    client = EngineClient(
        on_event=lambda e: None,
        command=fake_engine('send({"type": "hello", "protocol": 99})\nfor _ in lines: pass\n'),
    )
    with pytest.raises(EngineError) as err:
        await client.start(SETTINGS)
    assert err.value.code == "protocol"
    assert not client.running


async def test_engine_that_dies_at_start() -> None:
    exits: list[object] = []
    client = EngineClient(
        on_event=lambda e: None,
        on_exit=lambda *a: exits.append(a),
        command=fake_engine("sys.exit(3)\n"),
    )
    with pytest.raises(EngineDiedError):
        await client.start(SETTINGS)
    assert exits == []  # start() raised: that is the report
    await client.stop()


async def test_missing_interpreter() -> None:
    client = EngineClient(on_event=lambda e: None, command=["/nonexistent/python"])
    with pytest.raises(EngineError) as err:
        await client.start(SETTINGS)
    assert err.value.code == "engine_died"


async def test_silent_engine_times_out() -> None:
    client = EngineClient(
        on_event=lambda e: None, command=fake_engine("time.sleep(30)\n"), hello_timeout=0.5
    )
    started = time.monotonic()
    with pytest.raises(EngineError) as err:
        await client.start(SETTINGS)
    assert err.value.code == "timeout"
    assert time.monotonic() - started < 5
    assert client.pid is not None


async def test_reply_timeout_and_stop_of_a_deaf_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "STOP_TIMEOUT", 0.5)
    client = EngineClient(
        on_event=lambda e: None,
        command=fake_engine(ANSWER_ALL.replace("break", "time.sleep(30)")),
        reply_timeout=0.3,
        ping_interval=0,
    )
    await client.start(SETTINGS)
    with pytest.raises(EngineError) as err:
        await client.dial("0201234567")
    assert err.value.code == "timeout"
    started = time.monotonic()
    await client.stop()  # the engine ignores stop: killed
    assert time.monotonic() - started < 3
    assert not client.running


async def test_events_reach_on_event_and_bad_lines_are_skipped() -> None:
    got: list[object] = []
    exits: list[tuple[int | None, str]] = []
    body = HELLO + textwrap.dedent(
        """
        cmd = next(lines)
        send({"type": "reply", "id": cmd["id"], "ok": True, "result": {}})
        print("not json"); sys.stdout.flush()
        send({"type": "nonsense"})
        send({"type": "registration", "state": "registered", "code": 200, "time": 1.0})
        send({"type": "error", "code": "x", "message": "y"})
        time.sleep(0.3)
        sys.exit(5)
        """
    )
    client = EngineClient(
        on_event=got.append, on_exit=lambda rc, r: exits.append((rc, r)), command=fake_engine(body)
    )
    await client.start(SETTINGS)
    for _ in range(100):
        if exits:
            break
        await asyncio.sleep(0.02)
    assert isinstance(got[0], RegistrationEvent)
    assert got[0].state == RegState.REGISTERED
    assert len(got) == 2
    assert exits[0][0] == 5
    await client.stop()
    assert len(exits) == 1


async def test_probe_login_unreachable_on_timeout() -> None:
    started = time.monotonic()
    outcome = await probe_login(SETTINGS, timeout=1.0)
    assert outcome.state == RegState.UNREACHABLE
    assert time.monotonic() - started < 4


async def _wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def started_fake(
    body: str, **options: Any
) -> tuple[EngineClient, list[tuple[int | None, str]]]:
    """A client started on fake_engine(body), and the list its on_exit reports go to."""
    exits: list[tuple[int | None, str]] = []
    client = EngineClient(
        on_event=lambda e: None,
        on_exit=lambda rc, r: exits.append((rc, r)),
        command=fake_engine(body),
        **options,
    )
    await client.start(SETTINGS)
    return client, exits


ANSWER_START = HELLO + 'cmd = next(lines)\nsend({"type": "reply", "id": cmd["id"], "ok": True})\n'


async def test_over_long_output_line_is_a_death(caplog: pytest.LogCaptureFixture) -> None:
    """A line over the protocol's limit cannot be a message: the engine is reported dead.

    The stderr copy of it (also over-long) is skipped without stopping the stderr reader.
    """
    body = ANSWER_START + textwrap.dedent(
        """
        sys.stderr.write("e" * (1 << 21) + "\\nafter the long one\\n"); sys.stderr.flush()
        time.sleep(0.2)
        sys.stdout.write("x" * (1 << 21)); sys.stdout.flush()
        time.sleep(30)
        """
    )
    caplog.set_level(logging.DEBUG, logger="custom_components.kpn_voip.kpn_line.client")
    client, exits = await started_fake(body, ping_interval=0.2)
    try:
        await _wait_for(lambda: exits)
        assert exits == [(-signal.SIGKILL, "the engine sent an over-long line")]
        assert "engine: after the long one" in caplog.text
        await asyncio.sleep(0.3)  # the pinger wakes up to a dead engine and just ends
        assert not client.running
    finally:
        await client.stop()
    assert len(exits) == 1


async def test_engine_that_closes_its_output_but_lives_is_killed() -> None:
    """stdout closed while the process goes on: reported after ~1 s, and killed."""
    client, exits = await started_fake(
        ANSWER_START + "os.close(1); time.sleep(30)\n", ping_interval=0
    )
    try:
        await _wait_for(lambda: exits)
        assert exits == [(-signal.SIGKILL, "the engine closed its output")]
        await expect_error(client.ping(), "engine_died")
    finally:
        await client.stop()


async def test_engine_that_stops_reading_commands_is_a_death() -> None:
    """A command to an engine that closed its input: engine_died at once, reported, killed."""
    client, exits = await started_fake(
        ANSWER_START + "os.close(0); time.sleep(30)\n", ping_interval=0
    )
    try:
        await asyncio.sleep(0.2)
        await expect_error(client.ping(), "engine_died")
        assert exits == [(-signal.SIGKILL, "the engine does not read its commands")]
        assert not client.running
    finally:
        started = time.monotonic()
        await client.stop()
        assert time.monotonic() - started < 1.0


async def test_engine_dying_during_a_ping_is_a_death_not_a_hang() -> None:
    """The engine exits on a ping: on_exit names the closed output, not a missed ping."""
    client, exits = await started_fake(
        ANSWER_START + "next(lines); sys.exit(4)\n", ping_interval=0.1
    )
    try:
        await _wait_for(lambda: exits)
        assert exits == [(4, "the engine closed its output")]
    finally:
        await client.stop()


async def test_engine_dying_right_after_start_is_reported_once() -> None:
    client, exits = await started_fake(ANSWER_START + "sys.exit(6)\n")
    await _wait_for(lambda: exits)
    await client.stop()
    assert exits == [(6, "the engine closed its output")]


async def test_failing_handlers_and_stray_messages_are_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """on_event/on_exit that raise are logged; a second hello and unknown reply ids ignored."""
    body = ANSWER_START + textwrap.dedent(
        """
        send({"type": "hello", "protocol": 3})
        send({"type": "reply", "id": 999, "ok": True, "result": {}})
        send({"type": "reply", "id": cmd["id"], "ok": True, "result": {}})
        send({"type": "error", "code": "x", "message": "y"})
        cmd = next(lines)
        send({"type": "reply", "id": cmd["id"], "ok": True, "result": {}})
        time.sleep(0.1)
        sys.exit(0)
        """
    )

    def boom(*args: object) -> None:
        raise RuntimeError("handler bug")

    client = EngineClient(on_event=boom, on_exit=boom, command=fake_engine(body), ping_interval=0)
    await client.start(SETTINGS)
    try:
        await client.ping()
        await _wait_for(lambda: not client.running)
        await _wait_for(lambda: "exit handler" in caplog.text)
        assert "error in the line engine's event handler" in caplog.text
    finally:
        await client.stop()


async def test_commands_during_stop_fail_at_once() -> None:
    client = EngineClient(on_event=lambda e: None, command=fake_engine(ANSWER_ALL))
    await client.start(SETTINGS)
    stopping = asyncio.create_task(client.stop())
    await asyncio.sleep(0)
    err = await expect_error(client.ping(), "engine_died")
    assert err.message == "the engine was stopped"
    await stopping
    await client.stop()  # already stopped: nothing to do


@pytest.mark.parametrize(
    ("error", "state"), [("locked_out", RegState.LOCKED_OUT), ("bad_request", None)]
)
async def test_probe_login_start_refused(error: str, state: RegState | None) -> None:
    """K8: an engine refusing `start` as locked_out is a locked_out outcome; other errors raise."""
    body = HELLO + textwrap.dedent(
        f"""
        for cmd in lines:
            if cmd["type"] == "stop":
                send({{"type": "reply", "id": cmd["id"], "ok": True}})
                break
            send({{"type": "reply", "id": cmd["id"], "ok": False,
                  "error": {{"code": "{error}", "message": "refused"}}}})
        """
    )
    if state is None:
        await expect_error(probe_login(SETTINGS, command=fake_engine(body)), error)
    else:
        outcome = await probe_login(SETTINGS, command=fake_engine(body))
        assert (outcome.state, outcome.reason) == (state, "refused")


async def test_probe_login_engine_dies() -> None:
    """An engine that dies after accepting `start` makes the probe fail as engine_died."""
    body = ANSWER_START + "time.sleep(0.2); sys.exit(1)\n"
    await expect_error(probe_login(SETTINGS, command=fake_engine(body)), "engine_died")


async def test_stop_of_an_engine_that_does_not_read_is_quick() -> None:
    """`stop` cannot even be written: no waiting for an answer, the engine is killed."""
    client, exits = await started_fake(ANSWER_START + "os.close(0); time.sleep(30)\n")
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await client.stop()
    assert time.monotonic() - started < 1.0
    assert not client.running
    assert exits == []  # a stop, not a death


async def test_stop_of_an_engine_that_never_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """No reply to `stop` within STOP_TIMEOUT: killed, and stop() returns."""
    monkeypatch.setattr(client_module, "STOP_TIMEOUT", 0.5)
    client, _ = await started_fake(ANSWER_START + "for _ in lines: pass\ntime.sleep(30)\n")
    started = time.monotonic()
    await client.stop()
    assert 0.4 < time.monotonic() - started < 3
    assert client._proc is not None
    assert client._proc.returncode == -signal.SIGKILL
