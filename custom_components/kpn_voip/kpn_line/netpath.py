"""Name look-ups off the pjsua2 thread (issue 9 item 8).

The system resolver blocks: with a dead first name server one `getaddrinfo`
takes tens of seconds (glibc: 5 s per try and server).  On the pjsua2 thread
that would stall every command, call and timer of the engine, so
`Lookups` runs `addresses.find_path` in a daemon thread of its own and hands
the result back to the pjsua2 thread through `post` (the engine queues it;
its loop looks at the queue every 50 ms while a look-up runs).  One look-up
at a time: a request while one runs just waits for that one's result.

The engine gives up waiting after `LOOKUP_TIMEOUT` (the REGISTER that waited
fails like a network error: `unreachable`, retried later); a late result is
still kept as the newest path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import threading
import time
from typing import Final

from .addresses import Path, find_path
from .stdio import LOGGER

# Seconds a REGISTER waits for the look-up before it counts as failed: glibc's
# worst case with its defaults is 2 tries x 5 s x up to 3 name servers = 30 s.
LOOKUP_TIMEOUT: Final = 30.0


class Lookups:
    """One look-up thread at a time; results are posted to the pjsua2 thread.

    `post(job)`: thread-safe, runs `job()` on the pjsua2 thread soon (the
    engine's inbox, linepath.PathDriver.post).
    """

    def __init__(self, post: Callable[[Callable[[], None]], None]) -> None:
        """Nothing runs until `request`."""
        self._post = post
        self._thread: threading.Thread | None = None
        self.started: float | None = None  # monotonic start of the running look-up

    @property
    def running(self) -> bool:
        """True while a look-up thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def request(
        self,
        proxy_host: str,
        proxy_port: int,
        names: Sequence[str],
        done: Callable[[Path], None],
    ) -> bool:
        """Start a look-up; `done(path)` runs on the pjsua2 thread when it ends.

        Returns False (and starts nothing) when one is already running: its
        result comes to the `done` it was started with.
        """
        if self.running:
            return False
        self.started = time.monotonic()

        def work() -> None:
            try:
                path = find_path(proxy_host, proxy_port, names)
            except Exception as err:  # noqa: BLE001  never kill the thread silently
                LOGGER.warning("address look-up failed: %s", type(err).__name__)
                path = Path(None, error="the proxy's address could not be looked up")
            self._post(lambda: done(path))

        self._thread = threading.Thread(target=work, daemon=True, name="lookup")
        self._thread.start()
        return True
