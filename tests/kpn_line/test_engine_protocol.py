"""The engine's command channel, spoken line by line without the client.

Every malformed, unknown or ill-typed command gets exactly one clear error
reply (docs/engine-protocol.md) and the engine keeps serving; closing stdin
ends it cleanly.  The real engine process throughout.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import subprocess
import time
from typing import Any

import pytest

from custom_components.kpn_voip.kpn_line.client import PACKAGE_PARENT, default_engine_command
from custom_components.kpn_voip.kpn_line.protocol import MAX_LINE_BYTES, ErrorCode, RegState
from kpn_devtools.kamailio import TEST_ACCOUNT

from .conftest import LineFactory, expect_error, registrar_settings

pytestmark = pytest.mark.timeout(60)


class RawEngine:
    """`python -m kpn_line.engine` with pipes; replies and events read as dicts."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)
        self.proc = subprocess.Popen(
            [*default_engine_command(), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self._buf = b""
        self._ids = 100
        self.events: list[dict[str, Any]] = []  # every event read so far

    def send(self, data: bytes | dict[str, Any]) -> None:
        """One raw line (bytes are sent as they are)."""
        assert self.proc.stdin is not None
        raw = data if isinstance(data, bytes) else json.dumps(data).encode() + b"\n"
        self.proc.stdin.write(raw)
        self.proc.stdin.flush()

    def read(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next message."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no message from the engine; have {self._buf[:200]!r}"
            if select.select([fd], [], [], remaining)[0]:
                chunk = os.read(fd, 65536)
                assert chunk, "the engine closed its output"
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        if message["type"] != "reply":
            self.events.append(message)
        return message

    def registered(self) -> None:
        """Until the `registered` event (already read, or still to come)."""
        while not any(e.get("state") == RegState.REGISTERED for e in self.events):
            self.read()

    def reply(self) -> dict[str, Any]:
        """The next reply (events before it are skipped)."""
        while (message := self.read())["type"] != "reply":
            pass
        return message

    def error(self, command: bytes | dict[str, Any]) -> tuple[Any, str, str]:
        """Send `command`; its reply must be an error: (id, code, message)."""
        self.send(command)
        reply = self.reply()
        assert reply["ok"] is False, reply
        return reply["id"], reply["error"]["code"], reply["error"]["message"]

    def ok(self, kind: str, **fields: Any) -> dict[str, Any]:
        """A command that must succeed; its result."""
        self._ids += 1
        self.send({"type": kind, "id": self._ids, **fields})
        reply = self.reply()
        assert reply == {"type": "reply", "id": self._ids, "ok": True, "result": reply["result"]}
        result: dict[str, Any] = reply["result"]
        return result

    def close(self, timeout: float = 10.0) -> int:
        """Close stdin (the client is gone): the engine must end by itself."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        """Make sure the process is gone."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def raw_engine() -> Any:
    """Start RawEngines (`raw_engine(*args)`); every one is killed afterwards."""
    engines: list[RawEngine] = []

    def factory(*args: str) -> RawEngine:
        engine = RawEngine(*args)
        engines.append(engine)
        hello = engine.read(20)
        assert hello["type"] == "hello"
        return engine

    try:
        yield factory
    finally:
        for engine in engines:
            if engine.proc.stdin is not None and not engine.proc.stdin.closed:
                engine.close()  # a clean end (a kill would lose the child's coverage data)
            engine.kill()


def test_malformed_lines_get_an_id_less_error_reply(raw_engine: Any) -> None:
    """Not JSON, not an object, not UTF-8, over-long: bad_request with id null; blank skipped."""
    engine = raw_engine()
    time.sleep(0.6)  # idle before `start`: the command wait times out and goes on
    for line in (b"not json\n", b"[1, 2]\n", b"\xff\xfe\n", b'"text"\n'):
        assert engine.error(line) == (None, ErrorCode.BAD_REQUEST, "not a JSON object")
    engine.send(b"\n   \n")  # blank lines: no reply at all
    assert engine.ok("ping") == {}
    # over-long: in one write with its newline, and spread over many reads without one
    too_long = b'{"type": "ping", "id": 1, "x": "' + b"a" * MAX_LINE_BYTES + b'"}'
    assert engine.error(too_long + b"\n") == (None, ErrorCode.BAD_REQUEST, "line too long")
    engine.send(too_long)
    engine.send(b"a" * MAX_LINE_BYTES)
    assert engine.error(b"tail of it\n") == (None, ErrorCode.BAD_REQUEST, "line too long")
    assert engine.ok("ping") == {}  # the line after the skipped one is read normally
    assert engine.close() == 0  # stdin closed before any `start`: a clean exit


@pytest.mark.parametrize(
    ("command", "reply_id", "code", "words"),
    [
        ({"type": "fly", "id": 1}, 1, ErrorCode.BAD_REQUEST, "unknown command 'fly'"),
        ({"id": 2}, 2, ErrorCode.BAD_REQUEST, "unknown command"),
        ({"type": 7, "id": 3}, 3, ErrorCode.BAD_REQUEST, "unknown command"),
        ({"type": "ping"}, None, ErrorCode.BAD_REQUEST, "unknown command"),
        ({"type": "ping", "id": "4"}, "4", ErrorCode.BAD_REQUEST, "unknown command"),
        ({"type": "ping", "id": True}, True, ErrorCode.BAD_REQUEST, "unknown command"),
        ({"type": "dial", "id": 5}, 5, ErrorCode.BAD_REQUEST, "number: missing"),
        ({"type": "dial", "id": 6, "number": 612}, 6, ErrorCode.BAD_REQUEST, "number"),
        (
            {"type": "dial", "id": 7, "number": "0612345678", "hangup_after": -1},
            7,
            ErrorCode.BAD_REQUEST,
            "hangup_after",
        ),
        (
            {"type": "dial", "id": 8, "number": "0612345678", "hangup_after": "soon"},
            8,
            ErrorCode.BAD_REQUEST,
            "hangup_after",
        ),
        (
            {"type": "dial", "id": 9, "number": "0612345678", "hangup_after": True},
            9,
            ErrorCode.BAD_REQUEST,
            "hangup_after",
        ),
        ({"type": "dial", "id": 10, "number": "call me"}, 10, ErrorCode.INVALID_NUMBER, ""),
        ({"type": "dial", "id": 11, "number": "0612345678"}, 11, ErrorCode.NOT_STARTED, ""),
        ({"type": "hangup", "id": 12, "call_id": "c999"}, 12, ErrorCode.NO_SUCH_CALL, "c999"),
        ({"type": "hangup", "id": 13, "call_id": 5}, 13, ErrorCode.NO_SUCH_CALL, "5"),
        ({"type": "answer", "id": 14, "call_id": "c1"}, 14, ErrorCode.NO_SUCH_CALL, "c1"),
        ({"type": "answer", "id": 15}, 15, ErrorCode.NO_SUCH_CALL, "None"),
        ({"type": "start", "id": 16}, 16, ErrorCode.BAD_REQUEST, "settings: must be an object"),
        (
            {"type": "start", "id": 17, "settings": {"number": "+31201234567"}},
            17,
            ErrorCode.BAD_REQUEST,
            "username: missing",
        ),
        (
            {"type": "start", "id": 18, "settings": {"number": 1, "password": "p", "x": 1}},
            18,
            ErrorCode.BAD_REQUEST,
            "unknown field 'x'",
        ),
    ],
)
def test_bad_commands_get_a_clear_error_reply(
    raw_engine: Any, command: dict[str, Any], reply_id: Any, code: str, words: str
) -> None:
    """Missing fields, unknown commands, wrong types: one error reply, the engine serves on."""
    engine = raw_engine()
    got_id, got_code, message = engine.error(command)
    assert (got_id, got_code) == (reply_id, code)
    assert words in message
    assert engine.ok("ping") == {}
    assert engine.ok("hangup") == {"ended": 0}  # every call of none


def test_long_values_are_cut_in_error_messages(raw_engine: Any) -> None:
    """An error message quotes at most a short piece of what was sent."""
    engine = raw_engine()
    _, _, message = engine.error({"type": "x" * 5000, "id": 1})
    assert len(message) < 80
    _, _, message = engine.error({"type": "hangup", "id": 2, "call_id": "c" * 5000})
    assert len(message) < 60


def test_usage_errors_of_the_command_line() -> None:
    """--log-level N and --log-level=N are the only options; -h prints the usage."""
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)
    for args, code in ((["-h"], 0), (["--log-level", "x"], 2), (["--colour"], 2)):
        run = subprocess.run(
            [*default_engine_command(), *args],
            capture_output=True,
            env=env,
            timeout=30,
            check=False,
        )
        assert run.returncode == code, run.stderr
        assert b"usage: python -m kpn_line.engine" in run.stderr
        assert not run.stdout  # not even a hello


def test_log_level_option_and_start_field(kamailio, raw_engine: Any) -> None:
    """`--log-level=N` on the command line; `log_level` in `start` wins (pjsip logs at 4)."""
    engine = raw_engine("--log-level=0")
    settings = kamailio.line_settings().to_wire()
    assert engine.ok("start", settings=settings, log_level=4) == {}
    engine.registered()
    assert engine.ok("stop") == {}
    assert engine.proc.wait(10) == 0
    assert engine.proc.stderr is not None
    log = engine.proc.stderr.read().decode()
    assert "REGISTER sip:" in log  # pjsip's message log (level 4) reached stderr
    assert TEST_ACCOUNT.password not in log  # K9


def test_restart_with_another_local_port_is_refused(kamailio, raw_engine: Any) -> None:
    """`local_port` is bound once per engine: a `start` changing it is a bad request."""
    engine = raw_engine()
    assert engine.ok("start", settings=kamailio.line_settings().to_wire()) == {}
    other = kamailio.line_settings(local_port=5999).to_wire()
    _, code, message = engine.error({"type": "start", "id": 1, "settings": other})
    assert code == ErrorCode.BAD_REQUEST
    assert message == "local_port: restart the engine to change"
    assert engine.ok("ping") == {}
    engine.registered()
    assert engine.close() == 0  # stdin closed on a registered line: unregisters, exits 0
    kamailio.wait_unregistered(TEST_ACCOUNT.number, timeout=3)


async def test_dial_after_auth_failure_is_locked_out(
    kamailio_factory, line_factory: LineFactory
) -> None:
    """K8: after auth_failed no call is even tried; the line says why."""
    kam = kamailio_factory(auth_fail_code=401, lockout_seconds=0)
    line = await line_factory(kam.line_settings(password="Wrong-1"), registered=False)
    await line.wait_state(RegState.AUTH_FAILED)
    err = await expect_error(line.client.dial("0201234567"), ErrorCode.LOCKED_OUT)
    assert "K8" in err.message


async def test_dial_while_unreachable_is_not_registered(line_factory: LineFactory) -> None:
    """A started line that did not register refuses dial with not_registered."""
    line = await line_factory(registrar_settings(9), registered=False)
    await expect_error(line.client.dial("0201234567"), ErrorCode.NOT_REGISTERED)


def test_ipv6_proxy_address_is_refused_clearly(raw_engine: Any) -> None:
    """pjsua2 is built without IPv6 media: an IPv6 proxy is a bad request, not a crash."""
    engine = raw_engine()
    settings = dataclasses.replace(registrar_settings(9), proxy_host="::1").to_wire()
    _, code, message = engine.error({"type": "start", "id": 1, "settings": settings})
    assert (code, message) == (ErrorCode.BAD_REQUEST, "proxy_host: IPv6 is not supported")
    assert engine.ok("start", settings=registrar_settings(9).to_wire()) == {}  # IPv4 is fine
    assert engine.ok("ping") == {}
