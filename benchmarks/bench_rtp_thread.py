"""The engine's RTP worker thread: what it costs while idle, what it saves in recordings.

Issue 11 gave the engine one pjmedia worker thread (kpn_line/pjconfig.py:
medConfig.threadCnt = 1, hasIoqueue = True) that reads RTP in C, so that a
recording does not lose frames while the engine's Python thread is busy.
pjmedia's worker polls its ioqueue with a fixed 10 ms timeout (endpoint.c,
worker_proc), so it wakes 100 times a second also while no call is up.  This
measures the engine both ways (the other way: the engine started with that
thread turned off, RTP read by libHandleEvents on the Python thread):

1. CPU of the idle registered engine (utime + stime from /proc over the window,
   % of one core; the client's pings and the CRLF keep-alives included);
2. a recording of a far end (a second pjsua2 calling the line) that plays
   1.5 s sweeps (`--seconds` of them in all): how many of its 20 ms frames the
   line's recording lost or concealed (the frame's best normalised correlation
   with the source, near where the previous frame was, below 0.9), quiet, and
   while the engine's Python thread has
   busy moments: every 0.5 s the client sends a burst of `--burst` pings at
   once, which the engine's loop serves one after the other before it polls
   pjsua2 again (the kind of pause a burst of commands or events, a slow
   stdout reader or a tracer such as coverage gives).  Nothing but the engine
   and its client is loaded (other processes on the machine are spared).

Prints figures, never pass/fail (about 8 minutes with the defaults).  Run inside the
project's environment:
`scripts/run env PYTHONPATH=.:custom_components/kpn_voip python -m benchmarks.bench_rtp_thread`.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Sequence
import os
from pathlib import Path
import sys
import tempfile
import time

import numpy as np

from kpn_devtools.farend import FarEnd
from kpn_devtools.kamailio import TEST_ACCOUNT, Kamailio
from kpn_devtools.sound import chirp, read_wav, similarity, write_wav
from kpn_line.client import EngineClient, default_engine_command
from kpn_line.profile import K1_DOMAIN
from kpn_line.protocol import (
    CallEvent,
    CallState,
    Event,
    RecordingSavedEvent,
    RegistrationEvent,
    RegState,
)

FRAME = 160  # samples: 20 ms at 8 kHz (K14, K20)
GOOD_FRAME = 0.9
SEARCH = 8 * FRAME  # samples either side where a frame is looked for
LEAD = 8000  # samples (1 s) of silence before the far end's sound: the line records by then
# The engine as shipped, or with its RTP worker thread turned off (nothing else changed).
_NO_THREAD = (
    "import runpy, sys\n"
    "import kpn_line.pjconfig as pjconfig\n"
    "shipped = pjconfig.endpoint_config\n"
    "def without_thread(*args):\n"
    "    cfg = shipped(*args)\n"
    "    cfg.medConfig.threadCnt = 0\n"
    "    cfg.medConfig.hasIoqueue = False\n"
    "    return cfg\n"
    "pjconfig.endpoint_config = without_thread\n"
    "sys.argv = ['kpn_line.engine', *sys.argv[1:]]\n"
    "runpy.run_module('kpn_line.engine', run_name='__main__', alter_sys=True)\n"
)
MODES = {
    "with the RTP thread (shipped)": default_engine_command(),
    "without it": [sys.executable, "-c", _NO_THREAD],
}


def cpu_ticks(pid: int) -> int:
    """utime + stime of `pid`, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def bad_frames(reference: list[int], received: list[int]) -> tuple[int, int]:
    """(frames lost or concealed, loud frames) of `received` against `reference`.

    Each loud 20 ms frame of `reference` is looked for in `received` within
    SEARCH samples of where the previous one was found (a jitter buffer moves
    what follows a dropped or concealed frame by a frame or so); a frame whose
    best normalised correlation there is below GOOD_FRAME was lost or concealed.
    The first frame's place: `reference`'s first 1.5 s in all of `received`.
    """
    _, start = similarity(reference[:12000], received)
    ref = np.asarray(reference, dtype=float)
    rec = np.concatenate([np.zeros(SEARCH), np.asarray(received, dtype=float)])
    rec = np.concatenate([rec, np.zeros(len(ref) + 2 * SEARCH)])
    offset = start  # received[offset + i] holds reference[i]
    bad = loud = 0
    for index in range(0, len(ref) - FRAME + 1, FRAME):
        part = ref[index : index + FRAME]
        if float(np.max(np.abs(part))) < 1000:
            continue
        loud += 1
        lo = offset + index  # in rec: + SEARCH for the padding, - SEARCH for the window
        window = rec[lo : lo + 2 * SEARCH + FRAME]
        dots = np.correlate(window, part, mode="valid")
        energy = np.convolve(window * window, np.ones(FRAME), mode="valid")
        corr = dots / np.sqrt(np.maximum(energy, 1e-9) * float(np.dot(part, part)))
        best = int(np.argmax(corr))
        if corr[best] < GOOD_FRAME:
            bad += 1
        else:
            offset += best - SEARCH
    return bad, loud


class Line:
    """One engine (command as given) with its client and events."""

    def __init__(self, command: list[str]) -> None:
        self.events: list[Event] = []
        self.changed = asyncio.Event()
        self.client = EngineClient(on_event=self.on_event, command=command)

    def on_event(self, event: Event) -> None:
        self.events.append(event)
        self.changed.set()

    async def wait(self, check: Callable[[Event], bool], timeout: float = 20.0) -> Event:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if check(event):
                    return event
            if time.monotonic() > deadline:
                raise TimeoutError(f"no such event in {self.events[-5:]!r}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), deadline - time.monotonic())
            except TimeoutError:
                continue


async def idle_cpu(kam: Kamailio, command: list[str], seconds: float) -> float:
    """% of one core the registered, idle engine used over `seconds`."""
    line = Line(command)
    await line.client.start(kam.line_settings())
    try:
        await line.wait(
            lambda e: isinstance(e, RegistrationEvent) and e.state is RegState.REGISTERED
        )
        pid = line.client.pid
        assert pid is not None
        await asyncio.sleep(1.0)
        t0, c0 = time.monotonic(), cpu_ticks(pid)
        await asyncio.sleep(seconds)
        return (cpu_ticks(pid) - c0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t0) * 100
    finally:
        await line.client.stop()


async def _bursts(client: EngineClient, size: int, took: list[float]) -> None:
    """Every 0.5 s, `size` pings at once (the engine serves them back to back); how long
    each burst took to be answered goes to `took` (s)."""
    while True:
        start = time.monotonic()
        await asyncio.gather(*(client.ping() for _ in range(size)))
        took.append(time.monotonic() - start)
        await asyncio.sleep(0.5)


async def recording_loss(
    kam: Kamailio, command: list[str], source: list[int], workdir: Path, burst: int
) -> tuple[int, int]:
    """A far end calls the line and plays `source`; the line records it, with bursts of
    `burst` pings (0: none) meanwhile.  bad_frames() of the recording."""
    src = write_wav(workdir / "far.wav", source)
    rec = workdir / f"rec-{time.monotonic_ns()}.wav"
    line = Line(command)
    took: list[float] = []
    await line.client.start(kam.line_settings())
    far: FarEnd | None = None
    load: asyncio.Task[None] | None = None
    try:
        await line.wait(
            lambda e: isinstance(e, RegistrationEvent) and e.state is RegState.REGISTERED
        )
        far = FarEnd(
            call=f"sip:{TEST_ACCOUNT.number}@{K1_DOMAIN}",
            proxy=f"{kam.host}:{kam.port}",
            play=src,
            answer_after=0.1,
        )
        ringing = await line.wait(
            lambda e: isinstance(e, CallEvent) and e.state is CallState.RINGING
        )
        assert isinstance(ringing, CallEvent)
        await line.client.answer(ringing.call_id)
        await line.client.record(ringing.call_id, str(rec), max_seconds=len(source) / 8000 + 2)
        if burst:
            load = asyncio.create_task(_bursts(line.client, burst, took))
        saved = await line.wait(
            lambda e: isinstance(e, RecordingSavedEvent), timeout=len(source) / 8000 + 20
        )
        assert isinstance(saved, RecordingSavedEvent)
        await line.client.hangup(ringing.call_id)
    finally:
        if load is not None:
            load.cancel()
        if far is not None:
            far.stop()
        await line.client.stop()
    received, _ = read_wav(rec)
    if took:
        print(f"  (bursts answered in {min(took) * 1000:.0f}-{max(took) * 1000:.0f} ms)")
    return bad_frames(source[LEAD:], received)  # the lead: before the recording started


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="kpn-bench-rtp-") as tmp:
        await _run(args, Path(tmp))


async def _run(args: argparse.Namespace, workdir: Path) -> None:
    kam = Kamailio(lockout_seconds=0)
    # 1.5 s sweeps (unambiguous to align, as in the sound tests), each over another band
    # (no sweep is found in another's place), after a lead of silence
    source = [0] * LEAD
    for n in range(max(1, round(args.seconds / 1.5))):
        low, high = 300 + 97 * n, 3000 - 131 * n
        source += chirp(1.5, start_hz=low if n % 2 else high, end_hz=high if n % 2 else low)
        source += [0] * 800
    source += [0] * 4000
    try:
        kam.start()
        for name, command in MODES.items():
            cpu = [await idle_cpu(kam, command, args.idle) for _ in range(args.repeat)]
            print(f"{name}: idle CPU " + ", ".join(f"{c:.3f} %" for c in cpu), flush=True)
            for burst in (0, args.burst):
                for _ in range(args.repeat):
                    bad, loud = await recording_loss(kam, command, source, workdir, burst)
                    print(
                        f"{name}: recording, bursts of {burst} pings: {bad} of {loud} frames"
                        f" lost/concealed ({bad / loud * 100:.2f} %)",
                        flush=True,
                    )
    finally:
        kam.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Run both ways; print the figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_rtp_thread")
    parser.add_argument("--idle", type=float, default=60.0, help="idle window, s (60)")
    parser.add_argument("--seconds", type=float, default=20.0, help="chirp length, s (20)")
    parser.add_argument("--burst", type=int, default=2000, help="pings per burst (2000)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each figure (2)")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
