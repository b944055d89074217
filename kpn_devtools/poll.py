"""The one polling loop of the peers: wait until a probe sees something, sync or async.

Kamailio (RPC, log file), SIPp (message log) and tcpdump (pcap file) can only be
looked at, not awaited, so every `wait_for` of this package polls.  The step is
written once (`_step`); `wait_until` sleeps between steps, `async_wait_until`
awaits between them so the event loop keeps running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import time

INTERVAL = 0.05  # seconds between looks

type Probe[T] = Callable[[], T | None]
type Check = Callable[[], None]


def _step[T](
    probe: Probe[T], deadline: float, timeout_message: Callable[[], str], check: Check | None
) -> T | None:
    """One look: the probe's value, or None (not yet).

    A probe "sees nothing" when it returns None or False.  Then: TimeoutError
    after `deadline`, else `check()` may raise (e.g. "the peer died").
    """
    value = probe()
    if value is not None and value is not False:
        return value
    if time.monotonic() > deadline:
        raise TimeoutError(timeout_message())
    if check is not None:
        check()
    return None


def wait_until[T](
    probe: Probe[T],
    timeout: float,
    timeout_message: Callable[[], str],
    *,
    check: Check | None = None,
    interval: float = INTERVAL,
) -> T:
    """Call `probe` every `interval` s until it returns a value other than None/False.

    Raises TimeoutError(timeout_message()) after `timeout` s, or what `probe` or
    `check` (called after each empty look) raise.
    """
    deadline = time.monotonic() + timeout
    while (value := _step(probe, deadline, timeout_message, check)) is None:
        time.sleep(interval)
    return value


async def async_wait_until[T](
    probe: Probe[T],
    timeout: float,  # noqa: ASYNC109  a deadline for a file/RPC poll, not for an awaitable
    timeout_message: Callable[[], str],
    *,
    check: Check | None = None,
    interval: float = INTERVAL,
) -> T:
    """wait_until() for async code: the event loop runs between looks."""
    deadline = time.monotonic() + timeout
    while (value := _step(probe, deadline, timeout_message, check)) is None:  # noqa: ASYNC110
        await asyncio.sleep(interval)  # a file or RPC to look at: nothing to await
    return value
