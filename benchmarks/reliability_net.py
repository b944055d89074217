"""Reliability figures 5 and 6 (issue 9): address change and total packet loss -> back.

    benchmarks/run --reliability --only address loss      (bench_reliability.py calls these)
    scripts/run env PYTHONPATH=<checkout>:<checkout>/custom_components/kpn_voip \
        python -m benchmarks.reliability_net [--loss-minutes M] [--moves N]

Root only: the stand-in (Kamailio, one-time nonces) runs in a network
namespace of its own and the engine in another, joined by a veth pair
(kpn_devtools/netlab.py); traffic never leaves them.  Each function prints
one line and returns None; it measures, it does not judge (goals quoted).

5. address change: the line's address on the veth changes (a new one added,
   the old one deleted, as a DHCP renew with a new address does) while it
   is registered, with the default keep-alive interval (K10, 15 s).  Seconds
   from the change to `registered` again, the bindings at the registrar
   afterwards (a registrar that keeps every binding unless told: the old
   one must be removed by the line), credentialed REGISTERs per challenge.
   Goal: <= one keep-alive period + 5 s.
6. total packet loss: every packet between the two namespaces dropped
   (nftables, in the proxy's namespace: the line sees silence, no error)
   for M minutes, then none.  Seconds into the loss until the line says
   `unreachable`, and seconds from the network's return to `registered`.
   The stand-in grants 60 s here (the line refreshes every 30 s): K23
   allows no OPTIONS probe, so a line notices a silent loss only at its
   next REGISTER; with K21's 3600 s that may be up to 3300 s later (then
   `registered` stays shown and the binding at KPN outlives the loss).
   Goal: `unreachable` during, <= 30 s after the network returns.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
import os
import statistics
import time
from typing import Any

from kpn_devtools.kamailio import TEST_ACCOUNT, Kamailio
from kpn_devtools.netlab import LINE_IP, NEW_LINE_IP, NetLab
from kpn_line.client import EngineClient, default_engine_command
from kpn_line.profile import K10_KEEPALIVE_SECONDS
from kpn_line.protocol import Event, RegistrationEvent, RegState

LOSS_GRANT = 60  # s the stand-in grants in figure 6 (a refresh every 30 s)
ADDRESS_GOAL = K10_KEEPALIVE_SECONDS + 5.0
LOSS_GOAL = 30.0


class _Line:
    """An engine in the lab's line namespace and the times of its registration events."""

    def __init__(self, lab: NetLab) -> None:
        self.events: list[tuple[float, RegistrationEvent]] = []
        self.changed = asyncio.Event()
        self.client = EngineClient(
            on_event=self._on_event,
            command=[*lab.engine_prefix(), *default_engine_command()],
        )

    def _on_event(self, event: Event) -> None:
        if isinstance(event, RegistrationEvent) and not event.credentials_sent:
            self.events.append((time.monotonic(), event))
            self.changed.set()

    async def until(self, state: RegState, after: float, timeout: float) -> float | None:  # noqa: ASYNC109
        """Monotonic time of the first `state` event at or after `after`; None if none came."""
        deadline = time.monotonic() + timeout
        while True:
            for at, event in self.events:
                if at >= after and event.state == state:
                    return at
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                return None

    def states_between(self, start: float, end: float) -> list[str]:
        """The states reported in [start, end]."""
        return [str(e.state) for at, e in self.events if start <= at <= end]


def _credentials_per_challenge(kam: Kamailio) -> str:
    attempts = kam.register_attempts()
    challenges = sum(1 for a in attempts if not a.with_credentials and a.code == 401)
    credentialed = sum(1 for a in attempts if a.with_credentials)
    return f"{credentialed}/{challenges}"


type _Body = Callable[[NetLab, Kamailio, _Line], Awaitable[str]]


async def _measure(
    label: str, kam_options: dict[str, Any], settings_options: dict[str, Any], body: _Body
) -> None:
    """Print `label: <what body returns>` for a registered line in a fresh lab."""
    if os.geteuid() != 0:
        print(f"{label}: not measured (network namespaces need root)")
        return
    with NetLab() as lab:
        kam = await asyncio.to_thread(lab.kamailio, **kam_options)
        line = _Line(lab)
        await line.client.start(kam.line_settings(**settings_options))
        try:
            if await line.until(RegState.REGISTERED, 0.0, 15) is None:
                print(f"{label}: the line did not register at all")
                return
            print(f"{label}: {await body(lab, kam, line)}")
        finally:
            await line.client.stop()


async def address_change(moves: int = 3) -> None:
    """Figure 5: `moves` address changes in a row; prints one line."""

    async def body(lab: NetLab, kam: Kamailio, line: _Line) -> str:
        took: list[float] = []
        bindings: list[int] = []
        shown_meanwhile: list[bool] = []
        for n in range(moves):
            await asyncio.sleep(1.0)  # the keep-alive period's phase varies
            new = NEW_LINE_IP if n % 2 == 0 else LINE_IP
            moved = time.monotonic()
            await asyncio.to_thread(lab.move_line_address, new)
            back = await line.until(RegState.REGISTERED, moved, ADDRESS_GOAL + 30)
            if back is None:
                took.append(float("inf"))
                break
            took.append(back - moved)
            states = line.states_between(moved, back)
            shown_meanwhile.append(states[:1] == [RegState.REGISTERING.value])
            await asyncio.sleep(0.3)  # Kamailio's usrloc is updated after its answer
            contacts = kam.contacts(TEST_ACCOUNT.number)
            bindings.append(
                len(contacts) if all(f"@{new}:" in c for c in contacts) else -len(contacts)
            )
        return (
            f"{len(took)} changes, median {statistics.median(took):.1f} s, "
            f"max {max(took):.1f} s (goal <= {ADDRESS_GOAL:.0f} s = keep-alive "
            f"{K10_KEEPALIVE_SECONDS} s + 5 s); bindings at the registrar after each "
            f"{bindings} (goal 1, at the new address); `registering` shown until back: "
            f"{'yes' if all(shown_meanwhile) else 'NO'}; credentialed REGISTERs/challenges "
            f"{_credentials_per_challenge(kam)}; replayed nonces {kam.nonce_reuses()}"
        )

    await _measure(
        "5 address change -> back",
        {"keep_one_contact": False},
        {"keepalive_interval": K10_KEEPALIVE_SECONDS},
        body,
    )


async def packet_loss(minutes: float) -> None:
    """Figure 6: `minutes` of total packet loss, then none; prints one line."""

    async def body(lab: NetLab, kam: Kamailio, line: _Line) -> str:
        cut = time.monotonic()
        await asyncio.to_thread(lab.cut, lost=True)
        down = await line.until(RegState.UNREACHABLE, cut, minutes * 60)
        remaining = cut + minutes * 60 - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)
        registered_during = [
            s for s in line.states_between(cut + 0.5, time.monotonic()) if s == "registered"
        ]
        restored = time.monotonic()
        await asyncio.to_thread(lab.cut, lost=False)
        back = await line.until(RegState.REGISTERED, restored, 120)
        down_text = "never" if down is None else f"{down - cut:.0f} s into it"
        back_text = "not within 120 s" if back is None else f"{back - restored:.1f} s"
        return (
            f"{minutes:g} min loss; `unreachable` {down_text} "
            f"(registration interval {LOSS_GRANT} s); `registered` reported during the "
            f"loss: {len(registered_during)}x; back {back_text} after the network returned "
            f"(goal <= {LOSS_GOAL:.0f} s); bindings {len(kam.contacts(TEST_ACCOUNT.number))}; "
            f"credentialed REGISTERs/challenges {_credentials_per_challenge(kam)}"
        )

    await _measure(
        "6 total packet loss -> back",
        {"expires": LOSS_GRANT},
        {"register_expires": LOSS_GRANT},
        body,
    )


def main(argv: list[str] | None = None) -> int:
    """Both figures (or one of them)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reliability_net")
    parser.add_argument("--loss-minutes", type=float, default=5.0)
    parser.add_argument("--moves", type=int, default=3)
    parser.add_argument("--only", choices=("address", "loss"))
    args = parser.parse_args(argv)

    async def run() -> Any:
        if args.only in (None, "address"):
            await address_change(args.moves)
        if args.only in (None, "loss"):
            await packet_loss(args.loss_minutes)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
