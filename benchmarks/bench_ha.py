"""Incoming call through a real Home Assistant: INVITE on the wire -> sensor and bus event.

Prints figures, never pass/fail (issue 11).  Run with `benchmarks/run --ha
[--quick] [--calls N] [--bare] [--trace]` (inside the project's environment).

Home Assistant core (the environment's version) is started in this process by
its own bootstrap (`bootstrap.async_setup_hass` on a temporary config folder,
its own event loop from `runner.create_event_loop`), the integration is linked
into that folder's custom_components and its entry is made through the real
config flow (one test REGISTER) against the Kamailio stand-in
(kpn_devtools.kamailio) on 127.0.0.1.  Calls come from SIPp
(kpn_devtools.sipp) through the stand-in, one at a time; tcpdump
(kpn_devtools.capture) records the stand-in's SIP port, so the INVITE's time is
the kernel's time stamp of the packet on `lo` (CLOCK_REALTIME), compared with
`time.time()` (CLOCK_REALTIME too) taken first thing in @callback listeners on
Home Assistant's bus: same clock, same machine.

Unless --no-voip, the same Home Assistant's own `voip` integration gets one
INVITE straight to its SIP port after each of our calls (bench_ha_voip.py,
interleaved: the pair sees the same machine), and both figures are printed one
under the other, with the difference of each pair.

See benchmarks/README.md for what each figure measures exactly.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
import functools
import io
import itertools
import json
import logging
import os
from pathlib import Path
import re
import shutil
import socket
import sys
import tempfile
import time
from typing import Any

from homeassistant import bootstrap, runner
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from benchmarks import bench_ha_voip
from benchmarks.stats import pct, sip_first_line
import custom_components.kpn_voip  # noqa: F401  before kpn_devtools: its name for kpn_line
from custom_components.kpn_voip.kpn_line.client import LineReader
from custom_components.kpn_voip.kpn_line.profile import K19_RTP_PORT_MAX, K19_RTP_PORT_MIN
from custom_components.kpn_voip.kpn_line.protocol import MAX_LINE_BYTES
from kpn_devtools.capture import Capture, Packet
from kpn_devtools.kamailio import TEST_ACCOUNT, Kamailio
from kpn_devtools.sipp import Sipp

DOMAIN = "kpn_voip"
EVENT_CALL = f"{DOMAIN}_call"
TRACE_VARIABLE = "KPN_BENCH_TRACE"  # benchmarks/engine_trace.py writes its stamps there
_CALLER = re.compile(rb"\+316300\d{5}")
RTP_CALLER = "+31630099999"  # the answered call of rtp_while_busy (not in the figures)

CONFIG_BARE = """\
homeassistant:
  name: kpn_voip benchmark
  time_zone: Europe/Amsterdam
  country: NL
logger:
  default: warning
"""
# What a typical installation has listening on the bus besides the integration.
CONFIG_USUAL = (
    CONFIG_BARE
    + """\
recorder:
history:
logbook:
"""
)


# The control: a child Python writes its time.time() to a pipe every 10 ms; Home
# Assistant's loop reads the lines as the engine client does (a pipe read by
# kpn_line.client.LineReader, each line handed on inside data_received).  What that
# takes is the process boundary's share.
PIPE_CHILD = """\
import sys, time
for _ in range(int(sys.argv[1])):
    time.sleep(0.01)
    sys.stdout.write(repr(time.time()) + "\\n")
    sys.stdout.flush()
"""


async def pipe_floor(count: int) -> list[float]:
    """ms from a child's write to its line in this loop, `count` lines (first left out)."""
    delays: list[float] = []

    def on_line(line: bytes) -> None:
        delays.append((time.time() - float(line)) * 1000)

    read_fd, write_fd = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PIPE_CHILD, str(count + 1), stdout=write_fd
        )
    finally:
        os.close(write_fd)
    reader = LineReader(on_line, MAX_LINE_BYTES)
    pipe = io.FileIO(read_fd, "rb")
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(lambda: reader, pipe)
    try:
        await reader.closed
    finally:
        transport.close()
    await proc.wait()
    return delays[1:]


def cpu_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Stamps:
    """time.time() stamps per caller number, taken by the listeners."""

    current: str = ""  # the caller of the call in progress (calls are one at a time)
    client: dict[str, float] = field(default_factory=dict)  # the coordinator got the event
    engine: dict[str, float] = field(default_factory=dict)  # the engine's event `time`
    sensor: dict[str, float] = field(default_factory=dict)  # call_state -> ringing
    entity: dict[str, float] = field(default_factory=dict)  # event entity: incoming_call
    bus: dict[str, float] = field(default_factory=dict)  # kpn_voip_call incoming_call
    call_ids: dict[str, str] = field(default_factory=dict)
    # --trace: per call, (what, start, end) of the coordinator's handling and each state write
    steps: dict[str, list[tuple[str, float, float]]] = field(default_factory=dict)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    rang: asyncio.Event = field(default_factory=asyncio.Event)

    def complete(self, caller: str) -> bool:
        return caller in self.sensor and caller in self.bus and caller in self.call_ids


def listen(hass: HomeAssistant, stamps: Stamps, call_state: str, event_entity: str) -> None:
    """@callback listeners: they run inside the bus's fire, so the stamp is the fire time."""

    @callback
    def state_changed(event: Event[Any]) -> None:
        now = time.time()
        entity_id = event.data["entity_id"]
        new = event.data["new_state"]
        if new is None:
            return
        if entity_id == call_state:
            if new.state == "ringing":
                stamps.sensor.setdefault(stamps.current, now)
                stamps.rang.set()
            elif new.state == "idle":
                stamps.idle.set()
        elif entity_id == event_entity and new.attributes.get("event_type") == "incoming_call":
            stamps.entity.setdefault(str(new.attributes.get("number")), now)

    @callback
    def call_event(event: Event[Any]) -> None:
        now = time.time()
        if event.data.get("event_type") == "incoming_call":
            stamps.bus.setdefault(str(event.data.get("number")), now)
            stamps.rang.set()

    hass.bus.async_listen(EVENT_STATE_CHANGED, state_changed)
    hass.bus.async_listen(EVENT_CALL, call_event)


def hook_coordinator(coordinator: Any, stamps: Stamps) -> None:
    """Stamp the coordinator's receipt of each engine event (its bound method, wrapped).

    The stamp is all it takes before the event goes on; what it belongs to is noted
    after the coordinator is done, so the wrapper adds as little as it can to (a)
    (which it sits in the middle of).
    """
    original = coordinator._handle_event  # the client's on_event looks it up per event

    def handle_event(generation: int, event: Any) -> None:
        now = time.time()
        original(generation, event)
        if getattr(event, "state", None) == "ringing":
            number = str(event.caller.number)
            stamps.client.setdefault(number, now)
            stamps.engine.setdefault(number, event.time)
            stamps.call_ids[number] = event.call_id

    coordinator._handle_event = handle_event


WHOLE_EVENT = "coordinator: the whole event"
DECODE = "client: decode the line"


def trace_home_assistant(coordinator: Any, stamps: Stamps) -> None:
    """--trace: time every entity state write and the coordinator's call handling."""
    from homeassistant.helpers.entity import Entity  # only with --trace

    steps: list[tuple[str, float, float]] | None = None
    write_state = Entity.async_write_ha_state

    def async_write_ha_state(self: Entity) -> None:
        start = time.time()
        write_state(self)
        if steps is not None:
            steps.append((f"write {self.entity_id}", start, time.time()))

    Entity.async_write_ha_state = async_write_ha_state  # type: ignore[misc,method-assign]
    from custom_components.kpn_voip.kpn_line import client

    decode = client.decode  # looked up by the client per line

    def traced_decode(line: bytes | str) -> Any:
        start = time.time()
        message = decode(line)
        if getattr(message, "state", None) == "ringing":
            number = str(message.caller.number)
            stamps.steps.setdefault(number, []).append((DECODE, start, time.time()))
        return message

    client.decode = traced_decode
    handle = coordinator._handle_event

    def handle_event(generation: int, event: Any) -> None:
        nonlocal steps
        if getattr(event, "state", None) != "ringing":
            handle(generation, event)
            return
        steps = stamps.steps.setdefault(str(event.caller.number), [])
        start = time.time()
        try:
            handle(generation, event)
        finally:
            steps.append((WHOLE_EVENT, start, time.time()))
            steps = None

    coordinator._handle_event = handle_event


def report_home_assistant(stamps: Stamps, warm: set[str]) -> None:
    """--trace: duration of each step inside Home Assistant, ms (p50 / p99)."""
    durations: dict[str, list[float]] = {}
    before_write: list[float] = []  # the coordinator's start -> the call state write's start
    to_decode: list[float] = []  # the engine's event time -> the client's decode starts
    for caller, steps in stamps.steps.items():
        if caller in warm:
            continue
        to_decode.extend(
            (start - stamps.engine[caller]) * 1000
            for what, start, _ in steps
            if what == DECODE and caller in stamps.engine
        )
        for what, start, end in steps:
            durations.setdefault(what, []).append((end - start) * 1000)
        starts = {what: start for what, start, _ in steps}
        write = next((t for what, t in starts.items() if what.endswith("_call_state")), None)
        if write is not None and WHOLE_EVENT in starts:
            before_write.append((write - starts[WHOLE_EVENT]) * 1000)
    print("inside Home Assistant (--trace; each step's own duration, in call order), ms:")
    for what, values in durations.items():
        print(row(what, values))
    print(row("coordinator's start -> call state write starts", before_write))
    print(row("engine's event time -> the client's decode starts", to_decode))


def write_config(config_dir: Path, *, bare: bool, http_port: int | None = None) -> None:
    """configuration.yaml; the integration is the checkout's (imported above).

    http_port: HA's http on a free port (HA's voip needs http; 8123 may be taken).
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    text = CONFIG_BARE if bare else CONFIG_USUAL
    if http_port is not None:
        text += f"http:\n  server_host: 127.0.0.1\n  server_port: {http_port}\n"
    (config_dir / "configuration.yaml").write_text(text)


async def add_entry(hass: HomeAssistant, kam: Kamailio) -> Any:
    """The line's entry through the real config flow (one test REGISTER), set up."""
    flow = await hass.config_entries.flow.async_init(DOMAIN, context={"source": "user"})
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"],
        {
            "number": TEST_ACCOUNT.number,
            "username": TEST_ACCOUNT.username,
            "password": TEST_ACCOUNT.password,
            "display_name": "Bench",
            "advanced": {"proxy_host": kam.host, "proxy_port": kam.port},
        },
    )
    while result.get("type") == "progress":  # the login test's progress step
        await hass.async_block_till_done()
        result = await hass.config_entries.flow.async_configure(flow["flow_id"])
    if result.get("type") != "create_entry":
        raise RuntimeError(f"config flow did not create the entry: {result.get('errors')}")
    await hass.async_block_till_done()
    return result["result"]


def entity_ids(hass: HomeAssistant, entry_id: str) -> tuple[str, str, str]:
    """(line status sensor, call state sensor, call event entity) of the entry."""
    registry = er.async_get(hass)
    by_key = {
        e.unique_id.removeprefix(f"{entry_id}_"): e.entity_id
        for e in er.async_entries_for_config_entry(registry, entry_id)
    }
    return by_key["line_status"], by_key["call_state"], by_key["call"]


async def blocking[T](func: Callable[..., T], *args: Any) -> T:
    """`func(*args)` in the executor: Home Assistant refuses blocking calls in its loop."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(func, *args))


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:  # noqa: ASYNC109
    """Let the loop run until check() holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.02)


def wire_times(
    packets: list[Packet], kam_port: int
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Per caller: INVITE SIPp -> stand-in, INVITE stand-in -> engine, 180 engine -> stand-in."""
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    ringing: dict[str, float] = {}
    for packet in packets:
        m = _CALLER.search(packet.payload)
        if m is None:
            continue
        caller = m.group().decode()
        first = sip_first_line(packet)
        if first.startswith("INVITE "):
            if packet.dport == kam_port:
                sent.setdefault(caller, packet.time)
            elif packet.sport == kam_port:
                arrived.setdefault(caller, packet.time)
        elif first.startswith("SIP/2.0 180") and packet.dport == kam_port:
            ringing.setdefault(caller, packet.time)
    return sent, arrived, ringing


def row(label: str, values: list[float]) -> str:
    """One line of figures (ms): n, p50, p90, p99, max."""
    if not values:
        return f"  {label:<44} no samples"
    return (
        f"  {label:<44} n={len(values):<4} p50 {pct(values, 0.5):6.3f}  p90 {pct(values, 0.9):6.3f}"
        f"  p99 {pct(values, 0.99):6.3f}  max {max(values):7.3f}"
    )


def report(stamps: Stamps, packets: list[Packet], kam_port: int, warm: set[str]) -> None:
    """The figures, in ms, from the INVITE at the engine's port; warm-up calls left out."""
    sent, arrived, ringing = wire_times(packets, kam_port)
    callers = [c for c in stamps.call_ids if c not in warm]

    def span(start: dict[str, float], end: dict[str, float]) -> list[float]:
        return [(end[c] - start[c]) * 1000 for c in callers if c in start and c in end]

    print("\nINVITE on the wire (at the engine's port) -> Home Assistant, ms:")
    print(row("(a) call state sensor state_changed 'ringing'", span(arrived, stamps.sensor)))
    print(row("(b) kpn_voip_call event (incoming_call)", span(arrived, stamps.bus)))
    print(row("    event entity state_changed", span(arrived, stamps.entity)))
    print("where the time goes (each from the previous stamp), ms:")
    print(row("INVITE at engine -> 180 leaves engine", span(arrived, ringing)))
    print(row("INVITE at engine -> engine's event time", span(arrived, stamps.engine)))
    print(row("engine's event time -> coordinator got it", span(stamps.engine, stamps.client)))
    print(row("coordinator got it -> sensor state_changed", span(stamps.client, stamps.sensor)))
    print(row("sensor state_changed -> kpn_voip_call event", span(stamps.sensor, stamps.bus)))
    print("for comparison:")
    print(row("SIPp's INVITE -> at engine (stand-in hop)", span(sent, arrived)))
    print(row("SIPp's INVITE -> (a) sensor", span(sent, stamps.sensor)))
    missing = [c for c in callers if c not in arrived]
    if missing:
        print(f"  {len(missing)} calls without a captured INVITE: {missing[:3]}")


def report_voip(
    stamps: Stamps,
    packets: list[Packet],
    kam_port: int,
    warm: set[str],
    voip: bench_ha_voip.VoipFigures,
) -> None:
    """Ours and HA's voip (SIP stack in HA's loop) one under the other, ms."""
    _, arrived, ringing = wire_times(packets, kam_port)
    callers = [c for c in stamps.call_ids if c not in warm]

    def span(start: dict[str, float], end: dict[str, float]) -> list[float]:
        return [(end[c] - start[c]) * 1000 for c in callers if c in start and c in end]

    print("side by side, INVITE on the wire -> ... (same HA, calls interleaved), ms:")
    if voip.failed:
        print(f"  HA's voip: not measured: {voip.failed}")
        return
    print(row("ours: call state sensor state_changed", span(arrived, stamps.sensor)))
    # Like for like with voip's figure: the call in HA's loop, before any entity write.
    print(row("ours: the coordinator has the call in HA's loop", span(arrived, stamps.client)))
    print(row("HA voip: its code has the call in HA's loop", voip.in_loop))
    print(row("ours: 180 Ringing leaves the engine", span(arrived, ringing)))
    print(row(f"HA voip: {voip.response[8:] or 'response'} leaves", voip.answered))
    print("each of our calls minus the voip call right after it (same machine state), ms:")
    for label, ours in (
        ("coordinator has it - voip has it", stamps.client),
        ("(a) sensor - voip has it", stamps.sensor),
    ):
        pairs = [
            (ours[c] - arrived[c]) * 1000 - voip.in_loop_by_call[i]
            for i, c in ((i, caller_of(i)) for i in voip.in_loop_by_call)
            if c in ours and c in arrived and c not in warm
        ]
        print(row(label, pairs))


def report_trace(path: Path, stamps: Stamps, packets: list[Packet], kam_port: int) -> None:
    """The engine's own stamps (benchmarks/engine_trace.py), per call id."""
    if not path.exists():
        print("no engine trace written")
        return
    _, arrived, _ = wire_times(packets, kam_port)
    by_call = {cid: c for c, cid in stamps.call_ids.items()}
    steps: dict[str, list[float]] = {}
    order: list[str] = []
    for text in path.read_text().splitlines():
        record = json.loads(text)
        caller = by_call.get(record.pop("call_id"))
        if caller is None or caller not in arrived:
            continue
        previous = arrived[caller] * 1e9
        label_prev = "INVITE at engine"
        for label, stamp in record.items():
            key = f"{label_prev} -> {label}"
            if key not in steps:
                order.append(key)
            steps.setdefault(key, []).append((stamp - previous) / 1e6)
            previous, label_prev = stamp, label
    print("inside the engine (engine_trace stamps, time.time_ns), ms:")
    for key in order:
        print(row(key, steps[key][1:]))


def caller_of(index: int) -> str:
    """The caller number of our call `index` (0, 1: warm-up)."""
    return f"+316300{index:05d}"


async def run_calls(
    hass: HomeAssistant,
    coordinator: Any,
    kam: Kamailio,
    sipp: Sipp,
    stamps: Stamps,
    calls: int,
    voip: bench_ha_voip.VoipRun | None = None,
) -> set[str]:
    """Calls one at a time; each hung up from Home Assistant after its bus event.

    With `voip`, one call to HA's voip follows each of ours (same index).
    """
    warm: set[str] = set()
    runs = []
    for i in range(calls + 2):  # two warm-up calls, left out of the figures
        caller = caller_of(i)
        if i < 2:
            warm.add(caller)
        stamps.current = caller
        stamps.rang.clear()
        stamps.idle.clear()
        run = await blocking(
            functools.partial(
                sipp.call_line, kam, caller=caller, name=f"Bench {i}", ring_seconds=5.0
            )
        )
        runs.append(run)
        await wait_until(functools.partial(stamps.complete, caller), 10.0, f"call {i} did not ring")
        await coordinator.async_hangup(stamps.call_ids[caller])
        await asyncio.wait_for(stamps.idle.wait(), 10.0)
        if voip is not None:
            await voip.call()
        if len(runs) >= 20:  # reap finished SIPps now and then
            await blocking(_reap, runs)
    await blocking(_reap, runs)
    return warm


async def rtp_while_busy(
    hass: HomeAssistant,
    coordinator: Any,
    kam: Kamailio,
    sipp: Sipp,
    stamps: Stamps,
    seconds: float,
) -> list[float]:
    """RTP send intervals (ms) of an answered call while HA's loop is kept busy.

    A SIPp call answered from Home Assistant (`coordinator.async_answer`); once
    its RTP flows, HA's loop runs 50 ms busy bursts back to back (a spin: HA
    refuses time.sleep in its loop) for `seconds`; tcpdump has the engine's RTP
    to SIPp's media ports in that window.  Then SIPp ends the call (BYE).
    """
    caller = RTP_CALLER
    stamps.current = caller
    stamps.idle.clear()
    run = await blocking(
        functools.partial(
            sipp.call_line,
            kam,
            caller=caller,
            name="Bench RTP",
            ring_seconds=10.0,
            answer_expected=True,
            talk_seconds=seconds + 3.0,
            play_audio=False,
        )
    )
    low = int(run.args[run.args.index("-min_rtp_port") + 1])
    high = int(run.args[run.args.index("-max_rtp_port") + 1])
    cap = Capture(bpf=f"udp and dst portrange {low}-{high}")
    await blocking(cap.start)
    try:
        await wait_until(
            functools.partial(stamps.complete, caller), 10.0, "the RTP call did not ring"
        )
        await coordinator.async_answer(stamps.call_ids[caller])
        await asyncio.sleep(1.0)  # the RTP flows
        start = time.time()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            burst = time.perf_counter() + 0.05
            while time.perf_counter() < burst:
                pass  # Home Assistant's loop does nothing else meanwhile
            await asyncio.sleep(0)  # one loop iteration between the bursts
        stop = time.time()
        await asyncio.wait_for(stamps.idle.wait(), seconds + 15.0)
        await asyncio.sleep(0.5)
        await blocking(cap.stop)
        packets = await blocking(cap.packets)
    finally:
        await blocking(cap.cleanup)
    times = sorted(
        p.time
        for p in packets
        if K19_RTP_PORT_MIN <= p.sport <= K19_RTP_PORT_MAX and start <= p.time <= stop
    )
    return [(b - a) * 1000 for a, b in itertools.pairwise(times)]


def _reap(runs: list[Any]) -> None:
    for done in runs:
        with contextlib.suppress(Exception):
            done.wait(10)
    runs.clear()


async def main(args: argparse.Namespace) -> int:
    for tool in ("kamailio", "sipp", "tcpdump"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: run through benchmarks/run --ha", file=sys.stderr)
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="kpn-bench-ha-"))
    trace = workdir / "engine-trace.jsonl"
    if args.trace:
        os.environ[TRACE_VARIABLE] = str(trace)
    sipp = Sipp(workdir)
    kam = Kamailio(lockout_seconds=0)
    cap: Capture | None = None
    hass: HomeAssistant | None = None
    load0 = os.getloadavg()
    try:
        kam.start()
        cap = Capture(bpf=f"udp and port {kam.port}")
        cap.start()
        config_dir = workdir / "config"
        http_port = None
        if args.voip:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                http_port = int(sock.getsockname()[1])
        write_config(config_dir, bare=args.bare, http_port=http_port)
        hass = await bootstrap.async_setup_hass(
            runner.RuntimeConfig(config_dir=str(config_dir), skip_pip=True)
        )
        if hass is None:
            print("Home Assistant did not set up", file=sys.stderr)
            return 1
        await hass.async_start()
        logging.getLogger("custom_components.kpn_voip").setLevel(logging.WARNING)
        entry = await add_entry(hass, kam)
        if args.trace:
            # The engine's command is an advanced option (helpers.engine_command).
            command = [sys.executable, "-m", "benchmarks.engine_trace"]
            hass.config_entries.async_update_entry(
                entry, options={**entry.options, "engine_command": command}
            )
            await hass.config_entries.async_reload(entry.entry_id)
        status, call_state, event_entity = entity_ids(hass, entry.entry_id)
        states = hass.states
        await wait_until(
            lambda: getattr(states.get(status), "state", None) == "registered",
            20.0,
            "the line did not register",
        )
        stamps = Stamps()
        listen(hass, stamps, call_state, event_entity)
        coordinator = entry.runtime_data
        if args.trace:
            trace_home_assistant(coordinator, stamps)
        hook_coordinator(coordinator, stamps)
        print(
            f"Home Assistant {hass.config.as_dict()['version']} "
            f"({'bare' if args.bare else 'recorder, history, logbook'}), "
            f"engine pid {coordinator._client.pid}, {args.calls} calls ...",
            flush=True,
        )
        floor = await pipe_floor(args.calls)
        voip_run: bench_ha_voip.VoipRun | None = None
        if args.voip:
            print("Home Assistant's voip: one call to its SIP port after each of ours", flush=True)
            voip_run = bench_ha_voip.VoipRun(hass, workdir)
            if not await voip_run.start():
                print(f"  HA's voip: not measured: {voip_run.failed}", flush=True)
                voip_run = None
        busy0 = cpu_busy()
        t0 = time.monotonic()
        warm = await run_calls(hass, coordinator, kam, sipp, stamps, args.calls, voip_run)
        elapsed = time.monotonic() - t0
        busy1 = cpu_busy()
        voip: bench_ha_voip.VoipFigures | None = None
        if voip_run is not None:
            voip = await voip_run.finish()
        intervals: list[float] = []
        if args.rtp_seconds > 0:
            print(f"an answered call, HA's loop busy for {args.rtp_seconds:g} s ...", flush=True)
            intervals = await rtp_while_busy(hass, coordinator, kam, sipp, stamps, args.rtp_seconds)
        await hass.async_stop()
        hass = None
        await asyncio.sleep(0.5)  # tcpdump writes each packet at once (-U); settle
        await blocking(cap.stop)
        packets = await blocking(cap.packets)
        report(stamps, packets, kam.port, warm | {RTP_CALLER})
        if voip is not None:
            report_voip(stamps, packets, kam.port, warm | {RTP_CALLER}, voip)
        print("control: the process boundary alone (a child's pipe -> HA's loop), ms:")
        print(row("child writes its time -> its line in HA's loop", floor))
        if args.rtp_seconds > 0:
            print("RTP send interval while HA's loop runs 50 ms busy bursts, |x - 20 ms|, ms:")
            print(row("the engine's RTP to the caller", [abs(x - 20.0) for x in intervals]))
        if args.trace:
            await blocking(report_trace, trace, stamps, packets, kam.port)
            report_home_assistant(stamps, warm)
        busy = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]) * 100
        load1 = os.getloadavg()
        print(
            f"\nmachine: {os.cpu_count()} CPUs busy {busy:.0f} % during the calls "
            f"({elapsed:.0f} s, all processes); load average {load0[0]:.2f} before, "
            f"{load1[0]:.2f} after"
        )
    finally:
        if hass is not None:
            with contextlib.suppress(Exception):
                await hass.async_stop()
        if cap is not None:
            await blocking(cap.cleanup)
        await blocking(sipp.stop_all)
        await blocking(kam.cleanup)
        await blocking(shutil.rmtree, workdir, True)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line: number of calls, Home Assistant's configuration, the engine trace."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/run --ha",
        description="INVITE on the wire -> Home Assistant's sensor and bus event (no pass/fail).",
    )
    parser.add_argument("--quick", action="store_true", help="30 calls instead of 200")
    parser.add_argument("--calls", type=int, help="calls, one at a time (200; quick 30)")
    parser.add_argument(
        "--bare", action="store_true", help="no recorder/history/logbook in Home Assistant"
    )
    parser.add_argument(
        "--rtp-seconds",
        type=float,
        help="seconds of RTP measured with HA's loop busy (10; quick 3; 0: none)",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="engine with time stamps inside (benchmarks/engine_trace.py; adds a little)",
    )
    parser.add_argument(
        "--no-voip",
        dest="voip",
        action="store_false",
        help="without the side by side with HA's own voip integration (bench_ha_voip.py)",
    )
    args = parser.parse_args(argv)
    if args.calls is None:
        args.calls = 30 if args.quick else 200
    if args.rtp_seconds is None:
        args.rtp_seconds = 3.0 if args.quick else 10.0
    return args


def run(argv: list[str] | None = None) -> int:
    """Home Assistant's own event loop (runner.create_event_loop), as `hass` has it."""
    args = parse_args(argv)
    loop = runner.create_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main(args))
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


if __name__ == "__main__":
    sys.exit(run())
