"""Addresses the engine needs: the proxy's, the sources it accepts, its own.

* `first_address` picks the proxy's address (IPv4 first; K2's proxy has IPv4
  addresses and pjsua2 is built without IPv6 media);
* `local_address_towards` is the local IP the system routes to the proxy
  through: the engine binds SIP and RTP to it;
* `line_sip_port` is the line's own SIP port when none is configured: the
  same for every engine of the line at its registrar, so a restarted engine registers the
  same Contact and the registrar replaces its binding (K7);
* `AllowedSources` is the K16/K24 safety net: INVITEs only from the proxy
  (every address its name resolves to, and the address the line's
  registration was last answered from) and the configured `allowed_sources`;
* `find_path` is where the line's SIP goes: the proxy's address and the
  local address routing to it.  It may block on the system resolver (a dead
  name server: tens of seconds), so the engine runs it in a thread of its
  own (netpath.py), never on the pjsua2 thread (issue 9 item 8).

Pure sockets and ipaddress: no pjsua2.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
import ipaddress
import socket
from typing import Final
import zlib

ANY_ADDRESS: Final = "0.0.0.0"  # noqa: S104  only when the proxy name does not resolve
# A refused INVITE from within this many leading bits of the proxy's address (its
# /16 for IPv4, /48 for IPv6) "looks like the proxy's network": most likely a
# P-CSCF of the same platform the line did not register through (K16/K24 then
# refuse a real call), so it is logged at warning level and counted (issue 9 item 8).
PROXY_NETWORK_PREFIX_V4: Final = 16
PROXY_NETWORK_PREFIX_V6: Final = 48
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


def is_ip_address(host: str) -> bool:
    """True for an IPv4/IPv6 literal (nothing to resolve), False for a host name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


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


@dataclass(frozen=True, slots=True)
class Path:
    """Where the line's SIP goes, as `find_path` found it at one moment.

    `proxy_ip`: the proxy's address (IPv4 first) or None when its name does
    not resolve; `proxy_ips`: every address the name resolves to; `local_ip`:
    the local address routing to `proxy_ip` (None: no route, or no proxy
    address); `named`: the addresses of the host names among allowed_sources;
    `error`: why there is no `local_ip`, for the registration's reason.
    """

    proxy_ip: str | None
    proxy_ips: frozenset[str] = frozenset()
    local_ip: str | None = None
    named: frozenset[str] = frozenset()
    error: str | None = None


def find_path(proxy_host: str, proxy_port: int, names: Iterable[str] = ()) -> Path:
    """Resolve `proxy_host` (and the host `names` of allowed_sources) and find the route.

    Blocks on the system resolver when a name is involved: call it off the
    pjsua2 thread (netpath.Lookups).  Only IPv4 proxy addresses are used
    (pjsua2 is built without IPv6 media; K2's proxy has IPv4 addresses).
    """
    named: set[str] = set()
    for name in names:
        named |= resolve(name)
    if is_ip_address(proxy_host):
        ips = {proxy_host}
    else:
        ips = {ip for ip in resolve(proxy_host) if ":" not in ip}
    if not ips:
        return Path(None, named=frozenset(named), error="the proxy's name does not resolve")
    proxy_ip = sorted(ips)[0]
    try:
        local_ip = local_address_towards(proxy_ip, proxy_port)
    except OSError:
        return Path(proxy_ip, frozenset(ips), None, frozenset(named), "no route to the proxy")
    return Path(proxy_ip, frozenset(ips), local_ip, frozenset(named))


def _same_network(a: ipaddress.IPv4Address | ipaddress.IPv6Address, b: str) -> bool:
    """True if `a` and the address `b` share the proxy-network prefix (see above)."""
    try:
        other = ipaddress.ip_address(b)
    except ValueError:
        return False
    if a.version != other.version:
        return False
    bits = PROXY_NETWORK_PREFIX_V4 if a.version == 4 else PROXY_NETWORK_PREFIX_V6
    return a in ipaddress.ip_network(f"{other}/{bits}", strict=False)


class AllowedSources:
    """K16/K24 safety: the hosts and networks an INVITE may come from.

    Three parts, each replaced as a whole when it changes, so the set follows
    the address the registration really uses (issue 9 item 8):

    * `proxy_hosts`: every address the proxy name resolved to, at the last
      look-up (each REGISTER looks again);
    * `registered_via`: the address the last 2xx to the line's REGISTER came
      from (pjsip's rdata source): where the registrar holds the binding, so
      where the network sends the line's calls from (IMS: the P-CSCF);
    * the configured `allowed_sources`: networks and addresses (`nets`,
      `hosts`), and the addresses of its host names (`named`, looked up
      with the proxy).
    """

    def __init__(self) -> None:
        """Nothing allowed until `configure` / `configure_static`."""
        self.hosts: set[str] = set()
        self.proxy_hosts: set[str] = set()
        self.named: set[str] = set()
        self.registered_via: str | None = None
        self.nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.rejected: set[str] = set()  # reported once each (an `error` event)

    def configure_static(self, sources: Iterable[str]) -> list[str]:
        """Take the addresses and networks of `sources`; return its host names (to resolve).

        Forgets everything learnt before (a new `start`).
        """
        self.hosts, self.proxy_hosts, self.named = set(), set(), set()
        self.registered_via = None
        self.nets = []
        names = []
        for source in sources:
            try:
                self.nets.append(ipaddress.ip_network(source, strict=False))
            except ValueError:
                names.append(source)
        self.rejected.clear()
        return names

    def configure(self, proxy_host: str, proxy_ip: str | None, sources: Iterable[str]) -> None:
        """The proxy's addresses plus `sources` (addresses, networks or host names).

        Resolves names (blocks): for callers off the pjsua2 thread and tests;
        the engine uses configure_static + update with a `Path` from a thread.
        """
        names = self.configure_static(sources)
        self.proxy_hosts = resolve(proxy_host)
        if proxy_ip is not None:
            self.proxy_hosts.add(proxy_ip)
        for name in names:
            self.named |= resolve(name)

    def update(self, path: Path) -> None:
        """A new look-up: the proxy's addresses and the names' (kept if it found none)."""
        if path.proxy_ips:
            self.proxy_hosts = set(path.proxy_ips)
        if path.named:
            self.named = set(path.named)

    def follow_registration(self, host: str) -> None:
        """The line's REGISTER was just answered 2xx from `host` (an address)."""
        self.registered_via = host

    def __contains__(self, host: str) -> bool:
        """True if an INVITE from `host` (an address) is accepted."""
        if host in self.hosts or host in self.proxy_hosts or host in self.named:
            return True
        if host == self.registered_via:
            return True
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self.nets)

    def looks_like_proxy(self, host: str) -> bool:
        """True if `host` shares the proxy's network (PROXY_NETWORK_PREFIX_V4/_V6).

        The proxy's network: that of each address its name resolved to and of
        the address the registration was answered from.  Never a loopback
        address (127.0.0.0/8 is this host, not a network of the platform).
        """
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        if addr.is_loopback:
            return False  # one host, no network: a proxy on loopback is a test's or a dev's
        known = set(self.proxy_hosts)
        if self.registered_via is not None:
            known.add(self.registered_via)
        return any(_same_network(addr, other) for other in known)
