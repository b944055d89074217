"""Free port probing on loopback, and a guard against orphaned peers."""

from __future__ import annotations

import shutil
import socket
import threading


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port on `host` that was free a moment ago (bind-to-0 probe)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def orphan_guard() -> list[str]:
    """Command prefix that SIGTERMs the child if the test process dies first.

    Peers run in sessions of their own (so a group kill cannot hit pytest);
    without this, a pytest killed by SIGTERM/SIGKILL would leave them running.
    The death signal fires when the *thread* that started the child ends, so
    it is only used from the main thread.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return []
    return [setpriv, "--pdeathsig", "TERM", "--"]
