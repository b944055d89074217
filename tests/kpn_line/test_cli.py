"""Tests for kpn_line.cli: arguments, password handling (K9), the K8 warning, and a
real run against the KPN stand-in (Kamailio) and a SIPp callee."""

from __future__ import annotations

from collections.abc import Callable, Iterator
import contextlib
import io
import json
import os
from pathlib import Path
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from custom_components.kpn_voip.kpn_line import cli
from custom_components.kpn_voip.kpn_line.profile import K2_PROXY_HOST, K2_PROXY_PORT
from custom_components.kpn_voip.kpn_line.settings import LineSettings

PACKAGE_ROOT = Path(cli.__file__).resolve().parents[1]  # custom_components/kpn_voip
SECRET = "cli-s3cret-password"
LINE_ARGS = ["--number", "020 123 4567", "--username", "12345678"]
LOCAL = ["--proxy", "127.0.0.1:5070"]


class Tty(io.StringIO):
    """A terminal stand-in for the confirmation prompt."""

    def isatty(self) -> bool:
        return True


def no_prompt(text: str) -> str:
    raise AssertionError("the password must not be asked for here")


def run_main(
    argv: list[str],
    *,
    environ: dict[str, str] | None = None,
    stdin: io.StringIO | None = None,
    prompt: Callable[[str], str] = no_prompt,
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        argv,
        environ={} if environ is None else environ,
        stdin=stdin or io.StringIO(),
        stdout=out,
        stderr=err,
        prompt=prompt,
    )
    return code, out.getvalue(), err.getvalue()


# -- arguments ---------------------------------------------------------------------


def test_parser_defaults() -> None:
    """KPN's proxy is the default; nothing is dialled by default."""
    args = cli.build_parser().parse_args(LINE_ARGS)
    assert args.proxy == K2_PROXY_HOST
    assert args.dial is None
    assert args.duration is None
    assert args.hangup_after is None
    assert args.hide_caller_id is False
    assert args.yes is False
    assert args.local_port == 0
    assert args.engine_python is None


def test_parser_all_options() -> None:
    """Every option parses into its field."""
    args = cli.build_parser().parse_args(
        [
            *LINE_ARGS,
            "--display-name",
            "Thuis",
            "--proxy",
            "127.0.0.1:5070",
            "--domain",
            "example.org",
            "--local-port",
            "5099",
            "--dial",
            "06-12345678",
            "--hide-caller-id",
            "--hangup-after",
            "2.5",
            "--duration",
            "10",
            "--engine-python",
            "python3",
            "--yes",
        ]
    )
    assert (args.display_name, args.domain, args.local_port) == ("Thuis", "example.org", 5099)
    assert (args.dial, args.hide_caller_id, args.hangup_after) == ("06-12345678", True, 2.5)
    assert (args.duration, args.engine_python, args.yes) == (10.0, "python3", True)


@pytest.mark.parametrize(
    "extra",
    [
        ["--password", SECRET],
        [f"--password={SECRET}"],
        ["--pass", SECRET],  # no abbreviation of a password option either
        ["--duration", "0"],
        ["--duration", "-1"],
        ["--duration", "soon"],
        ["--duration", "inf"],
        ["--hangup-after", "nan"],
        ["--local-port", "x"],
    ],
)
def test_bad_arguments_exit_2(extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """K9: there is no password option; bad values are usage errors."""
    with pytest.raises(SystemExit) as caught:
        cli.build_parser().parse_args([*LINE_ARGS, *extra])
    assert caught.value.code == 2
    assert "--password" not in cli.build_parser().format_help()


@pytest.mark.parametrize("missing", ["--number", "--username"])
def test_number_and_username_are_required(missing: str) -> None:
    """Both identify the line."""
    argv = list(LINE_ARGS)
    del argv[argv.index(missing) : argv.index(missing) + 2]
    with pytest.raises(SystemExit) as caught:
        cli.build_parser().parse_args(argv)
    assert caught.value.code == 2


@pytest.mark.parametrize("extra", [["--hide-caller-id"], ["--hangup-after", "3"]])
def test_call_options_need_dial(extra: list[str]) -> None:
    """--hide-caller-id / --hangup-after without --dial is a usage error."""
    with pytest.raises(SystemExit) as caught:
        run_main([*LINE_ARGS, *LOCAL, *extra])
    assert caught.value.code == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("voip1-ext.kpn.net", ("voip1-ext.kpn.net", K2_PROXY_PORT)),
        ("127.0.0.1:5070", ("127.0.0.1", 5070)),
        (" localhost:5062 ", ("localhost", 5062)),
        ("[::1]:5070", ("::1", 5070)),
        ("[::1]", ("::1", K2_PROXY_PORT)),
        ("::1", ("::1", K2_PROXY_PORT)),
        ("2001:db8::5", ("2001:db8::5", K2_PROXY_PORT)),
        ("host:", ("host", K2_PROXY_PORT)),
    ],
)
def test_parse_proxy(text: str, expected: tuple[str, int]) -> None:
    """HOST[:PORT], with IPv6 in brackets."""
    assert cli.parse_proxy(text) == expected


@pytest.mark.parametrize("text", ["", ":5060", "[::1", "[::1]5060", "[]:5060", "h:x", "h:\uff15"])
def test_parse_proxy_errors(text: str) -> None:
    """Malformed proxies are usage errors."""
    with pytest.raises(cli.UsageError, match=r"^--proxy: "):
        cli.parse_proxy(text)


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        (K2_PROXY_HOST, False),
        ("10.0.0.1", False),
        ("192.0.2.1", False),
        ("example.org", False),
    ],
)
def test_is_local(host: str, local: bool) -> None:
    """Only this machine counts as local (no K8 warning)."""
    assert cli.is_local(host) is local


def test_settings_from_args() -> None:
    """Arguments become normalised LineSettings (K3, K4)."""
    args = cli.build_parser().parse_args(
        [*LINE_ARGS, "--proxy", "[::1]:5071", "--display-name", " Home ", "--local-port", "5090"]
    )
    settings = cli.settings_from_args(args, SECRET)
    assert settings == LineSettings(
        number="+31201234567",
        username="12345678@ims.imscore.net",
        password=SECRET,
        display_name="Home",
        proxy_host="::1",
        proxy_port=5071,
        local_port=5090,
    )


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (["--number", "abc"], "number"),
        (["--number", "06 12345678"], "number"),
        (["--username", "a b"], "username"),
        (["--username", "1@example.org"], "username"),
        (["--proxy", "127.0.0.1:70000"], "proxy_port"),
        (["--proxy", "bad host"], "proxy_host"),
        (["--local-port", "-1"], "local_port"),
        (["--display-name", 'a"b'], "display_name"),
    ],
)
def test_bad_settings_exit_2_before_the_password_is_asked(extra: list[str], field: str) -> None:
    """Everything but the password is checked first; errors name the field."""
    code, out, err = run_main([*LINE_ARGS, *LOCAL, *extra])
    assert code == cli.EXIT_USAGE
    assert out == ""
    assert err.startswith(f"error: {field}: ")


@pytest.mark.parametrize("dial", ["", "abc", "06-1234-567x", "sip:+31612345678@host"])
def test_bad_dial_number_exits_2(dial: str) -> None:
    """K25: a number that cannot be dialled is refused before anything starts."""
    code, out, err = run_main([*LINE_ARGS, *LOCAL, "--dial", dial])
    assert code == cli.EXIT_USAGE
    assert err.startswith("error: ")
    assert out == ""


# -- password (K9) -------------------------------------------------------------------


def test_password_from_environment() -> None:
    """KPN_VOIP_PASSWORD wins; nothing is asked."""
    assert cli.read_password({cli.PASSWORD_ENV: SECRET}, no_prompt) == SECRET


def test_password_prompt_when_environment_is_empty() -> None:
    """Without (or with an empty) variable, the prompt asks."""
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return SECRET

    assert cli.read_password({}, prompt) == SECRET
    assert cli.read_password({cli.PASSWORD_ENV: ""}, prompt) == SECRET
    assert asked == ["SIP password: ", "SIP password: "]


def test_password_prompt_uses_getpass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default prompt does not echo (getpass), and writes to stderr."""
    calls: list[tuple[str, Any]] = []

    def fake_getpass(prompt: str, stream: Any = None) -> str:
        calls.append((prompt, stream))
        return SECRET

    monkeypatch.setattr(cli.getpass, "getpass", fake_getpass)
    monkeypatch.delenv(cli.PASSWORD_ENV, raising=False)
    assert cli.read_password() == SECRET
    assert calls == [("SIP password: ", sys.stderr)]
    monkeypatch.setenv(cli.PASSWORD_ENV, "from-env")
    assert cli.read_password() == "from-env"
    assert len(calls) == 1


@pytest.mark.parametrize("answer", ["", EOFError])
def test_no_password_is_a_usage_error(answer: str | type[EOFError]) -> None:
    """An empty answer or end of input stops with a clear message."""

    def prompt(text: str) -> str:
        if isinstance(answer, str):
            return answer
        raise answer

    with pytest.raises(cli.UsageError, match=cli.PASSWORD_ENV):
        cli.read_password({}, prompt)
    code, out, err = run_main([*LINE_ARGS, *LOCAL], prompt=prompt)
    assert code == cli.EXIT_USAGE
    assert out == ""
    assert "no password" in err


def test_ctrl_c_at_the_password_prompt_exits_0() -> None:
    """Ctrl-C while being asked is a clean stop."""

    def prompt(text: str) -> str:
        raise KeyboardInterrupt

    code, out, _ = run_main([*LINE_ARGS, *LOCAL], prompt=prompt)
    assert code == cli.EXIT_OK
    assert out == ""


# -- K8 warning ------------------------------------------------------------------------


def test_local_proxy_needs_no_confirmation() -> None:
    """The stand-in on loopback cannot lock a real line."""
    err = io.StringIO()
    assert cli.confirm_remote_login("127.0.0.1", assume_yes=False, stdin=Tty(), stderr=err)
    assert err.getvalue() == ""


def test_remote_proxy_warns_even_with_yes() -> None:
    """K8: --yes skips the question, not the warning."""
    err = io.StringIO()
    assert cli.confirm_remote_login(K2_PROXY_HOST, assume_yes=True, stdin=Tty(), stderr=err)
    assert "15 minutes" in err.getvalue()
    assert K2_PROXY_HOST in err.getvalue()


@pytest.mark.parametrize(
    ("answer", "ok"),
    [("y\n", True), ("YES\n", True), ("ja\n", True), ("n\n", False), ("\n", False), ("", False)],
)
def test_remote_proxy_asks(answer: str, ok: bool) -> None:
    """K8: without --yes the user must confirm on the terminal."""
    err = io.StringIO()
    assert (
        cli.confirm_remote_login("10.0.0.1", assume_yes=False, stdin=Tty(answer), stderr=err) is ok
    )
    assert "Go on? [y/N]" in err.getvalue()


def test_remote_proxy_without_terminal_refuses() -> None:
    """No terminal and no --yes: nothing is sent."""
    err = io.StringIO()
    assert not cli.confirm_remote_login(
        K2_PROXY_HOST, assume_yes=False, stdin=io.StringIO("y\n"), stderr=err
    )
    assert "--yes" in err.getvalue()


def test_not_confirmed_exits_4_without_asking_the_password() -> None:
    """The warning comes before the password prompt; "no" ends it there."""
    code, out, err = run_main(LINE_ARGS, stdin=Tty("n\n"), environ={cli.PASSWORD_ENV: SECRET})
    assert code == cli.EXIT_NOT_CONFIRMED
    assert out == ""
    assert "15 minutes" in err
    assert SECRET not in err


# -- against the real engine, the KPN stand-in and SIPp -------------------------------
# (pytest socket blocking is lifted by the kamailio fixture's socket_enabled)


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def _cli_env(password: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPN_VOIP")}
    env["PYTHONPATH"] = str(PACKAGE_ROOT)
    env[cli.PASSWORD_ENV] = password
    return env


@pytest.fixture
def engine_ready() -> None:
    """The end-to-end tests need the engine and pjsua2."""
    pytest.importorskip("pjsua2")
    pytest.importorskip("custom_components.kpn_voip.kpn_line.engine")


@pytest.mark.peers
def test_register_dial_and_call_end(
    engine_ready: None, kamailio_factory: Callable[..., Any], sipp: Any
) -> None:
    """K25/K26 end to end: registers, dials *31*+number via the stand-in, the callee
    rings and nobody answers, so --hangup-after (a ringing limit) cancels the call after
    1 s, and the tool exits 0."""
    from kpn_devtools.kamailio import TEST_ACCOUNT

    uas = sipp.uas(answer_after=None)  # rings until CANCEL
    kam = kamailio_factory(forward_to=uas.address)
    code, out, err = run_main(
        [
            "--number",
            "020-123 4567",
            "--username",
            TEST_ACCOUNT.username.partition("@")[0],
            "--proxy",
            f"{kam.host}:{kam.port}",
            "--dial",
            "06-1234 5678",
            "--hide-caller-id",
            "--hangup-after",
            "1",
            "--duration",
            "30",
        ],
        environ={cli.PASSWORD_ENV: TEST_ACCOUNT.password},
    )
    assert code == cli.EXIT_OK, (out, err)
    events = _lines(out)
    assert TEST_ACCOUNT.password not in out + err
    states = [e["state"] for e in events if e["type"] == "registration"]
    assert "registered" in states
    dials = [e for e in events if e["type"] == "dial"]
    assert len(dials) == 1
    assert dials[0]["number"] == "0612345678"
    call_id = dials[0]["call_id"]
    call_states = [e["state"] for e in events if e["type"] == "call" and e["call_id"] == call_id]
    assert "alerting" in call_states
    assert "answered" not in call_states
    assert call_states[-1] == "ended"
    [ended] = [e for e in events if e["type"] == "call" and e["state"] == "ended"]
    assert (ended["code"], ended["reason"]) == (487, "No answer from user (user alerted)")
    assert events[-1] == {"type": "exit", "code": 0, "reason": "call_ended"}
    invites = uas.invites()
    assert invites
    request_line = invites[0].splitlines()[0]
    assert request_line.startswith("INVITE sip:*31*0612345678@")  # K26, K25


@pytest.mark.peers
def test_wrong_password_exits_1_and_never_retries(engine_ready: None, kamailio: Any) -> None:
    """K8: auth_failed ends the tool with exit code 1 after one credentialed REGISTER."""
    from kpn_devtools.kamailio import TEST_ACCOUNT

    wrong = "wrong-" + SECRET
    code, out, err = run_main(
        [*LINE_ARGS, "--proxy", f"{kamailio.host}:{kamailio.port}", "--duration", "20"],
        environ={cli.PASSWORD_ENV: wrong},
    )
    assert code == cli.EXIT_REGISTRATION_FAILED, (out, err)
    events = _lines(out)
    assert events[-1]["type"] == "exit"
    assert events[-1]["reason"] in ("auth_failed", "locked_out")
    assert wrong not in out + err
    attempts = [a for a in kamailio.register_attempts(TEST_ACCOUNT.username) if a.with_credentials]
    assert len(attempts) == 1


@pytest.mark.peers
def test_duration_ends_a_registered_line(engine_ready: None, kamailio: Any) -> None:
    """--duration: registered, then exit 0 once the time is up; unregistered afterwards."""
    from kpn_devtools.kamailio import TEST_ACCOUNT

    # The time counts from the start of the command, engine start and registration
    # included: under 2 s on an idle machine, more on a busy one (it was 2 s here, and
    # a run beside other test workers ended before the line had registered).
    duration = 5
    started = time.monotonic()
    code, out, err = run_main(
        [*LINE_ARGS, "--proxy", f"{kamailio.host}:{kamailio.port}", "--duration", str(duration)],
        environ={cli.PASSWORD_ENV: TEST_ACCOUNT.password},
    )
    assert code == cli.EXIT_OK, (out, err)
    assert time.monotonic() - started >= duration
    events = _lines(out)
    assert any(e.get("state") == "registered" for e in events)
    assert events[-1] == {"type": "exit", "code": 0, "reason": "duration"}
    kamailio.wait_unregistered(TEST_ACCOUNT.number)


def test_engine_that_cannot_start_exits_3() -> None:
    """An interpreter that is no Python (no engine) is an engine failure, not a hang."""
    false = shutil.which("false")
    assert false is not None
    code, out, err = run_main(
        [*LINE_ARGS, *LOCAL, "--engine-python", false, "--duration", "20"],
        environ={cli.PASSWORD_ENV: SECRET},
    )
    assert code == cli.EXIT_ENGINE, (out, err)
    events = _lines(out)
    assert events[-1]["type"] == "exit"
    assert events[-1]["code"] == cli.EXIT_ENGINE
    assert any(e["type"] == "error" for e in events)
    assert SECRET not in out + err


def test_engine_that_cannot_be_run_exits_3(tmp_path: Path) -> None:
    """--engine-python naming no program: the start error is reported, exit 3."""
    code, out, err = run_main(
        [*LINE_ARGS, *LOCAL, "--engine-python", str(tmp_path / "no-python")],
        environ={cli.PASSWORD_ENV: SECRET},
    )
    assert code == cli.EXIT_ENGINE, (out, err)
    events = _lines(out)
    assert events[0]["type"] == "error"
    assert events[0]["code"] == "engine_died"
    assert events[-1] == {"type": "exit", "code": cli.EXIT_ENGINE, "reason": "engine_died"}
    assert SECRET not in out + err


def _engine_children() -> list[int]:
    """Process ids of this process's kpn_line.engine children."""
    pids: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        children = (task / "children").read_text().split()
        for pid in children:
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"kpn_line.engine" in cmdline:
                    pids.append(int(pid))
    return pids


@pytest.mark.peers
def test_engine_dying_exits_3(engine_ready: None, kamailio: Any) -> None:
    """An engine that dies under the tool (here: SIGKILL once registered) ends it with
    exit code 3 and an engine_died error, instead of a hang."""
    from kpn_devtools.kamailio import TEST_ACCOUNT

    killed: list[int] = []

    def killer() -> None:
        kamailio.wait_registered(TEST_ACCOUNT.number, timeout=20)
        for pid in _engine_children():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        code, out, err = run_main(
            [*LINE_ARGS, "--proxy", f"{kamailio.host}:{kamailio.port}", "--duration", "30"],
            environ={cli.PASSWORD_ENV: TEST_ACCOUNT.password},
        )
    finally:
        thread.join(timeout=30)
    assert len(killed) == 1
    assert code == cli.EXIT_ENGINE, (out, err)
    events = _lines(out)
    assert {"type", "code"} <= set(events[-2])
    assert events[-2]["type"] == "error"
    assert events[-2]["code"] == "engine_died"
    assert events[-1] == {"type": "exit", "code": cli.EXIT_ENGINE, "reason": "engine_died"}
    assert _engine_children() == []


def test_stop_while_the_engine_starts_is_clean(engine_ready: None) -> None:
    """A stop (here --duration) before the engine has even said hello: exit 0 at once,
    and no engine process is left behind."""
    started = time.monotonic()
    code, out, err = run_main(
        [*LINE_ARGS, *LOCAL, "--duration", "0.01"], environ={cli.PASSWORD_ENV: SECRET}
    )
    assert code == cli.EXIT_OK, (out, err)
    assert _lines(out)[-1] == {"type": "exit", "code": 0, "reason": "duration"}
    assert time.monotonic() - started < 15
    assert _engine_children() == []


def test_ctrl_c_before_the_signal_handlers_exits_0(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in the instant before the event loop handles SIGINT is still a clean 0."""

    def interrupted(coro: Any) -> int:
        coro.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.asyncio, "run", interrupted)
    code, out, _ = run_main([*LINE_ARGS, *LOCAL], environ={cli.PASSWORD_ENV: SECRET})
    assert code == cli.EXIT_OK
    assert out == ""


@pytest.fixture
def cli_process(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """`python -m kpn_line.cli` as a child in its own process group; killed afterwards.

    stderr goes to tmp_path/stderr.txt (a pipe nobody reads could fill up).
    """
    procs: list[subprocess.Popen[str]] = []

    def start(argv: list[str], password: str) -> subprocess.Popen[str]:
        with (tmp_path / "stderr.txt").open("w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "kpn_line.cli", *argv],
                env=_cli_env(password),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                start_new_session=True,
            )
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if proc.stdout:
                proc.stdout.close()


@pytest.mark.peers
def test_ctrl_c_stops_cleanly_with_exit_0(
    engine_ready: None,
    kamailio: Any,
    cli_process: Callable[..., subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    """SIGINT (Ctrl-C) to the whole process group, as a terminal sends it: exit 0,
    the line is unregistered, and the password never shows."""
    from kpn_devtools.kamailio import TEST_ACCOUNT

    proc = cli_process(
        [*LINE_ARGS, "--proxy", f"{kamailio.host}:{kamailio.port}"], TEST_ACCOUNT.password
    )
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or ()])
    reader.start()
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while not any(e.get("state") == "registered" for e in seen):
        try:
            seen.append(json.loads(lines.get(timeout=max(0.01, deadline - time.monotonic()))))
        except queue.Empty:
            pytest.fail(f"not registered in time: {seen}")
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=30)
    reader.join(timeout=5)
    err = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 0, err
    while not lines.empty():
        seen.append(json.loads(lines.get()))
    assert seen[-1] == {"type": "exit", "code": 0, "reason": "SIGINT"}
    assert TEST_ACCOUNT.password not in json.dumps(seen) + err
    kamailio.wait_unregistered(TEST_ACCOUNT.number)
