"""The engine process's channel: the protocol on stdout, commands from stdin, log on stderr.

* `Output` writes one JSON object per line to the original stdout, under a
  lock, and by nothing else (engine.py points fd 1 at stderr).
* `read_lines` / `read_commands` run on the reader thread: they split stdin
  into lines, decode each once (commands.py) and queue the typed commands
  for the pjsua2 thread (or refuse a bad line at once); they never touch
  pjsua2.  Each queued command
  wakes the pjsua2 thread through a `Waker` (a CRLF datagram to its own SIP
  port, a keep-alive that pjsip drops).
* `LOGGER` is the engine's small, redacted (K9) stderr logger;
  `parse_log_level` reads the process's command line.

Nothing here imports engine.py: the engine hands in what the reader needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import contextlib
import os
import queue
import socket
import sys
import threading
import time
from typing import IO, Any, Final

from .commands import CommandRejected, Request, decode_command
from .protocol import MAX_LINE_BYTES, ErrorCode, Message, encode

WAKE: Final = b"\r\n\r\n"  # a SIP keep-alive: pjsip drops it silently
USAGE: Final = "usage: python -m kpn_line.engine [--log-level 0-6]"


class _Log:
    """A small stderr logger, redacted (K9).

    Not the logging package: it costs ~2.7 MB of resident memory in this process.
    """

    def __init__(self) -> None:
        self.redact: Callable[[str], str] = str

    def _write(self, level: str, msg: str, args: tuple[Any, ...], trace: str = "") -> None:
        text = (msg % args if args else msg) + trace
        line = f"{time.strftime('%H:%M:%S')} {level} kpn_line.engine: {self.redact(text)}\n"
        with contextlib.suppress(Exception):
            sys.stderr.write(line)
            sys.stderr.flush()

    def info(self, msg: str, *args: Any) -> None:
        self._write("INFO", msg, args)

    def warning(self, msg: str, *args: Any) -> None:
        self._write("WARNING", msg, args)

    def exception(self, msg: str, *args: Any) -> None:
        import traceback

        self._write("ERROR", msg, args, "\n" + traceback.format_exc().rstrip())


LOGGER: Final = _Log()


def guard(func: Callable[..., None], *args: Any) -> None:
    """Run a pjsua2 callback body; an exception is logged, never lost in pjsua2 (K9-safe)."""
    try:
        func(*args)
    except Exception:
        LOGGER.exception("error in a pjsua2 callback")


class Output:
    """The protocol channel: one JSON object per line, written under a lock."""

    def __init__(self, stream: IO[bytes]) -> None:
        """`stream`: the original stdout."""
        self._stream = stream
        self._lock = threading.Lock()
        self.closed = False

    def write(self, message: Message) -> None:
        """Write one message (protocol.encode); a closed pipe (client gone) is ignored."""
        data = encode(message)
        with self._lock:
            if self.closed:
                return
            try:
                self._stream.write(data)
                self._stream.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.closed = True
                return
        # The line just woke its reader (Home Assistant's loop): give way once, so that
        # on a busy machine it runs before the rest of our work (for an incoming call,
        # pjsua's media, 100 and 180 follow).  Measured: the ringing event reached the
        # coordinator 0.57-0.66 ms after it was made instead of 0.96-0.99 ms (p50,
        # 2 CPUs fully busy; issue 11, benchmarks/bench_ha.py).  ~1 us when idle.
        os.sched_yield()


class Waker:
    """Wakes the pjsua2 thread out of libHandleEvents: a CRLF to its own SIP port.

    `target` (host, port) is set by the engine once its UDP transport exists;
    until then a wake is a no-op (the engine polls its queue before that).
    """

    def __init__(self) -> None:
        """An IPv4 UDP socket (SIP is IPv4 only, see the engine's `start`)."""
        self.target: tuple[str, int] | None = None
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def __call__(self) -> None:
        """Send the wake datagram; errors (a closed socket, no route) are ignored."""
        target = self.target
        if target is not None:
            with contextlib.suppress(OSError):
                self._sock.sendto(WAKE, target)

    def close(self) -> None:
        """Release the socket."""
        self._sock.close()


def read_lines(fd: int) -> Iterator[bytes | None]:
    """Lines from a raw fd (no buffered reader: its lock would block interpreter exit).

    Yields None for a line longer than MAX_LINE_BYTES (skipped whole).
    """
    buf = b""
    skipping = False
    while True:
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:
            continue
        except OSError:
            return
        if not chunk:
            return
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > MAX_LINE_BYTES:
                    buf = b""
                    if not skipping:
                        skipping = True
                        yield None
                break
            line, buf = buf[:nl], buf[nl + 1 :]
            if skipping:
                skipping = False
                continue
            yield None if len(line) > MAX_LINE_BYTES else line


def read_commands(
    fd: int,
    commands: queue.SimpleQueue[Request | None],
    refuse: Callable[[Any, str, str], None],
    wake: Waker,
) -> None:
    """Decode each non-blank line of `fd` (commands.decode_command), queue it, wake the
    pjsua2 thread for it (reader thread).

    `refuse(id, code, message)` answers an over-long line or one that is no
    valid command at once; the end of input queues None.  Never touches pjsua2.
    """
    try:
        for line in read_lines(fd):
            if line is None:
                refuse(None, ErrorCode.BAD_REQUEST, "line too long")
                continue
            if not line.strip():
                continue
            try:
                commands.put(decode_command(line))
            except CommandRejected as err:
                refuse(err.id, err.code, err.message)
                continue
            wake()
    finally:
        commands.put(None)
        wake()
        wake.close()


def parse_log_level(argv: list[str]) -> int | None:
    """The engine's command line: `--log-level N` (pjsip's, 0-6) is the only option.

    None without options; prints USAGE and exits (SystemExit 0 for --help, else 2)
    on anything else.  Not argparse: it costs memory in this process.
    """
    if not argv:
        return None
    if len(argv) == 2 and argv[0] == "--log-level" and argv[1].isdigit():
        return min(6, int(argv[1]))
    if len(argv) == 1 and argv[0].startswith("--log-level=") and argv[0][12:].isdigit():
        return min(6, int(argv[0][12:]))
    sys.stderr.write(USAGE + "\n")
    raise SystemExit(0 if argv[0] in ("-h", "--help") else 2)
