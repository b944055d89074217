"""Small helpers shared by the benchmarks: percentiles and SIP first lines.

Imports nothing of the line engine, so a benchmark that runs Home Assistant
(bench_ha.py, the integration's package name) and one that runs the bare
client (bench_engine.py, `kpn_line`) can both use it.
"""

from __future__ import annotations

from collections.abc import Sequence
import math

from kpn_devtools.capture import Packet


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); nan without values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def sip_first_line(packet: Packet) -> str:
    """The first line of a SIP payload ("" if it is none)."""
    return packet.payload.split(b"\r\n", 1)[0].decode("utf-8", errors="replace")
