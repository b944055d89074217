"""The asyncio client: contract, failure detection, secrets (K9).

Real engine for the happy paths; tiny scripted stand-in engines for broken ones
(a wrong protocol, silence, a crash): the client's reaction is what is tested.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
import sys
import textwrap
import time

import pytest

from kpn_line import client as client_module
from kpn_line.client import (
    EngineClient,
    EngineDiedError,
    EngineError,
    default_engine_command,
    probe_login,
)
from kpn_line.protocol import RegistrationEvent, RegState
from kpn_line.settings import LineSettings
from tests.peers.kamailio import TEST_ACCOUNT

from .conftest import LineFactory

pytestmark = pytest.mark.timeout(60)

SETTINGS = LineSettings(
    number=TEST_ACCOUNT.number,
    username=TEST_ACCOUNT.username,
    password=TEST_ACCOUNT.password,
    proxy_host="127.0.0.1",
    proxy_port=9,  # nothing listens: the line never registers
)


def fake_engine(body: str) -> list[str]:
    """A scripted engine: `body` runs with `send(obj)` and `lines` (stdin) available."""
    prelude = textwrap.dedent(
        """
        import json, sys, time
        def send(obj):
            sys.stdout.write(json.dumps(obj) + "\\n"); sys.stdout.flush()
        lines = (json.loads(line) for line in sys.stdin)
        """
    )
    return [sys.executable, "-c", prelude + textwrap.dedent(body)]


HELLO = 'send({"type": "hello", "protocol": 1, "engine": "kpn_line"})\n'
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
    with pytest.raises(EngineError) as err:
        await line.client.dial("0201234567")
    assert err.value.code == "not_registered"
    with pytest.raises(EngineError) as err:
        await line.client.dial("")
    assert err.value.code == "invalid_number"
    assert await line.client.hangup(None) == 0
    with pytest.raises(EngineError) as err:
        await line.client._request("fly")
    assert err.value.code == "bad_request"
    with pytest.raises(EngineError) as err:
        await line.client.start(SETTINGS)  # one engine per client
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
            await client._request("start", settings=wire)
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


async def test_silent_engine_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "HELLO_TIMEOUT", 0.5)
    client = EngineClient(on_event=lambda e: None, command=fake_engine("time.sleep(30)\n"))
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
