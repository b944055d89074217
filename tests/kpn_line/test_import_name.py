"""One import name per process (issue 9 of the engine work, kpn_line/__init__.py).

The engine child and the command-line tool import the package as `kpn_line`;
Home Assistant, and so this test session, as `custom_components.kpn_voip.kpn_line`.
A second name in one process would load every module twice; it is refused.
"""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINE_PARENT = REPO / "custom_components" / "kpn_voip"

PROBE = """
import sys
# The engine's folder behind the standard library: it holds the integration's calendar.py.
sys.path.insert(0, sys.argv[1])
sys.path.append(sys.argv[2])
import {first}
try:
    import {second}
except ImportError as err:
    print(err)
else:
    print("imported twice")
"""


@pytest.mark.parametrize(
    ("first", "second", "first_name"),
    [
        ("kpn_line.protocol", "custom_components.kpn_voip.kpn_line", "kpn_line"),
        (
            "custom_components.kpn_voip.kpn_line.protocol",
            "kpn_line.numbers",
            "custom_components.kpn_voip.kpn_line",
        ),
    ],
)
def test_a_second_import_name_is_refused(first: str, second: str, first_name: str) -> None:
    """Either order: a clear ImportError that names both names."""
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            PROBE.format(first=first, second=second),
            str(REPO),
            str(ENGINE_PARENT),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=REPO.anchor,
    )
    message = result.stdout.strip()
    assert message.startswith(f"the kpn_line package is already imported as {first_name!r}")
    assert "one name per process" in message.lower()


def test_this_session_uses_the_home_assistant_name() -> None:
    """The test session runs Home Assistant: the long name, never the short one."""
    import custom_components.kpn_voip.kpn_line.protocol  # noqa: F401

    assert "custom_components.kpn_voip.kpn_line" in sys.modules
    assert "kpn_line" not in sys.modules


def test_engine_child_sees_the_standard_librarys_calendar() -> None:
    """The engine child gets the integration's folder on PYTHONPATH (client.py).

    That folder holds the calendar platform (calendar.py); once `kpn_line` is
    imported, `import calendar` must still give the standard library's module.
    """
    probe = (
        "import kpn_line.engine, calendar, email.utils, http.cookiejar; "
        "print(calendar.__file__); print(calendar.monthrange(2026, 2)[1])"
    )
    env = {"PYTHONPATH": str(ENGINE_PARENT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    where, month = done.stdout.splitlines()[-2:]
    assert not Path(where).resolve().is_relative_to(ENGINE_PARENT)
    assert month == "28"
