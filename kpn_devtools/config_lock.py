"""One scripts/develop (and one Home Assistant) per config folder.

A second scripts/develop on a folder in use used to write its own HTTP port into
the shared configuration before Home Assistant refused to start a second time
(its own lock, below): the first one's next restart then listened on the second's
port.  So develop claims the folder before it touches anything: an exclusive
flock(2) on `CONFIG/.develop.lock`, held for develop's lifetime (the kernel drops it
when develop ends, however it ends), with develop's pid and URL written into it
for the next one's message.  A folder a Home Assistant runs on without develop
(`hass -c CONFIG` by hand) is known by Home Assistant's own lock,
`CONFIG/.ha_run.lock` (homeassistant/runner.py: `ensure_single_execution`, a
flock and a JSON of pid, version and start time).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any, Final

# develop's own lock file in the config folder; kept by --fresh (develop holds it).
LOCK_NAME: Final = ".develop.lock"
# Home Assistant's (homeassistant.runner.LOCK_FILE_NAME; tests/kpn_devtools holds the two equal).
HA_LOCK_NAME: Final = ".ha_run.lock"


class ConfigInUseError(RuntimeError):
    """Another scripts/develop or Home Assistant runs on the folder: one line saying
    which (its pid) and how to stop it."""


def _held(path: Path) -> bool:
    """Whether someone holds an exclusive flock on `path` (False if there is no file).

    Opened read-only, never created or written: a look changes nothing on disk.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False
    finally:
        os.close(fd)  # also releases the lock just taken


def _info(path: Path) -> dict[str, Any]:
    """The JSON object a lock holder wrote into `path`; {} if none (yet) or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _refusal(config_dir: Path) -> str | None:
    """The one-line message when `config_dir` is in use, else None."""
    where = f"config folder {config_dir}"
    other = "or give this one another folder with --config"
    if _held(config_dir / LOCK_NAME):
        info = _info(config_dir / LOCK_NAME)
        pid = info.get("pid", "?")
        url = f", Home Assistant at {info['url']}" if info.get("url") else ""
        return (
            f"scripts/develop already runs on the {where} (pid {pid}{url}): stop it with "
            f"Ctrl-C in its terminal (or kill -INT {pid}), {other}"
        )
    if _held(config_dir / HA_LOCK_NAME):
        pid = _info(config_dir / HA_LOCK_NAME).get("pid", "?")
        return (
            f"Home Assistant already runs on the {where} (pid {pid}, not started by "
            f"scripts/develop): stop it (kill -INT {pid}), {other}"
        )
    return None


class ConfigLock:
    """develop's claim on a config folder (see the module docstring).

    `ConfigLock(config_dir)` checks and claims; raises ConfigInUseError (nothing on disk
    changed) when another scripts/develop or Home Assistant runs on the folder.
    Makes the folder if it does not exist.  `describe(url=...)` records develop's URL
    for the message of a later one; `release()` (or the end of the process) frees it.
    """

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir
        self.path = config_dir / LOCK_NAME
        # Looked at before anything is made: a refused start leaves the folder as it was.
        if (refusal := _refusal(config_dir)) is not None:
            raise ConfigInUseError(refusal)
        config_dir.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # Another develop claimed it between the look and now.
            os.close(self._fd)
            raise ConfigInUseError(_refusal(config_dir) or f"{config_dir} is in use") from None
        self.describe()

    def describe(self, **fields: object) -> None:
        """Write develop's pid (and `fields`, e.g. url) into the lock file."""
        data = json.dumps({"pid": os.getpid(), **fields}).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        """Free the folder (idempotent)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)
