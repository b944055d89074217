"""Command-line use of the line engine, without Home Assistant.

    PYTHONPATH=custom_components/kpn_voip python -m kpn_line.cli \\
        --number 020-1234567 --username 12345678 [--dial 0612345678]

Registers the line, prints every engine event as one JSON object per line on
stdout, optionally places one call, and stops on Ctrl-C, after --duration
seconds, or when the dialled call has ended.  docs/cli.md describes it.

The password comes only from the environment variable KPN_VOIP_PASSWORD or
a prompt, never from the command line, where any user of the machine could
read it (K9).  Before a login against anything but this machine it warns
that a wrong password locks the line for about 15 minutes (K8).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Mapping, Sequence
import getpass
import ipaddress
import os
import signal
import sys
from typing import Any, Final, TextIO

from .client import EngineClient, EngineError, default_engine_command
from .errors import InvalidFieldError
from .numbers import dial_string
from .profile import K1_DOMAIN, K2_PROXY_HOST, K2_PROXY_PORT, K8_LOCKOUT_SECONDS
from .protocol import (
    AUTH_FAILURE_STATES,
    CallEvent,
    CallState,
    Event,
    RegistrationEvent,
    RegState,
    encode,
)
from .settings import LineSettings

PASSWORD_ENV: Final = "KPN_VOIP_PASSWORD"  # noqa: S105  the variable's name, not a password

EXIT_OK: Final = 0  # stopped by Ctrl-C / SIGTERM, --duration, or the call ended
EXIT_REGISTRATION_FAILED: Final = 1  # auth_failed or locked_out (K8)
EXIT_USAGE: Final = 2  # bad arguments (argparse uses 2 as well)
EXIT_ENGINE: Final = 3  # the engine could not start, died, or refused the call
EXIT_NOT_CONFIRMED: Final = 4  # the K8 warning was not confirmed

_LOCAL_HOSTS: Final = frozenset({"localhost", "localhost."})


class UsageError(Exception):
    """A problem with the arguments; the message is safe to print."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (there is deliberately no --password option: K9)."""
    parser = argparse.ArgumentParser(
        prog="python -m kpn_line.cli",
        description=(
            "Register a KPN Vast Bellen line with the kpn_line engine, print its events as "
            "JSON lines, and optionally place one call. The SIP password is read from the "
            f"environment variable {PASSWORD_ENV} or asked for; it is never an argument."
        ),
    )
    parser.add_argument("--number", required=True, help="the line's number, e.g. 020 123 4567")
    parser.add_argument(
        "--username", required=True, help="SIP user name (the part before @ is enough)"
    )
    parser.add_argument("--display-name", default="", help="local name of the line")
    parser.add_argument(
        "--proxy",
        default=K2_PROXY_HOST,
        metavar="HOST[:PORT]",
        help=f"outbound proxy (default {K2_PROXY_HOST}:{K2_PROXY_PORT}, KPN's)",
    )
    parser.add_argument("--domain", default=K1_DOMAIN, help=f"SIP domain (default {K1_DOMAIN})")
    parser.add_argument(
        "--local-port", type=int, default=0, metavar="PORT", help="local SIP port (0 = any)"
    )
    parser.add_argument("--dial", metavar="NUMBER", help="call this number once registered")
    parser.add_argument(
        "--hide-caller-id", action="store_true", help="withhold the line's number (*31*)"
    )
    parser.add_argument(
        "--hangup-after",
        type=_positive_float,
        metavar="SECONDS",
        help="cancel the call if it is not answered within this many seconds",
    )
    parser.add_argument(
        "--duration",
        type=_positive_float,
        metavar="SECONDS",
        help="exit after this many seconds (default: until Ctrl-C or the call ended)",
    )
    parser.add_argument(
        "--engine-python", metavar="PYTHON", help="Python interpreter that has pjsua2"
    )
    parser.add_argument(
        "--yes", action="store_true", help="do not ask before logging in to a remote proxy"
    )
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def parse_proxy(text: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address -> (host, port)."""
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise UsageError("--proxy: write an IPv6 address as [ADDRESS] or [ADDRESS]:PORT")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    if not host:
        raise UsageError("--proxy: the host is missing")
    if not port_text:
        return host, K2_PROXY_PORT
    if not port_text.isascii() or not port_text.isdigit():
        raise UsageError("--proxy: the port must be a number")
    return host, int(port_text)


def is_local(host: str) -> bool:
    """True for a proxy on this machine (the stand-in), where K8 cannot bite."""
    if host.lower() in _LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_password(
    environ: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] | None = None,
) -> str:
    """The SIP password: from KPN_VOIP_PASSWORD, else asked for without echo."""
    environ = os.environ if environ is None else environ
    password = environ.get(PASSWORD_ENV, "")
    if password:
        return password
    ask = prompt or (lambda text: getpass.getpass(text, stream=sys.stderr))
    try:
        password = ask("SIP password: ")
    except EOFError:
        password = ""
    if not password:
        raise UsageError(f"no password: set {PASSWORD_ENV} or type it at the prompt")
    return password


def confirm_remote_login(
    host: str,
    *,
    assume_yes: bool,
    stdin: TextIO,
    stderr: TextIO,
) -> bool:
    """K8: warn before logging in to a real proxy; True to go on."""
    if is_local(host):
        return True
    minutes = K8_LOCKOUT_SECONDS // 60
    stderr.write(
        f"WARNING: this logs in to {host}. If that is KPN's platform, a wrong password "
        f"blocks the line for about {minutes} minutes, and so does a second device (the "
        "KPN Box) using the same line: switch Vast Bellen off in the KPN Box first.\n"
    )
    if assume_yes:
        return True
    if not stdin.isatty():
        stderr.write("Not confirmed (no terminal to ask on): add --yes to go on.\n")
        return False
    stderr.write("Go on? [y/N] ")
    stderr.flush()
    answer = stdin.readline().strip().lower()
    return answer in ("y", "yes", "j", "ja")


def settings_from_args(args: argparse.Namespace, password: str) -> LineSettings:
    """LineSettings from the arguments; UsageError (never showing the password) if bad."""
    host, port = parse_proxy(args.proxy)
    try:
        return LineSettings.from_user_input(
            number=args.number,
            username=args.username,
            password=password,
            display_name=args.display_name,
            domain=args.domain,
            proxy_host=host,
            proxy_port=port,
            local_port=args.local_port,
        )
    except ValueError as err:
        # Messages name the field, never its value (K9).
        raise UsageError(str(err)) from None


class _Output:
    """JSON lines on stdout, one object per line, flushed at once."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, message: Event | Mapping[str, Any]) -> None:
        self._stream.write(encode(message).decode())
        self._stream.flush()


class _Died:
    """The engine exited or hung (on_exit)."""

    def __init__(self, returncode: int | None, reason: str) -> None:
        self.returncode = returncode
        self.reason = reason


class _Stop:
    """Ctrl-C / SIGTERM, or --duration has passed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def other_device_notice(seen: int, event: Event) -> str | None:
    """K7: the message for people when a `registered` event's `other_bindings` (another
    device registered on the account) appears or goes, given the count `seen` before."""
    if not isinstance(event, RegistrationEvent) or event.state is not RegState.REGISTERED:
        return None
    count = event.other_bindings
    if count and not seen:
        return (
            f"warning: KPN lists {count} other device(s) registered on this line (K7). "
            "KPN allows one: calls may go to the other device and both become unreliable. "
            "Switch off Vast Bellen in the KPN Box, or remove the account from the other device.\n"
        )
    if seen and not count:
        return "The other device is no longer registered on this line (K7).\n"
    return None


async def run(
    args: argparse.Namespace,
    settings: LineSettings,
    *,
    stdout: TextIO,
    stderr: TextIO | None = None,
) -> int:
    """Run the line until a stop condition; the exit code.

    Events go to `stdout` as JSON lines; notices for people to `stderr`.
    """
    out = _Output(stdout)
    notices = stderr or sys.stderr
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event | _Died | _Stop] = asyncio.Queue()
    other_devices = 0

    def on_event(event: Event) -> None:
        nonlocal other_devices
        out.write(event)
        if (notice := other_device_notice(other_devices, event)) is not None:
            notices.write(notice)
            notices.flush()
        if isinstance(event, RegistrationEvent) and event.state is RegState.REGISTERED:
            other_devices = event.other_bindings
        queue.put_nowait(event)

    def on_exit(returncode: int | None, reason: str) -> None:
        queue.put_nowait(_Died(returncode, reason))

    client = EngineClient(
        on_event=on_event,
        on_exit=on_exit,
        command=default_engine_command(args.engine_python),
    )
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, queue.put_nowait, _Stop(signum.name))
        handled.append(signum)
    timer = (
        loop.call_later(args.duration, queue.put_nowait, _Stop("duration"))
        if args.duration
        else None
    )
    code, reason = EXIT_ENGINE, "engine"
    try:
        code, reason = await _drive(client, queue, out, args, settings)
    except EngineError as err:
        out.write({"type": "error", "code": err.code, "message": err.message})
        code, reason = EXIT_ENGINE, err.code
    finally:
        if timer is not None:
            timer.cancel()
        try:
            await client.stop()
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)
        out.write({"type": "exit", "code": code, "reason": reason})
    return code


async def _drive(
    client: EngineClient,
    queue: asyncio.Queue[Event | _Died | _Stop],
    out: _Output,
    args: argparse.Namespace,
    settings: LineSettings,
) -> tuple[int, str]:
    start = asyncio.ensure_future(client.start(settings))
    call_id: str | None = None
    try:
        while True:
            item = await _next(queue, start)
            match item:
                case _Stop():
                    return EXIT_OK, item.reason
                case _Died():
                    out.write(
                        {
                            "type": "error",
                            "code": "engine_died",
                            "message": f"engine exited ({item.returncode}): {item.reason}",
                        }
                    )
                    return EXIT_ENGINE, "engine_died"
                case RegistrationEvent(state=state) if state in AUTH_FAILURE_STATES:
                    # K8: never try again by ourselves; the user has to act.
                    return EXIT_REGISTRATION_FAILED, item.state.value
                case RegistrationEvent(state=RegState.REGISTERED) if (
                    args.dial is not None and call_id is None
                ):
                    call_id = await client.dial(
                        args.dial,
                        hide_caller_id=args.hide_caller_id,
                        hangup_after=args.hangup_after,
                    )
                    out.write({"type": "dial", "call_id": call_id, "number": args.dial})
                case CallEvent(state=CallState.ENDED) if (
                    call_id is not None and item.call_id == call_id
                ):
                    return EXIT_OK, "call_ended"
                case _:
                    pass
    finally:
        if not start.done():  # stopped while starting
            start.cancel()


async def _next(
    queue: asyncio.Queue[Event | _Died | _Stop], start: asyncio.Future[None]
) -> Event | _Died | _Stop:
    """The next queued item; raises start()'s EngineError once start() failed.

    Events arrive while start() still runs (it returns only after the engine
    took the settings), and a Ctrl-C then must not wait for it.
    """
    if not start.done():
        getter = asyncio.ensure_future(queue.get())
        waiting: set[asyncio.Future[Any]] = {getter, start}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
    start.result()  # raises EngineError if start failed
    return await queue.get()


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    prompt: Callable[[str], str] | None = None,
) -> int:
    """The command; returns the exit code (see EXIT_*)."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.hide_caller_id or args.hangup_after) and args.dial is None:
        parser.error("--hide-caller-id and --hangup-after need --dial")  # exits with 2
    try:
        if args.dial is not None:
            # K25: the one local check, before the password is asked for; what goes on
            # is the number as it is dialled (the engine adds *31* for K26 and judges it).
            args.dial = dial_string(args.dial)
        # Check everything but the password before asking for it.
        settings_from_args(args, "-")
        host, _ = parse_proxy(args.proxy)
        if not confirm_remote_login(host, assume_yes=args.yes, stdin=stdin, stderr=stderr):
            return EXIT_NOT_CONFIRMED
        settings = settings_from_args(args, read_password(environ, prompt))
    except (UsageError, InvalidFieldError) as err:
        stderr.write(f"error: {err}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        stderr.write("\n")
        return EXIT_OK
    try:
        return asyncio.run(run(args, settings, stdout=stdout, stderr=stderr))
    except KeyboardInterrupt:  # before the signal handlers were in place
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
