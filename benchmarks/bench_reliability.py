"""Reliability figures of the line against the KPN stand-in (issue 9): prints, never judges.

    scripts/run env PYTHONPATH=<dev path> python -m benchmarks.bench_reliability [--quick]

Everything is on 127.0.0.1 (the stand-in in its one-time-nonce mode, as KPN's
IMS is assumed to be).  Figures:

1. registrar restart -> line back: the stand-in (granting `--expires` s) is
   restarted and loses every binding; seconds until the line's binding is
   there again (goal <= 10 s after the registrar answers again).
2. engine SIGKILLed N times in a row: each time a new engine registers; per
   kill: seconds to `registered`, credentialed REGISTERs (goal: 1 per
   challenge, never one inside the K8 window of a failure), bindings at the
   registrar (goal: always 1, the stand-in keeping every binding), replayed
   nonces (goal 0).
3. re-registrations at a shortened interval (the stand-in grants 4 s, so a
   refresh every 2 s) for `--seconds`: exchanges, credentialed REGISTERs
   per exchange (goal 1), lost ones (goal 0).

Not measured here (they need network namespaces with traffic shaping):
total packet loss -> back, an address change -> back, and HA reloads.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
import math
import os
import signal
import time

from kpn_devtools.kamailio import Account, Kamailio
from kpn_line.client import EngineClient
from kpn_line.profile import K1_DOMAIN
from kpn_line.protocol import Event, RegistrationEvent, RegState

ACCOUNT = Account(
    number="+31209876543",
    username="98765432@" + K1_DOMAIN,
    password="bench-password-not-secret",
)


REFRESH_GRANT = 4  # seconds the stand-in grants in figure 3


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of `values` (q in 0..100); nan for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


class Line:
    """One engine (EngineClient) and its registration events."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.changed = asyncio.Event()
        self.client = EngineClient(on_event=self._on_event, on_exit=lambda *_: self.changed.set())

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        self.changed.set()

    async def registered(self, timeout: float) -> bool:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if isinstance(event, RegistrationEvent) and event.state == RegState.REGISTERED:
                    return True
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        return False


async def registrar_restart(expires: int) -> None:
    """Figure 1."""
    kam = Kamailio(accounts=[ACCOUNT], expires=expires, lockout_seconds=0)
    kam.start()
    line = Line()
    try:
        await line.client.start(kam.line_settings(ACCOUNT))
        assert await line.registered(10)
        kam.restart()
        answering = time.monotonic()
        while not kam.contacts(ACCOUNT.number):
            await asyncio.sleep(0.1)
            if time.monotonic() - answering > 3 * expires:
                break
        back = time.monotonic() - answering
        print(
            f"1 registrar restart -> line back: {back:.1f} s after the registrar answers again"
            f" (stand-in grants {expires} s; goal <= 10 s)"
        )
    finally:
        await line.client.stop()
        kam.stop()


async def sigkill_cycles(kills: int) -> None:
    """Figure 2."""
    kam = Kamailio(accounts=[ACCOUNT], lockout_seconds=0, keep_one_contact=False)
    kam.start()
    settings = kam.line_settings(ACCOUNT)
    times: list[float] = []
    bindings: list[int] = []
    failed = 0
    try:
        for _ in range(kills):
            line = Line()
            started = time.monotonic()
            await line.client.start(settings)
            if not await line.registered(15):
                failed += 1
            times.append(time.monotonic() - started)
            bindings.append(len(kam.contacts(ACCOUNT.number)))
            pid = line.client.pid
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
            await line.client.stop()
        attempts = kam.register_attempts(ACCOUNT.number)
        credentialed = sum(1 for a in attempts if a.with_credentials)
        refused = sum(1 for a in attempts if a.with_credentials and a.code != 200)
        print(
            f"2 engine SIGKILLed {kills} times: registered again in p50 {pct(times, 50):.2f} s,"
            f" p99 {pct(times, 99):.2f} s, {failed} not registered;"
            f" credentialed REGISTERs {credentialed} ({credentialed / max(1, kills):.2f} per"
            f" restart, {refused} refused); bindings at the registrar min {min(bindings)} max"
            f" {max(bindings)} (goal 1); replayed nonces {kam.nonce_reuses()}"
        )
    finally:
        kam.stop()


async def reregistrations(seconds: float) -> None:
    """Figure 3."""
    kam = Kamailio(accounts=[ACCOUNT], expires=REFRESH_GRANT, lockout_seconds=0)
    kam.start()
    line = Line()
    try:
        await line.client.start(kam.line_settings(ACCOUNT))
        assert await line.registered(10)
        await asyncio.sleep(seconds)
        attempts = kam.register_attempts(ACCOUNT.number)
        exchanges = sum(1 for a in attempts if not a.with_credentials)
        credentialed = [a for a in attempts if a.with_credentials]
        lost = sum(1 for a in credentialed if a.code != 200)
        states = {e.state for e in line.events if isinstance(e, RegistrationEvent)}
        print(
            f"3 re-registrations every {REFRESH_GRANT / 2:.0f} s for {seconds:.0f} s:"
            f" {exchanges} exchanges,"
            f" {len(credentialed)} credentialed REGISTERs"
            f" ({len(credentialed) / max(1, exchanges):.2f} per challenge), {lost} lost;"
            f" states seen {sorted(s.value for s in states)}; replayed nonces {kam.nonce_reuses()}"
        )
    finally:
        await line.client.stop()
        kam.stop()


async def main(argv: Sequence[str] | None = None) -> None:
    """Run the figures."""
    parser = argparse.ArgumentParser(prog="bench_reliability", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    parser.add_argument("--kills", type=int, help="engine SIGKILLs (default 100, quick 20)")
    parser.add_argument("--seconds", type=float, help="re-registration run (default 120 s)")
    parser.add_argument("--expires", type=int, default=20, help="stand-in grant for figure 1")
    args = parser.parse_args(argv)
    kills = args.kills or (20 if args.quick else 100)
    seconds = args.seconds or (20.0 if args.quick else 120.0)
    await registrar_restart(args.expires)
    await sigkill_cycles(kills)
    await reregistrations(seconds)


if __name__ == "__main__":
    asyncio.run(main())
