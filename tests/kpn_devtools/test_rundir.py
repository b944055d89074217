"""Run folders do not outlive their owner, not even a killed one (kpn_devtools/rundir.py).

The stand-in's run folders (kpn-kam-*) piled up in the temp dir: a test process
killed by a signal runs no clean-up.  The owner's lock dies with it, and the next
folder made with the same prefix sweeps the orphans; folders of live owners, and
folders without the lock file, are left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import secrets
import shutil
import subprocess
import sys
import tempfile

import pytest

from kpn_devtools import python_path
from kpn_devtools.rundir import LOCK_NAME, make_owned_dir, sweep_orphans

OWNER = """
import sys, time
from kpn_devtools.rundir import make_owned_dir
path, _ = make_owned_dir(sys.argv[1])
print(path, flush=True)
time.sleep(60)
"""


@pytest.fixture
def prefix() -> Iterator[str]:
    """A prefix of this test's own, so no other run's folders are swept; all removed after."""
    name = f"kpn-rundir-test-{secrets.token_hex(4)}-"
    yield name
    for folder in Path(tempfile.gettempdir()).glob(f"{name}*"):
        shutil.rmtree(folder, ignore_errors=True)


def _killed_owner(prefix: str) -> Path:
    """A folder whose owner process was killed by SIGKILL (no clean-up ran)."""
    env = dict(os.environ, PYTHONPATH=python_path(os.environ.get("PYTHONPATH")))
    proc = subprocess.Popen(
        [sys.executable, "-c", OWNER, prefix], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        folder = Path(proc.stdout.readline().strip())
    finally:
        proc.kill()
        proc.wait()
    assert (folder / LOCK_NAME).is_file()
    return folder


def test_folder_of_a_killed_owner_goes_with_the_next_one(prefix: str) -> None:
    """SIGKILL leaves the folder; the next folder of the prefix removes it, not itself."""
    orphan = _killed_owner(prefix)
    assert orphan.is_dir()
    mine, lock = make_owned_dir(prefix)
    try:
        assert not orphan.exists()
        assert mine.is_dir()
        assert (mine / LOCK_NAME).is_file()
        assert sorted(Path(tempfile.gettempdir()).glob(f"{prefix}*")) == [mine]
    finally:
        os.close(lock)


def test_live_owners_and_folders_without_a_lock_are_kept(prefix: str) -> None:
    """A folder whose owner lives (here: this process), and one without the lock file
    (being made, or another tool's), survive a sweep; once the owner lets go, it goes."""
    mine, lock = make_owned_dir(prefix)
    foreign = Path(tempfile.mkdtemp(prefix=prefix))
    assert sweep_orphans(prefix) == []
    assert mine.is_dir()
    assert foreign.is_dir()
    os.close(lock)  # the owner is done (or died)
    assert sweep_orphans(prefix) == [mine]
    assert not mine.exists()
    assert foreign.is_dir()
