"""Free port probing on loopback, and a guard against orphaned peers."""

from __future__ import annotations

from pathlib import Path
import random
import shutil
import socket
import threading

# The ports Linux gives to outgoing connections and to bind-to-0 (net.ipv4.ip_local_port_range).
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# The lowest port free_tcp_port / free_udp_port choose: above the well-known and the
# usual service ports.
LOWEST_SERVER_PORT = 10000
# The lowest RTP port of the engines (K19, kpn_line.profile.K19_RTP_PORT_MIN; not imported:
# this module runs in processes that import kpn_line under either of its names, and
# kpn_line/__init__.py allows one per process; tests/kpn_devtools/test_develop.py holds
# the two equal).
RTP_PORT_MIN = 16384


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def port_bindable(
    port: int, host: str = "127.0.0.1", kind: socket.SocketKind = socket.SOCK_STREAM
) -> bool:
    """Whether a server could bind `port` of `kind` on `host` now: nothing listens on it
    and, for TCP, no connection holds it (SO_REUSEADDR, as aiohttp binds, so our own
    requests' TIME_WAIT entries do not count)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(kind: socket.SocketKind, host: str, high: int) -> int:
    """A port of `kind` on `host` in [LOWEST_SERVER_PORT, high) that nothing uses now.

    Chosen at random, not by a bind-to-0 probe: a port from the ephemeral range
    can be taken by any outgoing socket on the machine (or handed to another
    bind-to-0 probe) before the peer binds it.  Raises OSError when none is
    free after 200 tries.
    """
    chooser = random.SystemRandom()
    for _ in range(200):
        port = chooser.randrange(LOWEST_SERVER_PORT, max(high, LOWEST_SERVER_PORT + 1000))
        if port_bindable(port, host, kind):
            return port
    raise OSError(f"no free {kind.name} port on {host} below {high}")


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port on `host` for a peer (the stand-in, SIPp) that nothing uses now.

    Chosen as free_tcp_port chooses, below the engines' RTP ports (K19) as well
    as below the ephemeral range: a bind-to-0 probe's port was taken by another
    socket before SIPp bound it (errno 98) in a parallel test run.  Raises
    OSError when none is free after 200 tries.
    """
    return _free_port(socket.SOCK_DGRAM, host, min(_ephemeral_low(), RTP_PORT_MIN))


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` for a server (Home Assistant's HTTP) that nothing uses now.

    Chosen at random below the ephemeral range, not by a bind-to-0 probe: a port
    from that range can be taken by any outgoing connection on the machine
    before the server binds it, and Home Assistant then starts in recovery mode,
    which falls back to port 8123 on every address (clashing with scripts/develop
    or any other Home Assistant here).  Checked with SO_REUSEADDR, as aiohttp
    binds.  Raises OSError when none is free after 200 tries.
    """
    return _free_port(socket.SOCK_STREAM, host, _ephemeral_low())


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
