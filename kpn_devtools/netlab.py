"""A two-namespace network for the line's network faults (root only; issue 9 items 8, 9).

The proxy's namespace (the stand-in, at PROXY_IP) and the line's (the
engine, at LINE_IP) are joined by a veth pair on a /24.  The line's
namespace also has a second interface (OTHER_IP) that carries the
default route, so an engine that binds the wildcard address names the wrong
interface in its Contact.  The engine runs in a mount namespace of its own
too, with the lab's /etc/hosts and /etc/resolv.conf bound over the system's:

* `set_dns(True/False)`: the proxy's name (PROXY_NAME) resolves or not
  (a hosts-file entry; the name server is the proxy's address, where
  nothing answers DNS);
* `dead_name_server()`: DNS queries to it are dropped (each look-up then
  waits for the resolver's timeouts: ~10 s with glibc's defaults);
* `move_line_address(new)`: the line's address changes (add new, delete old);
* `cut(True/False)`: total packet loss between the two (nftables drop in the
  proxy's namespace: the line sees silence, no error).

Traffic stays inside the namespaces this creates.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
import secrets
import shutil
import socket
import subprocess
import tempfile
from typing import Any

from .kamailio import Kamailio
from .netns import Netns

PROXY_IP = "10.99.0.1"
LINE_IP = "10.99.0.2"
NEW_LINE_IP = "10.99.0.3"
OTHER_IP = "10.98.0.2"
PREFIX = 24
PROXY_NAME = "proxy.kpn-lab.test"
_CUT_TABLE = "kpn_cut"
_DNS_TABLE = "kpn_dns"


class NetLab:
    """The two namespaces, their link and the line's name files; delete() removes all."""

    def __init__(self) -> None:
        """Nothing exists until create()."""
        tag = secrets.token_hex(3)
        self.proxy = Netns(f"kpn-p{tag}")
        self.line = Netns(f"kpn-l{tag}")
        self.proxy_if = f"kpnp{tag}"
        self.line_if = f"kpnl{tag}"
        self.line_ip = LINE_IP
        self.dir = Path(tempfile.mkdtemp(prefix="kpn-lab-"))
        self.hosts = self.dir / "hosts"
        self.resolv = self.dir / "resolv.conf"
        self._kamailios: list[Kamailio] = []

    def create(self) -> NetLab:
        """Create both namespaces, the veth pair, addresses, routes and name files."""
        self.proxy.create()
        self.line.create()
        run = _run
        run(["ip", "link", "add", self.proxy_if, "type", "veth", "peer", "name", self.line_if])
        run(["ip", "link", "set", self.proxy_if, "netns", self.proxy.name])
        run(["ip", "link", "set", self.line_if, "netns", self.line.name])
        self.proxy.run(["ip", "addr", "add", f"{PROXY_IP}/{PREFIX}", "dev", self.proxy_if])
        self.proxy.run(["ip", "link", "set", self.proxy_if, "up"])
        self.line.run(["ip", "addr", "add", f"{LINE_IP}/{PREFIX}", "dev", self.line_if])
        self.line.run(["ip", "link", "set", self.line_if, "up"])
        # A second interface with the default route: the wildcard's "main" address
        # (a veth pair with both ends in the line's namespace; no dummy driver needed).
        other = f"{self.line_if}o"
        self.line.run(["ip", "link", "add", other, "type", "veth", "peer", "name", "other1"])
        self.line.run(["ip", "addr", "add", f"{OTHER_IP}/{PREFIX}", "dev", other])
        for name in (other, "other1"):
            self.line.run(["ip", "link", "set", name, "up"])
        self.line.run(["ip", "route", "add", "default", "dev", other])
        self.resolv.write_text(f"nameserver {PROXY_IP}\noptions timeout:5 attempts:2\n")
        self.set_dns(working=True)
        return self

    # -- the line's names ------------------------------------------------------------

    def set_dns(self, *, working: bool) -> None:
        """PROXY_NAME resolves (True) or not (False), from the next look-up on.

        Written in place: the engine's bind mount keeps pointing at the file.
        """
        # The machine's own name resolves from the file, as on Debian and in Docker:
        # pjlib looks it up in libCreate (pj_gethostip), where a dead name server
        # would otherwise hold the engine for the resolver's time-outs.
        lines = ["127.0.0.1 localhost", f"127.0.1.1 {socket.gethostname()}"]
        if working:
            lines.append(f"{PROXY_IP} {PROXY_NAME}")
        with self.hosts.open("w") as fh:
            fh.write("\n".join(lines) + "\n")

    def dead_name_server(self) -> None:
        """Drop DNS queries at the name server: every look-up of an unknown name times out."""
        self.proxy.run(
            ["nft", "-f", "-"],
            input=(
                f"table inet {_DNS_TABLE} {{\n"
                "  chain in {\n"
                "    type filter hook input priority 0; policy accept;\n"
                "    udp dport 53 drop\n"
                "    tcp dport 53 drop\n"
                "  }\n"
                "}\n"
            ),
        )

    def engine_prefix(self) -> list[str]:
        """Command prefix: the line's namespace, with the lab's hosts and resolv.conf."""
        script = (
            f'mount --bind "{self.hosts}" /etc/hosts && '
            f'mount --bind "{self.resolv}" /etc/resolv.conf && exec "$@"'
        )
        return [
            *self.line.prefix,
            "unshare",
            "--mount",
            "--propagation",
            "unchanged",
            "sh",
            "-c",
            script,
            "sh",
        ]

    # -- addresses and loss --------------------------------------------------------

    def move_line_address(self, new: str = NEW_LINE_IP) -> str:
        """The line's address changes to `new` (the old one is deleted); returns the old."""
        old = self.line_ip
        # The new address is a secondary one until the old (primary) goes: promoted
        # then, instead of deleted with it (the kernel's default).
        self.line.run(["sysctl", "-qw", f"net.ipv4.conf.{self.line_if}.promote_secondaries=1"])
        self.line.run(["ip", "addr", "add", f"{new}/{PREFIX}", "dev", self.line_if])
        self.line.run(["ip", "addr", "del", f"{old}/{PREFIX}", "dev", self.line_if])
        self.line_ip = new
        return old

    def drop_line_address(self) -> str:
        """The line's address goes away, none comes instead; returns the old one."""
        old = self.line_ip
        self.line.run(["ip", "addr", "del", f"{old}/{PREFIX}", "dev", self.line_if])
        return old

    def cut(self, *, lost: bool) -> None:
        """Total packet loss between the line and the proxy (True), or none (False)."""
        if lost:
            script = (
                f"table inet {_CUT_TABLE} {{\n"
                "  chain in {\n"
                "    type filter hook input priority -10; policy accept;\n"
                f'    iifname "{self.proxy_if}" drop\n'
                "  }\n"
                "  chain out {\n"
                "    type filter hook output priority -10; policy accept;\n"
                f'    oifname "{self.proxy_if}" drop\n'
                "  }\n"
                "}\n"
            )
            self.proxy.run(["nft", "-f", "-"], input=script)
        else:
            self.proxy.run(["nft", "delete", "table", "inet", _CUT_TABLE], check=False)

    # -- the stand-in ------------------------------------------------------------------

    def kamailio(self, **options: Any) -> Kamailio:
        """A started stand-in in the proxy's namespace at PROXY_IP:5060."""
        options.setdefault("port", 5060)
        kam = Kamailio(host=PROXY_IP, prefix=self.proxy.prefix, **options)
        self._kamailios.append(kam)
        kam.start()
        return kam

    def delete(self) -> None:
        """Stop the stand-ins, remove both namespaces and the name files; idempotent."""
        for kam in self._kamailios:
            kam.cleanup()
        self._kamailios.clear()
        self.line.delete()
        self.proxy.delete()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> NetLab:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.delete()


def _run(cmd: Sequence[str]) -> None:
    subprocess.run(list(cmd), check=True, capture_output=True, text=True, timeout=30)
