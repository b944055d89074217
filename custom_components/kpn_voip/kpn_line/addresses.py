"""Addresses the engine needs: the proxy's, the sources it accepts, its own.

* `first_address` picks the proxy's address (IPv4 first; K2's proxy has IPv4
  addresses and pjsua2 is built without IPv6 media);
* `local_address_towards` is the local IP the system routes to the proxy
  through: the engine binds SIP and RTP to it;
* `line_sip_port` is the line's own SIP port when none is configured: the
  same for every engine of the line at its registrar, so a restarted engine registers the
  same Contact and the registrar replaces its binding (K7);
* `AllowedSources` is the K16/K24 safety net: INVITEs only from the proxy
  (every address its name resolves to) and the configured `allowed_sources`.

Pure sockets and ipaddress: no pjsua2.
"""

from __future__ import annotations

from collections.abc import Iterable
import ipaddress
import socket
from typing import Final
import zlib

ANY_ADDRESS: Final = "0.0.0.0"  # noqa: S104  only when the proxy name does not resolve
# Above Linux's default ephemeral range (32768-60999): no outgoing socket takes them.
LINE_PORT_FIRST: Final = 61000
LINE_PORT_COUNT: Final = 4500


def line_sip_port(number: str, proxy: str) -> int:
    """The SIP port of the line `number` (E.164) at `proxy` ("host:port") when none is set (K7).

    A restarted engine binds the same port, so its REGISTER names the same
    Contact and the registrar replaces the old binding instead of holding two
    (RFC 3261 §10.3).  Derived from the line and its registrar, so two lines
    get two ports (a clash falls back to any free port, see Engine.init_lib),
    and a line at another registrar (a test's own stand-in) another one.
    """
    return LINE_PORT_FIRST + zlib.crc32(f"{number}@{proxy}".encode()) % LINE_PORT_COUNT


def source_host(address: str) -> str:
    """The host of pjsip's "1.2.3.4:5060" / "[::1]:5060"."""
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 or "]" in address else address
    return host.strip("[]")


def resolve(host: str) -> set[str]:
    """Every address `host` resolves to (for UDP); empty when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_UDP)
    except OSError:
        return set()
    return {str(info[4][0]) for info in infos}


def first_address(host: str) -> str | None:
    """One address of `host`, IPv4 first; None when it does not resolve."""
    addresses = sorted(resolve(host), key=lambda a: ":" in a)  # IPv4 first
    return addresses[0] if addresses else None


def local_address_towards(host: str, port: int) -> str:
    """The local IP the system would use to reach host:port (connect() sends nothing).

    Raises OSError when there is no route.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))
        return str(sock.getsockname()[0])


class AllowedSources:
    """K16/K24 safety: the hosts and networks an INVITE may come from."""

    def __init__(self) -> None:
        """Nothing allowed until `configure`."""
        self.hosts: set[str] = set()
        self.nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.rejected: set[str] = set()  # reported once each (an `error` event)

    def configure(self, proxy_host: str, proxy_ip: str | None, sources: Iterable[str]) -> None:
        """The proxy's addresses plus `sources` (addresses, networks or host names)."""
        self.hosts = resolve(proxy_host)
        if proxy_ip is not None:
            self.hosts.add(proxy_ip)
        self.nets = []
        for source in sources:
            try:
                self.nets.append(ipaddress.ip_network(source, strict=False))
            except ValueError:
                self.hosts |= resolve(source)
        self.rejected.clear()

    def __contains__(self, host: str) -> bool:
        """True if an INVITE from `host` (an address) is accepted."""
        if host in self.hosts:
            return True
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self.nets)
