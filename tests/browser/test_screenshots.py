"""The README's three jobs, end to end in a real Home Assistant (issue 11): scripts/screenshots.

kpn_devtools/screenshots.py starts the demo of scripts/develop (the KPN
stand-in, Home Assistant with the demo line, an offline TTS engine), loads the
gate intercom blueprint with a PIN and the README's answering machine and
alarm call, and plays them with real calls: a second pjsua2 phone keys in the
PIN as RFC 2833 digits (K15) and the blueprint turns the gate on; another
call nobody answers is picked up, greeted and recorded, and the recording
holds the caller's words; the notification's link opens the media browser on
the recording; the alarm call reaches the test phone and ends.  Any of that
failing raises (a timeout names what it waited for).  The pictures go to a
temporary folder here; `scripts/screenshots` writes them to docs/images/.
"""

from __future__ import annotations

from pathlib import Path
import re
import shutil
import tempfile
from typing import Any

import pytest

from kpn_devtools import screenshots

pytestmark = [
    pytest.mark.browser,
    pytest.mark.peers,
    pytest.mark.skipif(
        shutil.which("chromium") is None or shutil.which("ffmpeg") is None,
        reason="needs Debian's chromium and ffmpeg packages (scripts/setup installs them)",
    ),
]
ROOT = Path(__file__).resolve().parents[2]
PICTURES = {
    "blueprint_gate.png",
    "logbook_dtmf.png",
    "notification.png",
    "media_browser.png",
    "device_sound.png",
}


@pytest.mark.slow
def test_jobs_run_and_are_photographed(
    tmp_path: Path, socket_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Path] = []
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(*args: Any, **kwargs: Any) -> str:
        made.append(Path(real_mkdtemp(*args, **kwargs)))
        return str(made[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    assert screenshots.main(["--out", str(tmp_path)]) == 0
    # Its temporary folder (config dir, sounds) is gone after a good run.
    work = [p for p in made if p.name.startswith(screenshots.WORK_PREFIX)]
    assert len(work) == 1, made
    assert not work[0].exists()
    assert {p.name for p in tmp_path.glob("*.png")} == PICTURES
    for picture in tmp_path.glob("*.png"):
        assert 2_000 < picture.stat().st_size < 200_000, picture.name


def test_readme_shows_them() -> None:
    """Each of them is in the README, committed under docs/images/, and small."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"\(docs/images/([\w.-]+\.png)\)", readme))
    assert shown >= PICTURES
    for name in shown:
        picture = ROOT / "docs" / "images" / name
        assert picture.is_file(), name
        assert picture.stat().st_size < 200_000, name
