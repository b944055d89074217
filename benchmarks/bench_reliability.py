"""Reliability figures of the line against the KPN stand-in (issue 9): prints, never judges.

    benchmarks/run --reliability [--quick] [--only NAME ...] [sizes]

(or `scripts/run env PYTHONPATH=<checkout>:<checkout>/custom_components/kpn_voip
python -m benchmarks.bench_reliability ...`).  Everything is on 127.0.0.1, the
stand-in (kpn_devtools.kamailio) in its one-time-nonce mode, as KPN's IMS is
assumed to be.  See benchmarks/README.md for what each figure measures
exactly; in short:

1. registrar down across a refresh, then answering again -> the line's
   binding back (goal <= 10 s); and a restart that loses the bindings (the
   line notices at its next refresh: K23 allows no OPTIONS probe).
2. engine SIGKILLed N times in a row: each time registered again, no
   credentials resent inside a K8 window, bindings at the registrar 1
   (2b: the same inside Home Assistant, after figure 4).
3. N re-registrations at a shortened interval (several lines in parallel):
   0 lost, one credentialed REGISTER per challenge.
4. N reloads of the config entry in a real Home Assistant
   (kpn_devtools.develop): threads, fds, RSS of HA and engine children flat.
5. address change and 6. total packet loss -> back: from
   benchmarks/reliability_net.py (network namespaces) when it is there.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
import contextlib
from dataclasses import dataclass
import importlib
import importlib.util
import itertools
import math
import os
from pathlib import Path
import shutil
import signal
import socket
import sys
import tempfile
import time
from typing import Any

from kpn_devtools.develop import Develop, descendants
from kpn_devtools.kamailio import Account, Kamailio, RegisterAttempt
from kpn_devtools.ports import free_udp_port
from kpn_line.client import EngineClient
from kpn_line.profile import K1_DOMAIN, K8_LOCKOUT_SECONDS
from kpn_line.protocol import AUTH_FAILURE_STATES, Event, RegistrationEvent, RegState

ACCOUNT = Account(
    number="+31209876543",
    username="98765432@" + K1_DOMAIN,
    password="bench-password-not-secret",
)

DOWN_GRANT = 10  # s the stand-in grants in figure 1 (refresh due after 5 s)
TIMER_F = 32.0  # pjsip's non-INVITE transaction time-out, RFC 3261 §17.1.2.2
REFRESH_GRANT = 4  # s the stand-in grants in figure 3 (a refresh every 2 s per line)
FIGURES = ("restart", "kills", "reregister", "reloads", "address", "loss")
NET_MODULE = "benchmarks.reliability_net"


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of `values` (q in 0..100); nan for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def line_account(index: int) -> Account:
    """The `index`-th bench line (numbers +3120900000xx, K3)."""
    return Account(
        number=f"+312090{index:05d}",
        username=f"9{index:07d}@{K1_DOMAIN}",
        password=f"bench-password-{index}-not-secret",
    )


class Line:
    """One engine (EngineClient) and its registration events."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.changed = asyncio.Event()
        self.client = EngineClient(on_event=self._on_event, on_exit=lambda *_: self.changed.set())

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        self.changed.set()

    def registrations(self) -> list[RegistrationEvent]:
        """Every registration event so far."""
        return [e for e in self.events if isinstance(e, RegistrationEvent)]

    async def state(self, state: RegState, timeout: float, after: int = 0) -> bool:  # noqa: ASYNC109
        """Until a registration event in `state` (from the `after`-th event on)."""
        deadline = time.monotonic() + timeout
        while True:
            if any(e.state == state for e in self.registrations()[after:]):
                return True
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                return False

    async def registered(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Until `registered` was reported."""
        return await self.state(RegState.REGISTERED, timeout)


async def wait_contact(kam: Kamailio, number: str, timeout: float) -> float | None:  # noqa: ASYNC109
    """Seconds until `number` has a binding at `kam` (polled every 0.05 s), None if not."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if kam.contacts(number):
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    return None


def exchanges_of(attempts: Sequence[RegisterAttempt]) -> tuple[int, int, int]:
    """(challenges, credentialed REGISTERs, credentialed ones refused) of a REGISTER log."""
    challenges = sum(1 for a in attempts if not a.with_credentials and a.code == 401)
    credentialed = [a for a in attempts if a.with_credentials]
    return challenges, len(credentialed), sum(1 for a in credentialed if a.code != 200)


def resent_inside_k8(attempts: Sequence[RegisterAttempt]) -> int:
    """Credentialed REGISTERs sent within K8_LOCKOUT_SECONDS after a refused one (K8)."""
    refused = [a.time for a in attempts if a.with_credentials and a.code != 200]
    return sum(
        1
        for a in attempts
        if a.with_credentials and any(t < a.time <= t + K8_LOCKOUT_SECONDS for t in refused)
    )


# -- figure 1: the registrar down / restarted -----------------------------------------


@contextlib.asynccontextmanager
async def registered_line(kam: Kamailio) -> AsyncIterator[Line | None]:
    """Start `kam` and a line of ACCOUNT at it: the line once registered (None: it did not)."""
    kam.start()
    line = Line()
    try:
        await line.client.start(kam.line_settings(ACCOUNT))
        yield line if await line.registered(15) else None
    finally:
        await line.client.stop()
        kam.cleanup()


async def registrar_down(down: float) -> None:
    """Figure 1a: the stand-in stops answering for `down` s (across at least one refresh)."""
    kam = Kamailio(accounts=[ACCOUNT], expires=DOWN_GRANT, lockout_seconds=0)
    async with registered_line(kam) as line:
        if line is None:
            print(f"1a registrar down {down:.0f} s: the line did not register at first")
            return
        before = len(line.registrations())
        kam.stop()  # nothing answers: the port is closed (pjsip's UDP socket sees no ICMP)
        await asyncio.sleep(down)
        down_states = line.registrations()[before:]
        kam.restart()  # returns once Kamailio answers its RPC: it answers SIP again
        back = await wait_contact(kam, ACCOUNT.number, 60)
        await line.state(RegState.REGISTERED, 10, after=before)
        attempts = kam.register_attempts(ACCOUNT.number)
        challenges, credentialed, refused = exchanges_of(attempts)
        seen = sorted({e.state.value for e in line.registrations()[before:]})
        failures = [e for e in down_states if e.state == RegState.UNREACHABLE]
        codes = sorted({e.code for e in failures if e.code})
        failed = [e for e in line.registrations() if e.state in AUTH_FAILURE_STATES]
        shown = "never" if back is None else f"{back:.1f} s"
        print(
            f"1a registrar down {down:.0f} s across a refresh (grant {DOWN_GRANT} s) -> binding"
            f" back {shown} after it answers again (goal <= 10 s); states {seen},"
            f" {len(failures)} failed REGISTERs while down (`unreachable`, codes"
            f" {codes or 'none'}); auth failures {len(failed)};"
            f" challenges {challenges}, credentialed REGISTERs {credentialed}"
            f" ({refused} refused), replayed nonces {kam.nonce_reuses()};"
            f" bindings {len(kam.contacts(ACCOUNT.number))}"
        )


async def registrar_restart(expires: int) -> None:
    """Figure 1b: the stand-in restarts at once and loses every binding."""
    kam = Kamailio(accounts=[ACCOUNT], expires=expires, lockout_seconds=0)
    async with registered_line(kam) as line:
        if line is None:
            print("1b registrar restart: the line did not register at first")
            return
        registered_at = time.monotonic()
        kam.restart()
        answering = time.monotonic()
        back = await wait_contact(kam, ACCOUNT.number, 2 * expires)
        shown = "never" if back is None else f"{back:.1f} s"
        print(
            f"1b registrar restart that loses its bindings -> line back {shown} after it"
            f" answers again (restarted {answering - registered_at:.1f} s after the line"
            f" registered; grant {expires} s, refresh every {expires / 2:.0f} s).  The line"
            " can only notice at its next refresh: nothing fails on its side and K23 allows"
            " no OPTIONS probe, so this is at most the refresh interval (K21: 1800 s on a"
            " real line); 1a is the fault the line can act on"
        )


# -- figure 2: engine SIGKILLed ----------------------------------------------------------


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
        challenges, credentialed, refused = exchanges_of(attempts)
        print(
            f"2 engine SIGKILLed {kills} times: registered again in p50 {pct(times, 50):.2f} s,"
            f" p99 {pct(times, 99):.2f} s, max {max(times):.2f} s, {failed} not registered;"
            f" credentialed REGISTERs {credentialed} for {challenges} challenges"
            f" ({credentialed / max(1, kills):.2f} per restart, {refused} refused,"
            f" {resent_inside_k8(attempts)} inside a K8 window after a refusal);"
            f" bindings at a registrar that keeps every binding: min {min(bindings)}"
            f" max {max(bindings)} (goal 1); replayed nonces {kam.nonce_reuses()}"
        )
    finally:
        kam.cleanup()


# -- figure 3: re-registrations ------------------------------------------------------------


async def reregistrations(total: int, lines_count: int) -> None:
    """Figure 3: `total` refreshes spread over `lines_count` lines, each every 2 s."""
    accounts = [line_account(i) for i in range(lines_count)]
    # One worker: with two, concurrent REGISTERs' log lines interleave mid-line.
    kam = Kamailio(accounts=accounts, expires=REFRESH_GRANT, lockout_seconds=0, workers=1)
    kam.start()
    lines = [Line() for _ in accounts]
    keep = False
    try:
        await asyncio.gather(
            *(
                line.client.start(kam.line_settings(a))
                for line, a in zip(lines, accounts, strict=True)
            )
        )
        ok = await asyncio.gather(*(line.registered(20) for line in lines))
        if not all(ok):
            print(f"3 re-registrations: {ok.count(False)} of {lines_count} lines did not register")
            return
        started = time.monotonic()
        deadline = started + 3 * total * REFRESH_GRANT / 2 / lines_count + 30

        def refreshes() -> int:
            # Every exchange after each line's first registration.
            return sum(1 for a in kam.register_attempts() if not a.with_credentials) - lines_count

        while refreshes() < total and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.5)  # polling Kamailio's log file: nothing to wait on
        elapsed = time.monotonic() - started
        await asyncio.sleep(1.0)  # the last exchanges' answers
        attempts = kam.register_attempts()
        challenges, credentialed, refused = exchanges_of(attempts)
        # Lost: a challenge not followed by a credentialed REGISTER that got 200,
        # a binding that lapsed (two accepted REGISTERs further apart than the
        # grant), or a line that left `registered`.  Each kept for the record.
        anomalies: list[str] = []
        lapsed = unanswered = unchallenged = 0
        for account in accounts:
            mine = [a for a in attempts if a.number == account.number]
            ok_times = [a.time for a in mine if a.with_credentials and a.code == 200]
            for x, y in itertools.pairwise(ok_times):
                if y - x > REFRESH_GRANT:
                    lapsed += 1
                    anomalies.append(f"{account.number}: accepted REGISTERs {y - x:.2f} s apart")
            pending = challenged = False
            for index, attempt in enumerate(mine):
                if not attempt.with_credentials:
                    if pending:
                        unanswered += 1
                        anomalies.append(describe(account.number, mine, index, "unanswered"))
                    pending = challenged = True
                    continue
                if not challenged:
                    unchallenged += 1
                    anomalies.append(describe(account.number, mine, index, "unchallenged"))
                challenged = False
                if attempt.code == 200:
                    pending = False
        states = {e.state.value for line in lines for e in line.registrations()}
        left = sum(
            1
            for line in lines
            for e in line.registrations()
            if e.state not in (RegState.STARTING, RegState.REGISTERING, RegState.REGISTERED)
        )
        bindings = [len(kam.contacts(a.number)) for a in accounts]
        done = refreshes()
        print(
            f"3 re-registrations: {done} refreshes in {elapsed:.0f} s ({lines_count} lines in"
            f" parallel, each every {REFRESH_GRANT / 2:.0f} s; goal {total});"
            f" credentialed REGISTERs {credentialed} for {challenges} challenges"
            f" ({credentialed / max(1, challenges):.3f} per challenge, {refused} refused);"
            f" credentialed without a challenge of their own {unchallenged};"
            f" lost: {unanswered} challenges without an accepted answer, {lapsed} lapsed"
            f" bindings, {left} states other than registered; states seen {sorted(states)};"
            f" replayed nonces {kam.nonce_reuses()}; bindings per line min {min(bindings)}"
            f" max {max(bindings)}; REGISTER log lines {kam.log_text().count('STANDIN REGISTER')},"
            f" parsed {len(attempts)}"
        )
        for text in anomalies[:5]:
            print(f"  {text}")
        if anomalies:
            keep = True
            print(f"  (stand-in log kept: {kam.log_path})")
    finally:
        await asyncio.gather(*(line.client.stop() for line in lines))
        if keep:
            kam.stop()
        else:
            kam.cleanup()


def describe(number: str, attempts: Sequence[RegisterAttempt], index: int, what: str) -> str:
    """One anomaly of figure 3: the attempt at `index` and the three before it."""
    start = attempts[max(0, index - 3)].time
    shown = " ".join(
        f"[{'cred' if a.with_credentials else 'plain'} {a.code} +{a.time - start:.3f}]"
        for a in attempts[max(0, index - 3) : index + 1]
    )
    return f"{number} {what}: {shown}"


# -- figure 4: reloads of the config entry in Home Assistant -------------------------------


@dataclass(frozen=True)
class ProcessSample:
    """Threads, open fds and RSS (kB) of a process, and its engine children."""

    threads: int
    fds: int
    rss_kb: int
    engines: int

    def __str__(self) -> str:
        return (
            f"threads {self.threads}, fds {self.fds}, RSS {self.rss_kb / 1024:.1f} MB,"
            f" engines {self.engines}"
        )


def engine_children(pid: int) -> list[int]:
    """The line engines (`-m kpn_line.engine`) among the descendants of `pid`."""
    engines = []
    for child in descendants(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"kpn_line.engine" in cmdline:
            engines.append(child)
    return engines


def sample_process(pid: int) -> ProcessSample:
    """The current ProcessSample of `pid` (from /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return ProcessSample(
        threads=int(values["Threads"]),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        rss_kb=int(values["VmRSS"].split()[0]),
        engines=len(engine_children(pid)),
    )


def _free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _registered_again(
    dev: Develop, entity: str, action: Callable[[], object], timeout: float
) -> float | None:
    """Run `action`; seconds until the line status shows `registered` anew (None: not)."""
    before = dev.api.state(entity)
    changed_before = before["last_changed"] if before else ""
    start = time.monotonic()
    action()
    while time.monotonic() - start < timeout:
        state = dev.api.state(entity)
        if state and state["state"] == "registered" and state["last_changed"] != changed_before:
            return time.monotonic() - start
        time.sleep(0.1)
    return None


def ha_kills(dev: Develop, entity: str, kills: int) -> None:
    """Figure 2b: the engine SIGKILLed `kills` times inside Home Assistant."""
    assert dev.hass is not None
    assert dev.standin is not None
    pid, standin = dev.hass.pid, dev.standin
    number = standin.accounts[0].number
    before = standin.register_attempts(number)
    times: list[float] = []
    failed = 0
    bindings: list[int] = []
    ha_up = True
    for _ in range(kills):
        engines = engine_children(pid)
        if len(engines) != 1:
            print(f"2b engine SIGKILLed in Home Assistant: {len(engines)} engines, not 1")
            return
        took = _registered_again(
            dev, entity, lambda engine=engines[0]: os.kill(engine, signal.SIGKILL), 400
        )
        ha_up = ha_up and dev.hass.poll() is None
        if took is None:
            failed += 1
        else:
            times.append(took)
        bindings.append(len(standin.contacts(number)))
    attempts = standin.register_attempts(number)[len(before) :]
    challenges, credentialed, refused = exchanges_of(attempts)
    print(
        f"2b engine SIGKILLed {kills} times inside Home Assistant (its restart back-off 5,"
        f" 10, 20 ... s): HA up throughout {ha_up}; registered again after p50"
        f" {pct(times, 50):.1f} s, max {max(times, default=math.nan):.1f} s, {failed} not;"
        f" credentialed REGISTERs {credentialed} for {challenges} challenges ({refused}"
        f" refused, {resent_inside_k8(attempts)} inside a K8 window); bindings min"
        f" {min(bindings)} max {max(bindings)}; replayed nonces {standin.nonce_reuses()}"
    )


def ha_figures(reloads: int, kills: int, settle: float) -> None:
    """Figures 4 and 2b (blocking: HA runs in its own process, driven over its REST API)."""
    config_dir = Path(tempfile.mkdtemp(prefix="kpn-bench-ha-"))
    dev = Develop(
        config_dir,
        ha_port=_free_tcp_port(),
        sip_port=free_udp_port(),
        say=lambda _text: None,
    )
    try:
        started = time.monotonic()
        dev.start()
        if dev.line_status != "registered" or dev.hass is None or dev.line_entity is None:
            print(f"4 reloads: the demo line did not register ({dev.line_status})")
            return
        boot = time.monotonic() - started
        entry_id = dev.api.entries("kpn_voip")[0]["entry_id"]
        pid = dev.hass.pid
        time.sleep(settle)
        samples = {0: sample_process(pid)}
        times: list[float] = []
        failed = 0
        path = f"/api/config/config_entries/entry/{entry_id}/reload"
        for done in range(1, reloads + 1):
            took = _registered_again(
                dev, dev.line_entity, lambda: dev.api.request("POST", path, timeout=60), 60
            )
            if took is None:
                failed += 1
            else:
                times.append(took)
            if done in (10, reloads):
                time.sleep(settle)
                samples[done] = sample_process(pid)
        standin = dev.standin
        assert standin is not None
        number = standin.accounts[0].number
        challenges, credentialed, refused = exchanges_of(standin.register_attempts(number))
        first, last = samples[0], samples[max(samples)]
        print(
            f"4 {reloads} reloads of the entry in Home Assistant (started in {boot:.0f} s):"
            f" registered again after each in p50 {pct(times, 50):.2f} s, p99"
            f" {pct(times, 99):.2f} s, {failed} not; at the stand-in (K8 lockout on):"
            f" credentialed REGISTERs {credentialed} for {challenges} challenges ({refused}"
            f" refused; un-REGISTER + REGISTER per reload), replayed nonces"
            f" {standin.nonce_reuses()}, bindings at the end {len(standin.contacts(number))}"
        )
        for count, sample in samples.items():
            print(f"  HA after {count:3d} reloads (+{settle:.0f} s): {sample}")
        print(
            f"  growth 0 -> {max(samples)}: threads {last.threads - first.threads:+d}, fds"
            f" {last.fds - first.fds:+d}, RSS {(last.rss_kb - first.rss_kb) / 1024:+.1f} MB,"
            f" engines {last.engines - first.engines:+d} (goal flat)"
        )
        if kills:
            ha_kills(dev, dev.line_entity, kills)
    finally:
        dev.stop()
        shutil.rmtree(config_dir, ignore_errors=True)


# -- figures 5 and 6: network (benchmarks/reliability_net.py, helper "net") ------------------


def net_module() -> Any:
    """benchmarks.reliability_net if it exists (it may land later), else None."""
    if importlib.util.find_spec(NET_MODULE) is None:
        return None
    return importlib.import_module(NET_MODULE)


def show(label: str, result: object) -> None:
    """Print a network figure: text as is, a mapping as key=value (None: it printed itself)."""
    if result is None:
        return
    if isinstance(result, Mapping):
        result = ", ".join(f"{key} {value}" for key, value in result.items())
    print(f"{label}: {result}")


async def network_figure(name: str, minutes: float) -> None:
    """Figure 5 (address change) or 6 (packet loss) from benchmarks/reliability_net.py."""
    module = net_module()
    label = "5 address change -> back" if name == "address" else "6 total packet loss -> back"
    if module is None:
        print(f"{label}: not measured (benchmarks/reliability_net.py is not there yet)")
        return
    if name == "address":
        show(label, await module.address_change())
    else:
        show(label, await module.packet_loss(minutes))


# -- command line -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring and benchmarks/README.md)."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/run --reliability",
        description="Reliability figures of the line (issue 9); prints, never judges.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument(
        "--only",
        action="extend",
        nargs="+",
        choices=FIGURES,
        metavar="NAME",
        help=f"run only these figures ({', '.join(FIGURES)}; repeatable; default: all)",
    )
    parser.add_argument(
        "--down",
        type=float,
        action="append",
        help="seconds the registrar is down in 1a (repeatable; default 45 150 270, quick 45)",
    )
    parser.add_argument("--expires", type=int, default=20, help="stand-in grant in 1b (s)")
    parser.add_argument("--kills", type=int, help="engine SIGKILLs (default 100, quick 10)")
    parser.add_argument(
        "--reregistrations", type=int, help="refreshes in 3 (default 1000, quick 100)"
    )
    parser.add_argument("--lines", type=int, default=10, help="lines in parallel in 3")
    parser.add_argument("--reloads", type=int, help="entry reloads in 4 (default 100, quick 10)")
    parser.add_argument(
        "--ha-kills", type=int, help="engine SIGKILLs inside HA after 4 (default 5, quick 2)"
    )
    parser.add_argument("--settle", type=float, default=5.0, help="s before each HA sample")
    parser.add_argument(
        "--loss-minutes",
        type=float,
        help="total packet loss in 6 (default 5, quick 1.5: past a refresh and its 32 s)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.down = args.down or ([45.0] if quick else [45.0, 150.0, 270.0])
    args.kills = args.kills or (10 if quick else 100)
    args.reregistrations = args.reregistrations or (100 if quick else 1000)
    args.reloads = args.reloads or (10 if quick else 100)
    if args.ha_kills is None:
        args.ha_kills = 2 if quick else 5
    args.loss_minutes = args.loss_minutes or (1.5 if quick else 5.0)
    args.only = args.only or list(FIGURES)
    for name in ("kills", "reregistrations", "lines", "reloads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if min(args.down) <= DOWN_GRANT / 2 + TIMER_F:
        parser.error(f"--down must exceed {DOWN_GRANT / 2 + TIMER_F:.0f} s (a failed refresh)")
    return args


async def main(argv: Sequence[str] | None = None) -> None:
    """Run the figures asked for, in order."""
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # each figure when done
    started = time.monotonic()
    steps: dict[str, Callable[[], Awaitable[None]]] = {
        "kills": lambda: sigkill_cycles(args.kills),
        "reregister": lambda: reregistrations(args.reregistrations, args.lines),
        "reloads": lambda: asyncio.to_thread(ha_figures, args.reloads, args.ha_kills, args.settle),
        "address": lambda: network_figure("address", args.loss_minutes),
        "loss": lambda: network_figure("loss", args.loss_minutes),
    }
    for name in FIGURES:
        if name not in args.only:
            continue
        if name == "restart":
            for down in args.down:
                await registrar_down(down)
            await registrar_restart(args.expires)
        else:
            await steps[name]()
    print(f"(all figures in {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    asyncio.run(main())
