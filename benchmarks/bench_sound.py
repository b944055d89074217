"""Sound benchmarks (issue 11): the engine against a second pjsua2 via the stand-in.

Prints figures, never pass/fail.  Run with `benchmarks/run --sound [--quick]`
(inside the project's environment).  The line registers at the stand-in
(kpn_devtools.kamailio) and dials a far end (kpn_devtools.farend, a second
pjsua2 that answers); tcpdump (kpn_devtools.capture) has every packet.

1. 200 OK -> first played RTP packet: the far end's 200 OK (as the stand-in
   relays it to the line) to the first RTP packet of the line whose audio is
   no longer silence, when the client sends `play` on the `answered` event
   (what kpn_voip.dial with a message does).  Goal < 100 ms.
2. RTP send intervals while the client's event loop (Home Assistant's, in
   real use) is kept busy: the loop runs 50 ms blocking bursts back to back
   for the measured window; p50 / p99 / max of |interval - 20 ms|.  Goal p99 < 1 ms.
3. Engine CPU during a call, as % of one core (utime + stime from /proc over
   the window): silence only, a file playing (loops=0), a recording, both.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Sequence
import contextlib
import itertools
import math
from pathlib import Path
import shutil
import statistics
import tempfile
import time

from kpn_devtools.capture import Capture
from kpn_devtools.farend import FarEnd
from kpn_devtools.kamailio import Kamailio
from kpn_devtools.sound import chirp, decode_alaw, parse_rtp, write_wav
from kpn_line.client import EngineClient
from kpn_line.protocol import CallEvent, CallState, Event, RegistrationEvent, RegState

PCMA = 8


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def cpu_ticks(pid: int) -> int:
    """utime + stime of `pid`, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


class Bench:
    """One line (engine + client) and the events it delivered."""

    def __init__(self) -> None:
        self.events: list[tuple[float, Event]] = []
        self.changed = asyncio.Event()
        self.client = EngineClient(on_event=self.on_event, ping_interval=0)
        self.on_answered: list[str] = []
        self.play_file: str | None = None

    def on_event(self, event: Event) -> None:
        self.events.append((time.time(), event))
        self.changed.set()
        if (
            isinstance(event, CallEvent)
            and event.state is CallState.ANSWERED
            and self.play_file is not None
        ):
            asyncio.get_running_loop().create_task(self.client.play(event.call_id, self.play_file))

    async def wait(self, check: Callable[[Event], bool], timeout: float = 10.0) -> Event:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while True:
            for _, event in self.events:
                if check(event):
                    return event
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no such event")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)


async def run(seconds: float) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="kpn-bench-sound-"))
    src = write_wav(workdir / "chirp.wav", chirp(2.0, lead=0.0))
    far = FarEnd(answer_after=0.2, timeout=600)
    kam = Kamailio(lockout_seconds=0, forward_to=far.address)
    kam.start()
    cap = Capture(bpf="udp")
    cap.start()
    bench = Bench()
    try:
        await bench.client.start(kam.line_settings())
        await bench.wait(
            lambda e: isinstance(e, RegistrationEvent) and e.state is RegState.REGISTERED, 20
        )
        # 1. 200 OK -> first played RTP packet
        bench.play_file = str(src)
        call_id = await bench.client.dial("0612345678")
        await bench.wait(
            lambda e: isinstance(e, CallEvent)
            and e.call_id == call_id
            and e.state is CallState.ANSWERED
        )
        await asyncio.sleep(1.0)
        bench.play_file = None
        media = next(e for e in far.events if e["event"] == "media")
        line_port, far_port = media["remote_rtp_port"], media["rtp_port"]
        packets = cap.packets()
        oks = [
            p.time
            for p in packets
            if p.payload.startswith(b"SIP/2.0 200")
            and b" INVITE\r\n" in p.payload
            and p.sport == kam.port
        ]
        loud = []
        for p in packets:
            if p.sport == line_port and p.dport == far_port:
                rtp = parse_rtp(p.payload, p.time)
                if (
                    rtp
                    and rtp.payload_type == PCMA
                    and max(map(abs, decode_alaw(rtp.payload))) > 1000
                ):
                    loud.append(p.time)
        if oks and loud:
            print(f"1. 200 OK -> first played RTP packet: {(loud[0] - oks[-1]) * 1000:.1f} ms")
        else:
            print("1. 200 OK -> first played RTP packet: not seen")
        # 3a. CPU: silence only (after the chirp)
        pid = bench.client.pid
        assert pid is not None
        hz = 100
        await asyncio.sleep(1.5)
        t0, c0 = time.monotonic(), cpu_ticks(pid)
        await asyncio.sleep(seconds)
        silence_cpu = (cpu_ticks(pid) - c0) / hz / (time.monotonic() - t0) * 100
        # 2. RTP send intervals while the event loop is kept busy (silence going out)
        start = time.time()
        end = start + seconds
        while time.time() < end:
            busy_until = time.perf_counter() + 0.05
            while time.perf_counter() < busy_until:
                pass  # the client's (Home Assistant's) loop does not run
            await asyncio.sleep(0)
        times = [
            p.time
            for p in cap.packets()
            if p.sport == line_port and p.dport == far_port and start <= p.time <= end
        ]
        jitter = [abs((b - a) * 1000 - 20.0) for a, b in itertools.pairwise(times)]
        print(
            f"2. RTP send interval |x - 20 ms| with the event loop busy ({len(times)} packets):"
            f" p50 {pct(jitter, 0.5):.3f} ms, p99 {pct(jitter, 0.99):.3f} ms,"
            f" max {max(jitter, default=float('nan')):.3f} ms;"
            f" median interval {statistics.median([j + 20 for j in jitter]):.3f} ms"
        )
        # 3b-d. CPU with a playback, a recording, both
        figures = {"silence": silence_cpu}
        await bench.client.play(call_id, str(src), loops=0)
        await asyncio.sleep(0.5)
        t0, c0 = time.monotonic(), cpu_ticks(pid)
        await asyncio.sleep(seconds)
        figures["playing"] = (cpu_ticks(pid) - c0) / hz / (time.monotonic() - t0) * 100
        await bench.client.stop_playback(call_id)
        await bench.client.record(call_id, str(workdir / "rec.wav"), max_seconds=3600)
        await asyncio.sleep(0.5)
        t0, c0 = time.monotonic(), cpu_ticks(pid)
        await asyncio.sleep(seconds)
        figures["recording"] = (cpu_ticks(pid) - c0) / hz / (time.monotonic() - t0) * 100
        await bench.client.play(call_id, str(src), loops=0)
        await asyncio.sleep(0.5)
        t0, c0 = time.monotonic(), cpu_ticks(pid)
        await asyncio.sleep(seconds)
        figures["playing+recording"] = (cpu_ticks(pid) - c0) / hz / (time.monotonic() - t0) * 100
        print(
            "3. engine CPU during a call (% of one core): "
            + ", ".join(f"{k} {v:.2f} %" for k, v in figures.items())
        )
        await bench.client.hangup(call_id)
    finally:
        far.stop()
        await bench.client.stop()
        cap.cleanup()
        kam.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sound benchmarks; print the figures."""
    parser = argparse.ArgumentParser(prog="benchmarks/run --sound")
    parser.add_argument("--quick", action="store_true", help="3 s windows instead of 10 s")
    args = parser.parse_args(argv)
    asyncio.run(run(3.0 if args.quick else 10.0))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
