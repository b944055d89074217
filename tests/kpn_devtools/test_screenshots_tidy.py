"""scripts/screenshots removes its temporary folder (kpn-screenshots-*) after a run.

It used to remove only the config dir inside it: every run left a folder with
the sounds it made in the temp dir.  After a failure the browser's picture is
what the user is told to look at, so that run's folder stays (without the
config dir, as before); --keep keeps all of it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kpn_devtools.screenshots import FAILURE_PICTURE, tidy_work


def _work(tmp_path: Path, *, failed: bool) -> Path:
    """A run's folder as main leaves it: the config dir, the sounds, maybe the picture."""
    work = tmp_path / "kpn-screenshots-x"
    (work / "config" / ".storage").mkdir(parents=True)
    (work / "config" / "home-assistant.log").write_text("log")
    (work / "caller.wav").write_bytes(b"RIFF")
    if failed:
        (work / FAILURE_PICTURE).write_bytes(b"\x89PNG")
    return work


def test_a_good_run_leaves_nothing(tmp_path: Path) -> None:
    work = _work(tmp_path, failed=False)
    tidy_work(work, keep=False)
    assert not work.exists()


def test_a_failed_run_keeps_what_the_browser_showed(tmp_path: Path) -> None:
    work = _work(tmp_path, failed=True)
    tidy_work(work, keep=False)
    assert sorted(p.name for p in work.iterdir()) == ["caller.wav", FAILURE_PICTURE]


@pytest.mark.parametrize("failed", [False, True])
def test_keep_keeps_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], failed: bool
) -> None:
    work = _work(tmp_path, failed=failed)
    tidy_work(work, keep=True)
    assert (work / "config" / "home-assistant.log").is_file()
    assert str(work) in capsys.readouterr().out
