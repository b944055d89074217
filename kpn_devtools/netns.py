"""Network namespaces (root only): lo up, commands inside, priority counters.

K22 asks for 802.1p priority 5, which Linux takes from the socket priority
(SO_PRIORITY).  The test machines' kernel has neither VLAN nor the `prio`
qdisc (CONFIG_NET_SCH_PRIO is off), so the priority is made visible with
nftables instead: rules in the namespace's output hook that count UDP
packets whose skb priority is (or is not) the one asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from typing import Any

_TABLE = "kpn_prio"


class Netns:
    """A network namespace with lo up; removed by delete()."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or f"kpn-{secrets.token_hex(4)}"
        # nsenter, not `ip netns exec`: the latter remounts / and /sys, which
        # fails inside the chroot the test environment may be.
        self.prefix = ["nsenter", f"--net=/run/netns/{self.name}"]
        self._procs: list[subprocess.Popen[Any]] = []
        self._created = False

    def create(self) -> None:
        """Create the namespace and bring lo up."""
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        self._created = True
        self.run(["ip", "link", "set", "lo", "up"])

    def run(
        self, cmd: Sequence[str], *, check: bool = True, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run `cmd` inside the namespace and wait (text output captured)."""
        kw.setdefault("capture_output", True)
        kw.setdefault("timeout", 30)
        return subprocess.run([*self.prefix, *cmd], check=check, text=True, **kw)

    def popen(self, cmd: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start `cmd` inside the namespace; killed (process group) by delete()."""
        kw.setdefault("start_new_session", True)
        proc: subprocess.Popen[Any] = subprocess.Popen([*self.prefix, *cmd], **kw)
        self._procs.append(proc)
        return proc

    def add_priority_counter(self, priority: int = 5, sports: Sequence[int] = ()) -> None:
        """Count UDP packets leaving inside the namespace by skb priority.

        Two counters: packets with `priority` and packets with any other; if
        `sports` is given, only packets from those UDP source ports count.
        """
        match = f"udp sport {{ {', '.join(map(str, sports))} }}" if sports else "meta l4proto udp"
        prio = f"0:{priority:x}"
        script = "\n".join(
            [
                f"table inet {_TABLE} {{",
                "  chain out {",
                "    type filter hook output priority 0; policy accept;",
                f'    {match} meta priority {prio} counter comment "match"',
                f'    {match} meta priority != {prio} counter comment "other"',
                "  }",
                "}",
            ]
        )
        self.run(["nft", "-f", "-"], input=script)

    def priority_counts(self) -> tuple[int, int]:
        """(packets with the priority, packets without) since add_priority_counter()."""
        out = self.run(["nft", "-j", "list", "table", "inet", _TABLE]).stdout
        counts = {"match": 0, "other": 0}
        for item in json.loads(out)["nftables"]:
            rule = item.get("rule")
            if not rule or rule.get("comment") not in counts:
                continue
            for expr in rule["expr"]:
                if "counter" in expr:
                    counts[rule["comment"]] = int(expr["counter"]["packets"])
        return counts["match"], counts["other"]

    def priority_packets(self) -> int:
        """UDP packets sent with the counted priority (K22: 5)."""
        return self.priority_counts()[0]

    def delete(self) -> None:
        """Kill what runs inside and remove the namespace; idempotent."""
        for proc in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._procs.clear()
        if not self._created:
            return
        pids = subprocess.run(
            ["ip", "netns", "pids", self.name], capture_output=True, text=True, check=False
        ).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        for _ in range(50):
            done = subprocess.run(
                ["ip", "netns", "del", self.name], capture_output=True, check=False
            )
            if done.returncode == 0:
                break
            time.sleep(0.05)
        self._created = False
