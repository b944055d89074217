"""scripts/develop's small print: the banner's next command names a non-default SIP
port, and --config is made absolute where the user is and, with a root file system
(which shares only the checkout), refused outside the checkout."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess

import pytest

from kpn_devtools.develop import DEFAULT_SIP_PORT, next_call_command
from kpn_devtools.sipp import main as call_main

ROOT = Path(__file__).resolve().parents[2]


def test_next_command_names_a_port_that_is_not_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`KPN_SIP_PORT=5080 scripts/develop` printed `next: scripts/call ...` without the
    port, which rang 5070 from another terminal; the command printed parses to the port."""
    assert next_call_command(DEFAULT_SIP_PORT) == "scripts/call +31612345678 'Jan'"
    assert next_call_command(5080) == "scripts/call --port 5080 +31612345678 'Jan'"
    seen: list[int] = []

    class Stop(Exception):
        pass

    def fake_kamailio(*args: object, port: int, **kwargs: object) -> None:
        seen.append(port)
        raise Stop

    monkeypatch.delenv("KPN_SIP_PORT", raising=False)
    monkeypatch.setattr("kpn_devtools.sipp.Kamailio", fake_kamailio)
    with pytest.raises(Stop):
        call_main(["--port", "5080", "+31612345678", "Jan"])
    assert seen == [5080]


def _develop_args(kind: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """scripts/develop's develop_args with env_kind `kind`: the arguments it passes on,
    one per line, or its error (exit code 1)."""
    script = (
        'source "$1"; shift; env_kind() { echo "$KIND"; }; develop_args "$@"; '
        'printf "%s\\n" "${DEVELOP_ARGS[@]+"${DEVELOP_ARGS[@]}"}"'
    )
    done = subprocess.run(
        ["bash", "-c", script, "_", str(ROOT / "scripts" / "develop"), *args],
        cwd=cwd,
        env={**os.environ, "KIND": kind, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout if done.returncode == 0 else f"exit {done.returncode}: {done.stderr}"


def test_config_is_absolute_where_the_user_is(tmp_path: Path) -> None:
    """The environment runs in the checkout: a relative --config was taken from there."""
    assert _develop_args("host", "--fresh", "--config", "demo", cwd=tmp_path) == (
        f"--fresh\n--config\n{tmp_path / 'demo'}\n"
    )
    assert (
        _develop_args("host", "--config=demo", cwd=tmp_path) == f"--config\n{tmp_path / 'demo'}\n"
    )
    assert _develop_args("host", cwd=tmp_path, env={"KPN_DEVELOP_CONFIG": "x"}) == (
        f"--config\n{tmp_path / 'x'}\n"
    )
    assert _develop_args("host", "--no-line", cwd=tmp_path) == "--no-line\n"


def test_root_file_system_refuses_a_config_outside_the_checkout(tmp_path: Path) -> None:
    """With a root file system a folder outside the checkout would be made inside it and
    the banner's HA log path would not exist on this machine: a clear error instead,
    before scripts/setup runs.  Folders in the checkout pass (also via "..")."""
    refused = _develop_args("rootfs", "--config", str(tmp_path / "cfg"), cwd=tmp_path)
    assert refused.startswith("exit 1: ERROR: --config ")
    assert "outside the checkout" in refused
    assert "root file system" in refused
    inside = ROOT / ".develop" / "other"
    assert _develop_args("rootfs", "--config", ".develop/x/../other", cwd=ROOT) == (
        f"--config\n{inside}\n"
    )
    assert _develop_args("rootfs", "--config", str(ROOT / ".." / "elsewhere"), cwd=ROOT).startswith(
        "exit 1: ERROR: --config "
    )
