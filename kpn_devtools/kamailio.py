"""The KPN stand-in: a real Kamailio (registrar + proxy) on 127.0.0.1 UDP.

The config is kamailio.cfg next to this file, a template whose @@NAME@@
markers are filled in here (the single copy of that logic; scripts/standin
runs `python -m kpn_devtools standin`).  Kamailio runs in the foreground as
the current user, with its own run dir, in a process group of its own that
stop() always kills.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
import contextlib
from dataclasses import dataclass, field
import itertools
import json
import os
from pathlib import Path
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from . import host_path
from .line import K1_DOMAIN, K8_LOCKOUT_SECONDS, K21_REGISTER_EXPIRES, LineSettings
from .poll import async_wait_until, wait_until
from .ports import free_udp_port, orphan_guard
from .rundir import make_owned_dir

CONFIG_TEMPLATE = Path(__file__).resolve().parent / "kamailio.cfg"
HOST = "127.0.0.1"
RUNDIR_PREFIX = "kpn-kam-"  # <temp dir>/kpn-kam-<random>: config, log, RPC socket

_REGISTER_RE = re.compile(
    r"STANDIN REGISTER number=(?P<number>\S*) auth=(?P<auth>\S*) creds=(?P<creds>yes|no) "
    r"code=(?P<code>\d+) t=(?P<t>[\d.]+)"
)


@dataclass(frozen=True)
class Account:
    """One KPN line: number (AOR user, K3), SIP user name (K4), password (K5)."""

    number: str
    username: str
    password: str = field(repr=False)


# A password for tests only; never a real one.
TEST_ACCOUNT = Account(
    number="+31201234567",
    username="12345678@" + K1_DOMAIN,
    password="test-password-not-secret",  # noqa: S106  a test value, loopback only
)
# The account scripts/standin serves (documented in its --help).
DEMO_ACCOUNT = Account(
    number="+31201234567",
    username="12345678@" + K1_DOMAIN,
    password="demo-password",  # noqa: S106  a documented demo value, loopback only
)


@dataclass(frozen=True)
class RegisterAttempt:
    """One REGISTER as Kamailio logged it.

    `username` is the auth user name when credentials were sent, else the
    number (the To user); `number` is always the To user.
    """

    username: str
    with_credentials: bool
    code: int
    time: float
    number: str = ""


class KamailioError(RuntimeError):
    """Kamailio did not start, or an RPC failed."""


def _kamailio_string(text: str) -> str:
    if any(ord(ch) < 0x20 for ch in text):
        raise ValueError("control characters are not supported in stand-in account data")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Kamailio:
    """A running (after start()) Kamailio emulating KPN's platform.

    lockout_seconds: K8 emulation, 0 = off.  forward_to: (host, port) that calls
    FROM the line are sent to (e.g. a SIPp UAS).  auth_fail_code: 403 (default)
    or 401 (a fresh challenge) for a REGISTER with wrong credentials.
    one_time_nonce: each nonce is accepted once (IMS practice, the default); a
    replayed digest gets a new challenge without stale=true.  nonce_expire:
    seconds a nonce lives (an older one is answered stale=true).
    min_expires_mode: a REGISTER asking less than `expires` gets 423 with
    Min-Expires `expires` instead of being granted `expires`.  keep_one_contact:
    a REGISTER replaces the account's other bindings (K7, the default); False
    keeps them all, as a generic registrar does.  host: the address it listens
    on (a loopback address, or one of a network namespace the caller made);
    prefix: a command prefix to start it with (e.g. Netns.prefix, to run it
    inside that namespace).  workers: Kamailio's UDP worker processes (1..8);
    their log lines can interleave mid-line when several handle requests at
    the same moment (many lines registering at once), so whoever parses the
    log of such a load takes 1.
    """

    def __init__(
        self,
        *,
        accounts: Sequence[Account] = (TEST_ACCOUNT,),
        port: int = 0,
        lockout_seconds: int = K8_LOCKOUT_SECONDS,
        forward_to: tuple[str, int] | None = None,
        auth_fail_code: int = 403,
        expires: int = K21_REGISTER_EXPIRES,
        domain: str = K1_DOMAIN,
        echo_log: bool = False,
        one_time_nonce: bool = True,
        nonce_expire: int = 300,
        min_expires_mode: bool = False,
        keep_one_contact: bool = True,
        host: str = HOST,
        prefix: Sequence[str] = (),
        workers: int = 2,
    ) -> None:
        if auth_fail_code not in (401, 403):
            raise ValueError("auth_fail_code must be 401 or 403")
        if not 1 <= workers <= 8:
            raise ValueError("workers must be 1..8")
        if forward_to is not None and not forward_to[0].startswith("127."):
            raise ValueError("forward_to must be a loopback address")
        self.accounts = list(accounts)
        self.host = host
        self.prefix = list(prefix)
        self.port = port
        self._fixed_port = port != 0
        self.lockout_seconds = lockout_seconds
        self.forward_to = forward_to
        self.auth_fail_code = auth_fail_code
        self.expires = expires
        self.domain = domain
        self.echo_log = echo_log
        self.one_time_nonce = one_time_nonce
        self.nonce_expire = nonce_expire
        self.min_expires_mode = min_expires_mode
        self.keep_one_contact = keep_one_contact
        self.workers = workers
        # Removed by cleanup(); if the owner is killed first, by the next stand-in
        # made anywhere (rundir.py: the folder's lock dies with its holders).
        self.rundir, self._rundir_lock = make_owned_dir(RUNDIR_PREFIX)
        self.log_path = self.rundir / "kamailio.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._rpc_ids = itertools.count(1)

    # -- life cycle -------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the Kamailio process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def uri(self) -> str:
        """The proxy's SIP URI (use as outbound proxy / registrar address)."""
        return f"sip:{self.host}:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) Kamailio listens on."""
        return (self.host, self.port)

    def start(self, timeout: float = 10.0) -> None:
        """Write the config and start Kamailio; return when it answers RPC."""
        if self.running:
            return
        kamailio = shutil.which("kamailio")
        if kamailio is None:
            raise KamailioError("kamailio not found: run inside the environment (scripts/run)")
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            if not self._fixed_port:
                self.port = free_udp_port()
            try:
                self._start_once(kamailio, timeout)
                return
            except KamailioError:
                self.stop()
                if attempt == attempts - 1 or "Address already in use" not in self.log_text():
                    raise

    def _start_once(self, kamailio: str, timeout: float) -> None:
        cfg = self._write_config()
        pidfile = self.rundir / "kamailio.pid"
        self._log_file = self.log_path.open("ab")
        # -DD -E: foreground, log to stderr; -Y/-P: our own run dir, so no
        # root-owned /run/kamailio is needed; small shared memory (-m/-M).
        cmd = [
            *orphan_guard(),
            *self.prefix,
            kamailio,
            "-f",
            str(cfg),
            "-DD",
            "-E",
            "-Y",
            str(self.rundir),
            "-P",
            str(pidfile),
            "-m",
            "64",
            "-M",
            "8",
            "-w",
            str(self.rundir),
        ]
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
            start_new_session=True,
            # Kamailio shares the run dir's lock: kept while it runs (rundir.py).
            pass_fds=(self._rundir_lock,),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise KamailioError(
                    f"kamailio exited with {self._proc.returncode}:\n{self.log_text()[-3000:]}"
                )
            if (self.rundir / "rpc.sock").exists():
                try:
                    self.rpc("core.version", timeout=0.5)
                except (OSError, KamailioError):
                    pass
                else:
                    return
            time.sleep(0.05)
        raise KamailioError(f"kamailio did not come up:\n{self.log_text()[-3000:]}")

    def stop(self) -> None:
        """Stop Kamailio (its whole process group); idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _kill_group(proc)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        for name in ("rpc.sock", "rpc-client.sock"):
            (self.rundir / name).unlink(missing_ok=True)

    def restart(self) -> None:
        """Stop and start again on the same port (registrations are lost)."""
        self.stop()
        fixed = self._fixed_port
        self._fixed_port = True
        try:
            self.start()
        finally:
            self._fixed_port = fixed

    def cleanup(self) -> None:
        """Stop and remove the run dir; idempotent."""
        self.stop()
        shutil.rmtree(self.rundir, ignore_errors=True)
        lock, self._rundir_lock = self._rundir_lock, -1
        if lock >= 0:
            os.close(lock)

    def __enter__(self) -> Kamailio:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def _write_config(self) -> Path:
        accounts_file = self.rundir / "accounts.cfg"
        lines = ["# generated by kpn_devtools/kamailio.py"]
        for acct in self.accounts:
            user, number = _kamailio_string(acct.username), _kamailio_string(acct.number)
            lines += [
                f"$var(k) = {user};",
                f"$sht(acct=>$var(k)) = {_kamailio_string(acct.password)};",
                f"$sht(num=>$var(k)) = {number};",
                f"$var(n) = {number};",
                f"$sht(line=>$var(n)) = {user};",
            ]
        accounts_file.write_text("\n".join(lines) + "\n")
        accounts_file.chmod(0o600)
        forward = "" if self.forward_to is None else "sip:{}:{}".format(*self.forward_to)
        values = {
            "HOST": self.host,
            "PORT": str(self.port),
            "DOMAIN": self.domain,
            "EXPIRES": str(self.expires),
            "LOCKOUT_SECONDS": str(self.lockout_seconds),
            "LOCK_EXPIRE": str(self.lockout_seconds + 5 if self.lockout_seconds else 0),
            "AUTH_FAIL_CODE": str(self.auth_fail_code),
            "ONE_TIME_NONCE": str(int(self.one_time_nonce)),
            "NONCE_EXPIRE": str(self.nonce_expire),
            "MIN_EXPIRES_MODE": str(int(self.min_expires_mode)),
            "SAVE_FLAGS": "0x04" if self.keep_one_contact else "0x00",
            "CHILDREN": str(self.workers),
            "FORWARD_URI": forward,
            "ACCOUNTS_FILE": str(accounts_file),
            "RPC_SOCKET": str(self.rundir / "rpc.sock"),
            "NO_ACCOUNT_PASSWORD": secrets.token_hex(16),
        }
        text = CONFIG_TEMPLATE.read_text()
        text = re.sub(r"@@([A-Z_]+)@@", lambda m: values[m.group(1)], text)
        cfg = self.rundir / "kamailio.cfg"
        cfg.write_text(text)
        return cfg

    # -- observation -------------------------------------------------------

    def log_text(self) -> str:
        """Everything Kamailio logged so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def register_attempts(self, username: str | None = None) -> list[RegisterAttempt]:
        """REGISTERs seen, oldest first; filter by auth user name or number."""
        out = []
        for m in _REGISTER_RE.finditer(self.log_text()):
            creds = m["creds"] == "yes"
            attempt = RegisterAttempt(
                username=m["auth"] if creds else m["number"],
                with_credentials=creds,
                code=int(m["code"]),
                time=float(m["t"]),
                number=m["number"],
            )
            if username is None or username in (attempt.username, attempt.number):
                out.append(attempt)
        return out

    def nonce_reuses(self) -> int:
        """How many digests came with a nonce that was used before (a replay)."""
        return self.log_text().count("STANDIN NONCE_REUSED")

    def rpc(self, method: str, *params: Any, timeout: float = 2.0) -> Any:
        """Call Kamailio's JSON-RPC (unix datagram socket) and return `result`."""
        client_path = self.rundir / f"rpc-client-{os.getpid()}-{next(self._rpc_ids)}.sock"
        request = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(client_path))
            try:
                sock.settimeout(timeout)
                sock.sendto(json.dumps(request).encode(), str(self.rundir / "rpc.sock"))
                data = sock.recv(65536)
            finally:
                client_path.unlink(missing_ok=True)
        reply = json.loads(data)
        if "error" in reply:
            raise KamailioError(f"rpc {method}: {reply['error']}")
        return reply.get("result")

    def registrations(self, number: str) -> list[dict[str, Any]]:
        """usrloc's records for `number` (keys: Address, Expires, Received, User-Agent...)."""
        try:
            result = self.rpc("ul.lookup", "location", number)
        except KamailioError as err:
            if "not found" in str(err).lower():
                return []
            raise
        records = [c["Contact"] for c in (result or {}).get("Contacts", [])]
        # Expired contacts linger until usrloc's timer runs: leave them out.
        return [r for r in records if not isinstance(r.get("Expires"), int) or r["Expires"] > 0]

    def contacts(self, number: str) -> list[str]:
        """Contact URIs registered for `number` (K7: at most one)."""
        return [r["Address"] for r in self.registrations(number)]

    def wait_registered(self, number: str, timeout: float = 10.0) -> str:
        """Wait until `number` has a registered contact; return its URI."""
        return self.wait_for(lambda: next(iter(self.contacts(number)), None), timeout, number)

    def wait_unregistered(self, number: str, timeout: float = 10.0) -> None:
        """Wait until `number` has no registered contact."""
        self.wait_for(lambda: not self.contacts(number) or None, timeout, number)

    def wait_for[T](self, probe: Callable[[], T | None], timeout: float, what: str = "") -> T:
        """Poll `probe` until it returns something other than None/False.

        TimeoutError after `timeout` s; KamailioError if Kamailio died meanwhile.
        """
        return wait_until(probe, timeout, self._timed_out(what), check=self._check_alive)

    async def async_wait_registered(self, number: str, timeout: float = 10.0) -> str:  # noqa: ASYNC109
        """wait_registered() for async tests: polls without blocking the event loop."""
        return await self.async_wait_for(
            lambda: next(iter(self.contacts(number)), None), timeout, number
        )

    async def async_wait_for[T](
        self,
        probe: Callable[[], T | None],
        timeout: float,  # noqa: ASYNC109
        what: str = "",
    ) -> T:
        """wait_for() for async tests."""
        return await async_wait_until(
            probe, timeout, self._timed_out(what), check=self._check_alive
        )

    @staticmethod
    def _timed_out(what: str) -> Callable[[], str]:
        return lambda: f"stand-in: timed out waiting ({what})"

    def _check_alive(self) -> None:
        if not self.running:
            raise KamailioError(f"kamailio died:\n{self.log_text()[-3000:]}")

    def line_settings(self, account: Account | None = None, **overrides: Any) -> LineSettings:
        """kpn_line LineSettings pointing at this stand-in (proxy = 127.0.0.1:port)."""
        acct = account or self.accounts[0]
        values: dict[str, Any] = {
            "number": acct.number,
            "username": acct.username,
            "password": acct.password,
            "domain": self.domain,
            "proxy_host": self.host,
            "proxy_port": self.port,
        }
        values.update(overrides)
        return LineSettings(**values)


def _kill_group(proc: subprocess.Popen[Any], grace: float = 3.0) -> None:
    """SIGTERM the process group, then SIGKILL it; reap the leader."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = None
    if pgid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    if pgid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- command line (scripts/standin) ---------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stand-in in the foreground with the demo account until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="scripts/standin",
        description="Local KPN stand-in (Kamailio) on 127.0.0.1 UDP with a demo account: "
        f"number {DEMO_ACCOUNT.number}, user {DEMO_ACCOUNT.username}, "
        f"password {DEMO_ACCOUNT.password!r} (a demo value).",
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("KPN_SIP_PORT") or 5070))
    parser.add_argument("--lockout", type=int, default=K8_LOCKOUT_SECONDS, metavar="SECONDS")
    parser.add_argument(
        "--forward", metavar="HOST:PORT", help="where calls from the line go (loopback)"
    )
    parser.add_argument("--auth-fail-code", type=int, default=403, choices=(401, 403))
    args = parser.parse_args(argv)
    forward = None
    if args.forward:
        host, _, port = args.forward.rpartition(":")
        forward = (host, int(port))
    kam = Kamailio(
        accounts=[DEMO_ACCOUNT],
        port=args.port,
        lockout_seconds=args.lockout,
        forward_to=forward,
        auth_fail_code=args.auth_fail_code,
    )
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    # Ctrl-C must stop it even if started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        kam.start()
        print(f"KPN stand-in (Kamailio) on udp {kam.host}:{kam.port}, realm {kam.domain}")
        print(f"  demo line: number {DEMO_ACCOUNT.number}")
        print(f"             user   {DEMO_ACCOUNT.username}")
        print(f"             password {DEMO_ACCOUNT.password} (demo only)")
        lockout = f"{args.lockout} s" if args.lockout else "off"
        print(f"  lockout after a failed login: {lockout} (K8)")
        target = f"sip:{forward[0]}:{forward[1]}" if forward else "nowhere (503)"
        print(f"  calls from the line go to: {target}")
        print(f"  log: {host_path(kam.log_path)}    Ctrl-C stops.", flush=True)
        shown = 0
        while not stop and kam.running:
            lines = kam.log_text().splitlines(keepends=True)
            complete = [line for line in lines if line.endswith("\n")]
            for line in complete[shown:]:
                if "STANDIN" in line:
                    print(line[line.index("STANDIN") :].rstrip(), flush=True)
            shown = len(complete)
            time.sleep(0.2)
        if not kam.running and not stop:
            print(kam.log_text()[-3000:], file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        pass
    finally:
        kam.cleanup()
    return 0
