"""Temporary folders that do not outlive their owner, not even a killed one.

A peer's run folder (the stand-in's config, log and RPC socket) is removed by
its owner's clean-up; but a test process killed by a signal (a `timeout`, a
Ctrl-C of a parent, SIGKILL) runs no clean-up at all: its peers die with it
(ports.orphan_guard), its folder stayed in the temp dir, one per killed run.

So the owner holds an exclusive flock(2) on a file in the folder for as long
as it (or a child it passed the descriptor to) lives; the kernel releases the
lock when the last holder dies, however it died.  Making a new folder with
the same prefix first sweeps the folders whose lock nobody holds any more.
A folder without the lock file (one being made, or one from a tool that does
not use this module) is never touched.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
import shutil
import tempfile
from typing import Final

LOCK_NAME: Final = ".owner.lock"


def make_owned_dir(prefix: str) -> tuple[Path, int]:
    """A new folder `<temp dir>/<prefix><random>` and the descriptor of its owner lock.

    Keep the descriptor open while the folder is in use (close it after removing
    the folder); folders of `prefix` whose owners died are removed first
    (sweep_orphans).  Raises OSError if the temp dir is not writable.
    """
    sweep_orphans(prefix)
    path = Path(tempfile.mkdtemp(prefix=prefix))
    # Locked under another name, then renamed: a sweep never sees the lock file
    # before it is locked (it would take the folder of an owner being born).
    making = path / f"{LOCK_NAME}.{os.getpid()}"
    fd = os.open(making, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        making.rename(path / LOCK_NAME)
    except BaseException:
        os.close(fd)
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path, fd


def sweep_orphans(prefix: str) -> list[Path]:
    """Remove the folders `<temp dir>/<prefix>*` whose owner lock nobody holds; them."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue  # no lock file: being made, or not ours to judge
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its owner (or a child it shared the lock with) lives
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            os.close(fd)
    return removed
