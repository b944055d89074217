"""Line engine benchmarks against the real peers (Kamailio stand-in, SIPp, tcpdump).

Prints figures, never pass/fail.  Run with `benchmarks/run [--quick]`
(inside the project's environment).  Everything stays on 127.0.0.1: the
engine registers at the stand-in (kpn_devtools.kamailio), calls come from SIPp
(kpn_devtools.sipp) through the stand-in, the engine's calls go through the
stand-in to a SIPp callee, and tcpdump (kpn_devtools.capture) records every
packet of the engine's and the stand-in's SIP ports, so wire times come from
the kernel's packet time stamps (CLOCK_REALTIME, as time.time()).

See benchmarks/README.md for what each figure measures exactly.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
import contextlib
from dataclasses import dataclass, field
import logging
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from benchmarks.stats import pct, sip_first_line
from kpn_devtools.capture import Capture, Packet
from kpn_devtools.kamailio import TEST_ACCOUNT, Kamailio
from kpn_devtools.ports import free_udp_port
from kpn_devtools.sipp import Sipp, SippRun, SippUas
from kpn_line.client import EngineClient
from kpn_line.protocol import (
    CallEvent,
    CallState,
    ErrorEvent,
    Event,
    RegistrationEvent,
    RegState,
)
from kpn_line.settings import LineSettings

_RURI_USER = re.compile(r"^INVITE sip:([^@;>\s]+)@")
_NOTABLE = re.compile(r"WARNING|ERROR|too many|\b486\b|\b503\b|refus", re.IGNORECASE)


# -- small helpers -----------------------------------------------------------------


def cpu_ticks(pid: int) -> int:
    """utime + stime of `pid`, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def status_kb(pid: int, key: str) -> int:
    """A "kB" value (VmRSS, VmHWM, ...) from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def fd_count(pid: int | str = "self") -> int:
    """Open file descriptors of a process."""
    return len(os.listdir(f"/proc/{pid}/fd"))


class EngineLog(logging.Handler):
    """Keeps the engine's stderr (the client logs it at debug level) for reports."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def notable(self, since: int = 0, count: int = 12) -> list[str]:
        """Distinct warning/error lines logged since line `since` (pjsip's and Python's)."""
        seen: dict[str, int] = {}
        for text in self.lines[since:]:
            if _NOTABLE.search(text):
                key = re.sub(r"\d\d:\d\d:\d\d(\.\d+)?", "", text)
                seen[key] = seen.get(key, 0) + 1
        return [f"{n}x {text.strip()[:220]}" for text, n in list(seen.items())[:count]]


class RateSipp(Sipp):
    """Sipp whose call_line places `calls` calls at `rate` per second in one SIPp.

    kpn_devtools.sipp builds a one-call SIPp (-m 1); only that count is
    rewritten here, the scenario and every other argument are the library's.
    """

    def __init__(self, workdir: Path, calls: int, rate: float) -> None:
        super().__init__(workdir)
        self.calls = calls
        self.rate = rate

    def _run(self, cls: type[SippRun], name: str, args: list[str], port: int = 0) -> Any:
        if name == "call_line":
            args = list(args)
            args[args.index("-m") + 1] = str(self.calls)
            # -l: no cap below the number of calls (SIPp's default limit is lower).
            args += ["-r", f"{self.rate:g}", "-l", str(self.calls)]
        return super()._run(cls, name, args, port)


@dataclass
class Line:
    """The engine under test, its client, and every event it delivered."""

    settings: LineSettings
    events: list[tuple[float, Event]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    client: EngineClient | None = None
    hooks: list[Callable[[float, Event], None]] = field(default_factory=list)
    exits: list[tuple[int | None, str]] = field(default_factory=list)

    def on_event(self, event: Event) -> None:
        stamp = time.time()  # first thing on the asyncio side
        self.events.append((stamp, event))
        self.changed.set()
        for hook in self.hooks:
            hook(stamp, event)

    def on_exit(self, code: int | None, reason: str) -> None:
        self.exits.append((code, reason))
        self.changed.set()

    async def start(self, timeout: float = 15.0) -> None:  # noqa: ASYNC109
        self.client = EngineClient(on_event=self.on_event, on_exit=self.on_exit)
        await self.client.start(self.settings)
        await self.wait(
            lambda e: isinstance(e, RegistrationEvent) and e.state == RegState.REGISTERED,
            timeout,
        )

    async def wait(
        self,
        predicate: Callable[[Event], bool],
        timeout: float = 10.0,  # noqa: ASYNC109
        since: int = 0,
    ) -> tuple[float, Any]:
        """The first (time, event) from index `since` on that matches."""
        deadline = time.monotonic() + timeout
        index = since
        while True:
            while index < len(self.events):
                stamp, event = self.events[index]
                index += 1
                if predicate(event):
                    return stamp, event
            if self.exits:
                raise RuntimeError(f"engine exited: {self.exits}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no such event in time")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 1.0))

    @property
    def pid(self) -> int:
        assert self.client is not None
        assert self.client.pid is not None
        return self.client.pid


def is_call(state: CallState, call_id: str | None = None) -> Callable[[Event], bool]:
    """Predicate: a CallEvent in `state` (for `call_id` if given)."""

    def check(event: Event) -> bool:
        return (
            isinstance(event, CallEvent)
            and event.state == state
            and (call_id is None or event.call_id == call_id)
        )

    return check


def _count_invites(packets: list[Packet], dport: int | None, sport: int | None = None) -> int:
    return sum(
        1
        for p in packets
        if (dport is None or p.dport == dport)
        and (sport is None or p.sport == sport)
        and sip_first_line(p).startswith("INVITE ")
    )


async def wait_packets(
    cap: Capture,
    predicate: Callable[[list[Packet]], bool],
    timeout: float = 5.0,  # noqa: ASYNC109
) -> None:
    """Until predicate(captured packets) holds (or timeout: then the figures show gaps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate(cap.packets()):
            return
        await asyncio.sleep(0.1)


# -- the benchmarks ----------------------------------------------------------------


@dataclass
class Results:
    """Everything measured, for the table."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, what: str, target: str, measured: str) -> None:
        self.rows.append((what, target, measured))
        print(f"  {what}: {measured}   (target {target})", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)


async def bench_incoming(
    line: Line, kam: Kamailio, sipp: Sipp, cap: Capture, engine_port: int, calls: int, res: Results
) -> None:
    """1. INVITE arrival at the engine's port -> CallEvent(ringing) on the asyncio side."""
    print(f"[1] {calls} calls into the line, one at a time ...", flush=True)
    assert line.client is not None
    delivered: dict[str, float] = {}  # caller number -> event time
    runs: list[SippRun] = []
    failures: list[str] = []
    for i in range(calls + 1):  # call 0 is a warm-up, reported on its own
        caller = f"+316100{i:05d}"
        since = len(line.events)
        run = sipp.call_line(kam, caller=caller, name=f"Bench {i}", ring_seconds=5.0)
        runs.append(run)
        try:
            stamp, event = await line.wait(is_call(CallState.RINGING), 10.0, since)
        except TimeoutError:
            failures.append(f"call {i}: no ringing event; SIPp: {run.responses('INVITE')}")
            continue
        if event.caller.number != caller:
            failures.append(
                f"call {i}: ringing event for {event.caller.number!r}, expected {caller}"
            )
        delivered[caller] = stamp
        await line.client.hangup(event.call_id)
        await line.wait(is_call(CallState.ENDED, event.call_id), 10.0, since)
    for run in runs:
        with contextlib.suppress(TimeoutError):
            await run.async_wait(10)
    # tcpdump without --immediate-mode hands packets over up to ~1 s late.
    await wait_packets(cap, lambda ps: _count_invites(ps, engine_port) >= len(delivered))
    # First INVITE per caller: SIPp -> stand-in, and stand-in -> engine.
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    for packet in cap.packets():
        first = sip_first_line(packet)
        if not first.startswith("INVITE "):
            continue
        m = re.search(rb"\+316100\d{5}", packet.payload)
        if m is None:
            continue
        caller = m.group().decode()
        if packet.dport == engine_port:
            arrived.setdefault(caller, packet.time)
        elif packet.dport == kam.port:
            sent.setdefault(caller, packet.time)
    warm = "+31610000000"
    lat = [(delivered[c] - arrived[c]) * 1000 for c in delivered if c in arrived and c != warm]
    hop = [(arrived[c] - sent[c]) * 1000 for c in arrived if c in sent and c != warm]
    total = [(delivered[c] - sent[c]) * 1000 for c in delivered if c in sent and c != warm]
    missing = [c for c in delivered if c not in arrived]
    if lat:
        res.row(
            f"INVITE at engine port -> ringing event, p50 (n={len(lat)})",
            "< 5 ms",
            f"{pct(lat, 0.5):.2f} ms",
        )
        top = ", ".join(f"{v:.1f}" for v in sorted(lat)[-3:])
        res.row(
            "  same, p99",
            "< 20 ms",
            f"{pct(lat, 0.99):.2f} ms (p90 {pct(lat, 0.9):.2f}; 3 slowest {top})",
        )
    if warm in delivered and warm in arrived:
        warm_ms = (delivered[warm] - arrived[warm]) * 1000
        res.note(f"first call after start (not counted): {warm_ms:.2f} ms")
    if hop:
        res.note(
            f"stand-in hop (SIPp INVITE -> INVITE at engine port) p50 {pct(hop, 0.5):.2f} ms; "
            f"SIPp INVITE -> ringing event p50 {pct(total, 0.5):.2f} ms, "
            f"p99 {pct(total, 0.99):.2f} ms"
        )
    if missing:
        res.note(f"{len(missing)} ringing events without a captured INVITE: {missing[:5]}")
    for text in failures:
        res.note(text)


async def bench_dial(
    line: Line,
    uas: SippUas,
    cap: Capture,
    engine_port: int,
    dials: int,
    res: Results,
    log: EngineLog,
    *,
    cancel: bool,
) -> None:
    """2. dial() -> first INVITE for that number leaves the engine's port."""
    how = "hung up while ringing (CANCEL)" if cancel else "answered, then hung up (BYE)"
    print(f"[2] {dials} dials to a SIPp callee behind the stand-in, {how} ...", flush=True)
    assert line.client is not None
    called: dict[str, float] = {}
    returned: list[float] = []
    failures: list[str] = []
    ended: Counter[str] = Counter()
    reached = CallState.ALERTING if cancel else CallState.ANSWERED
    log0 = len(log.lines)
    for i in range(dials + 1):  # dial 0 is a warm-up
        number = f"0612{i:06d}"
        since = len(line.events)
        t0 = time.time()
        call_id = await line.client.dial(number)
        returned.append((time.time() - t0) * 1000)
        called[number] = t0
        try:
            await line.wait(is_call(reached, call_id), 10.0, since)
        except TimeoutError:
            failures.append(f"dial {i}: no {reached} event")
        await line.client.hangup(call_id)
        try:
            _, event = await line.wait(is_call(CallState.ENDED, call_id), 10.0, since)
            ended[f"{event.code} {event.reason}"] += 1
        except TimeoutError:
            failures.append(f"dial {i}: no ended event after hangup")
    await wait_packets(cap, lambda ps: _count_invites(ps, None, engine_port) >= 2 * len(called))
    first: dict[str, float] = {}
    for packet in cap.packets():
        if packet.sport != engine_port:
            continue
        m = _RURI_USER.match(sip_first_line(packet))
        if m and m.group(1) in called:
            first.setdefault(m.group(1), packet.time)
    warm = "0612000000"
    lat = [(first[n] - called[n]) * 1000 for n in called if n in first and n != warm]
    if lat:
        res.row(
            f"dial() -> INVITE on the wire, p50 (n={len(lat)})",
            "< 20 ms",
            f"{pct(lat, 0.5):.2f} ms (p99 {pct(lat, 0.99):.2f}, max {max(lat):.2f})",
        )
    if warm in first:
        res.note(f"first dial (not counted): {(first[warm] - called[warm]) * 1000:.2f} ms")
    res.note(f"dial() reply (call_id back) p50 {pct(returned[1:], 0.5):.2f} ms")
    res.note(
        f"callee saw {len(uas.invites())} INVITEs (stand-in forward_to); ended events: "
        + ", ".join(f"{k} x{n}" for k, n in ended.items())
    )
    lost = [n for n in called if n not in first]
    if lost:
        res.note(f"{len(lost)} dials without an INVITE on the wire: {lost[:5]}")
    for text in failures:
        res.note(text)
    notable = log.notable(log0)
    if notable:
        joined = "\n      ".join(notable)
        res.note(f"engine stderr during the dials (count x line):\n      {joined}")


async def bench_idle(line: Line, seconds: float, fresh_kb: int, res: Results) -> None:
    """3./4. CPU of the idle registered engine; its RSS above a bare Python."""
    print(f"[3] idle registered engine for {seconds:g} s ...", flush=True)
    pid = line.pid
    await asyncio.sleep(1.0)
    ticks0, t0 = cpu_ticks(pid), time.monotonic()
    await asyncio.sleep(seconds)
    ticks1, t1 = cpu_ticks(pid), time.monotonic()
    hz = os.sysconf("SC_CLK_TCK")
    cpu = (ticks1 - ticks0) / hz / (t1 - t0) * 100
    res.row(
        f"CPU, idle registered engine over {t1 - t0:.0f} s",
        "< 0.2 % of a core",
        f"{cpu:.3f} % ({ticks1 - ticks0} ticks of 1/{hz} s; "
        f"1 tick = {1 / hz / (t1 - t0) * 100:.3f} %)",
    )
    print("[4] resident memory ...", flush=True)
    bare = subprocess.Popen(  # noqa: ASYNC220  a sleeping process, reaped below
        [sys.executable, "-c", "import time; time.sleep(30)"]
    )
    try:
        await asyncio.sleep(1.0)
        bare_kb = status_kb(bare.pid, "VmRSS")
    finally:
        bare.kill()
        bare.wait()
    rss = status_kb(pid, "VmRSS")
    res.row(
        "engine RSS minus bare `python -c` RSS, after the calls",
        "< 20 MB",
        f"{(rss - bare_kb) / 1024:.1f} MB (engine {rss / 1024:.1f}, bare {bare_kb / 1024:.1f})",
    )
    res.row(
        "  same, right after registering (no call yet)",
        "< 20 MB",
        f"{(fresh_kb - bare_kb) / 1024:.1f} MB (engine {fresh_kb / 1024:.1f})",
    )


async def bench_burst(
    line: Line,
    kam: Kamailio,
    workdir: Path,
    calls: int,
    rate: float,
    ring: float,
    hang_up: bool,
    res: Results,
    log: EngineLog,
) -> None:
    """5. `calls` INVITEs at `rate`/s; count ringing events and final SIP answers."""
    how = "each hung up on its ringing event" if hang_up else f"all left ringing {ring:g} s"
    print(f"[5] {calls} calls at {rate:g}/s in one SIPp, {how} ...", flush=True)
    assert line.client is not None
    client = line.client
    ringing: set[str] = set()
    tasks: list[asyncio.Task[Any]] = []

    def hook(stamp: float, event: Event) -> None:
        if isinstance(event, CallEvent) and event.state == CallState.RINGING:
            ringing.add(event.call_id)
            if hang_up:
                tasks.append(asyncio.ensure_future(client.hangup(event.call_id)))

    since = len(line.events)
    log0 = len(log.lines)
    sipp = RateSipp(workdir, calls, rate)
    line.hooks.append(hook)
    t0 = time.monotonic()
    try:
        run = sipp.call_line(kam, caller="+31620000000", name="Burst", ring_seconds=ring)
        code = await run.async_wait(ring + 40)
    finally:
        line.hooks.remove(hook)
        sipp.stop_all()
    elapsed = time.monotonic() - t0
    hangups = await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0.5)
    # Per SIPp call (Call-ID): every INVITE answer it received.
    answers: dict[str, list[int]] = {}
    invited: set[str] = set()
    for msg in run.messages():
        call_id = (msg.header("Call-ID") or msg.header("i") or [""])[0]
        if msg.direction == "sent" and msg.method == "INVITE":
            invited.add(call_id)
        if msg.direction == "received" and msg.code is not None and msg.cseq_method == "INVITE":
            answers.setdefault(call_id, []).append(msg.code)
    finals = Counter(
        next((c for c in codes if c >= 200), 0) for cid, codes in answers.items() if cid in invited
    )
    no_final = [cid for cid in invited if not any(c >= 200 for c in answers.get(cid, []))]
    ringing_180 = sum(1 for cid in invited if 180 in answers.get(cid, []))
    events = [e for _, e in line.events[since:]]
    ended = [e for e in events if isinstance(e, CallEvent) and e.state == CallState.ENDED]
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    lost = len(invited) - len(ringing)
    label = "hung up at once" if hang_up else f"ringing {ring:g} s"
    res.row(
        f"{calls} INVITEs at {rate:g}/s ({label}): ringing events",
        f"{calls} of {calls}, 0 lost",
        f"{len(ringing)} of {len(invited)} sent, {lost} without a ringing event",
    )
    codes_text = ", ".join(f"{c}x{n}" if c else f"none x{n}" for c, n in sorted(finals.items()))
    res.row(
        "  SIP final answers the callers got",
        f"{calls} (487 or 603)",
        f"{sum(n for c, n in finals.items() if c)}: {codes_text}; 180 seen by {ringing_180}",
    )
    res.note(
        f"burst {label}: SIPp exit {code} after {elapsed:.1f} s; engine events: "
        f"{len(ended)} ended, {len(errors)} errors "
        f"{[f'{e.code}: {e.message}' for e in errors][:3]}; "
        f"hangup() failures {sum(1 for h in hangups if isinstance(h, BaseException))}"
    )
    if no_final:
        res.note(f"{len(no_final)} calls without a final answer (Call-IDs {no_final[:3]})")
    notable = log.notable(log0)
    if notable:
        res.note(
            "engine stderr, warnings/errors (count x line):\n      " + "\n      ".join(notable)
        )
    try:
        await client.ping()
        alive = "yes"
    except Exception as err:  # reported, not raised
        alive = f"no ({err})"
    res.note(
        f"engine alive after the burst: {alive}; VmHWM {status_kb(line.pid, 'VmHWM') / 1024:.1f} MB"
    )


async def bench_cycles(kam: Kamailio, settings: LineSettings, cycles: int, res: Results) -> None:
    """6. start (until registered) / stop cycles of engine + client."""
    print(f"[6] {cycles} start/register/stop cycles ...", flush=True)

    async def one() -> tuple[float, float, int | None, bool]:
        line = Line(settings)
        t0 = time.monotonic()
        await line.start()
        t1 = time.monotonic()
        pid = line.pid
        assert line.client is not None
        await line.client.stop()
        t2 = time.monotonic()
        proc = line.client._proc  # the client has no public exit code
        code = proc.returncode if proc is not None else None
        return t1 - t0, t2 - t1, code, Path(f"/proc/{pid}").exists()

    await one()  # warm-up: the loop's lazily created resources
    await asyncio.sleep(0.2)
    fds0, threads0 = fd_count(), threading.active_count()
    starts: list[float] = []
    stops: list[float] = []
    codes: Counter[int | None] = Counter()
    leftovers = 0
    failures: list[str] = []
    t0 = time.monotonic()
    for i in range(cycles):
        try:
            start, stop, code, left = await one()
        except Exception as err:  # reported, the run goes on
            failures.append(f"cycle {i}: {type(err).__name__}: {err}")
            continue
        starts.append(start)
        stops.append(stop)
        codes[code] += 1
        leftovers += left
    per = (time.monotonic() - t0) / max(cycles, 1)
    await asyncio.sleep(0.2)
    fds1, threads1 = fd_count(), threading.active_count()
    res.row(
        f"{cycles} start/stop cycles: time per cycle",
        "-",
        f"{per * 1000:.0f} ms (start->registered p50 {pct(starts, 0.5) * 1000:.0f} ms, "
        f"stop p50 {pct(stops, 0.5) * 1000:.0f} ms, max {max(stops, default=0) * 1000:.0f})",
    )
    res.row(
        "  client fds before/after; threads",
        "equal",
        f"{fds0} -> {fds1}; threads {threads0} -> {threads1}",
    )
    res.row(
        "  engine exit codes",
        f"0 x{cycles}",
        ", ".join(f"{c} x{n}" for c, n in codes.items())
        + f"; processes left alive {leftovers}; failed cycles {len(failures)}",
    )
    for text in failures[:5]:
        res.note(text)


async def main(args: argparse.Namespace) -> int:
    log = EngineLog()
    client_logger = logging.getLogger("kpn_line.client")
    client_logger.setLevel(logging.DEBUG)
    client_logger.addHandler(log)
    client_logger.propagate = args.verbose
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    for tool in ("kamailio", "sipp", "tcpdump"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: run through benchmarks/run", file=sys.stderr)
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="kpn-bench-"))
    sipp = Sipp(workdir)
    res = Results()
    kam: Kamailio | None = None
    cap: Capture | None = None
    line: Line | None = None
    started = time.monotonic()
    try:
        # The line's calls go to this callee: it rings until CANCEL, or answers at once.
        uas = sipp.uas(answer_after=None if args.dial_cancel else 0.001, rtp_echo=False)
        kam = Kamailio(lockout_seconds=0, forward_to=uas.address)
        kam.start()
        engine_port = free_udp_port()
        settings = kam.line_settings(local_port=engine_port)
        cap = Capture(bpf=f"udp and (port {engine_port} or port {kam.port})")
        cap.start()
        line = Line(settings)
        await line.start()
        fresh_kb = status_kb(line.pid, "VmRSS")
        print(
            f"engine pid {line.pid} registered at the stand-in 127.0.0.1:{kam.port} "
            f"from port {engine_port}",
            flush=True,
        )
        await bench_incoming(line, kam, sipp, cap, engine_port, args.calls, res)
        await bench_dial(line, uas, cap, engine_port, args.dials, res, log, cancel=args.dial_cancel)
        cap.stop()
        await bench_idle(line, args.idle, fresh_kb, res)
        await bench_burst(line, kam, workdir, args.burst, args.rate, 3.0, False, res, log)
        await bench_burst(line, kam, workdir, args.burst, args.fast_rate, 3.0, True, res, log)
        assert line.client is not None
        await line.client.stop()
        line = None
        await bench_cycles(kam, settings, args.cycles, res)
    finally:
        if line is not None and line.client is not None:
            await line.client.stop()
        if cap is not None:
            cap.cleanup()
        sipp.stop_all()
        if kam is not None:
            kam.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(res, time.monotonic() - started)
    return 0


def print_table(res: Results, elapsed: float) -> None:
    """The summary: one row per figure, target beside measured."""
    w1 = max(len(r[0]) for r in res.rows)
    w2 = max(len(r[1]) for r in res.rows)
    print(f"\n{'figure':<{w1}}  {'target':<{w2}}  measured")
    print(f"{'-' * w1}  {'-' * w2}  {'-' * 8}")
    for what, target, measured in res.rows:
        print(f"{what:<{w1}}  {target:<{w2}}  {measured}")
    print(f"\nnotes ({TEST_ACCOUNT.number} on loopback, run took {elapsed:.0f} s):")
    for text in res.notes:
        print(f"- {text}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line: sizes of each benchmark; --quick shrinks them."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/run", description="Line engine figures on loopback (no pass/fail)."
    )
    parser.add_argument("--quick", action="store_true", help="fewer calls, shorter idle, 20 cycles")
    parser.add_argument("--calls", type=int, help="incoming calls for [1] (100; quick 30)")
    parser.add_argument("--dials", type=int, help="dials for [2] (30; quick 10)")
    parser.add_argument(
        "--dial-cancel",
        action="store_true",
        help="[2]: hang up while the callee rings (CANCEL) instead of after it answered",
    )
    parser.add_argument("--idle", type=float, help="idle seconds for [3] (30; quick 10)")
    parser.add_argument("--burst", type=int, default=50, help="calls in the burst [5] (50)")
    parser.add_argument("--rate", type=float, default=50, help="burst rate, calls/s (50)")
    parser.add_argument(
        "--fast-rate", type=float, default=1000, help="rate of the hang-up burst (1000)"
    )
    parser.add_argument("--cycles", type=int, help="start/stop cycles for [6] (100; quick 20)")
    parser.add_argument("--verbose", action="store_true", help="also print the engine's stderr")
    args = parser.parse_args(argv)
    quick = args.quick
    for name, full, short in (
        ("calls", 100, 30),
        ("dials", 30, 10),
        ("idle", 30.0, 10.0),
        ("cycles", 100, 20),
    ):
        if getattr(args, name) is None:
            setattr(args, name, short if quick else full)
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
