"""Free port probing on loopback, and a guard against orphaned peers."""

from __future__ import annotations

from pathlib import Path
import random
import shutil
import socket
import threading

# The ports Linux gives to outgoing connections and to bind-to-0 (net.ipv4.ip_local_port_range).
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# The lowest port free_tcp_port chooses: above the well-known and the usual service ports.
LOWEST_SERVER_PORT = 10000


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port on `host` that was free a moment ago (bind-to-0 probe)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` for a server (Home Assistant's HTTP) that nothing uses now.

    Chosen at random below the ephemeral range, not by a bind-to-0 probe: a port
    from that range can be taken by any outgoing connection on the machine
    before the server binds it, and Home Assistant then starts in recovery mode,
    which falls back to port 8123 on every address (clashing with scripts/develop
    or any other Home Assistant here).  Checked with SO_REUSEADDR, as aiohttp
    binds.  Raises OSError when none is free after 200 tries.
    """
    try:
        low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    chooser = random.SystemRandom()
    for _ in range(200):
        port = chooser.randrange(LOWEST_SERVER_PORT, max(low, LOWEST_SERVER_PORT + 1000))
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free TCP port on {host} below the ephemeral range")


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
