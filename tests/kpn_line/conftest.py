"""Fixtures for the engine tests: a running line (engine + client) against real peers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
import contextlib
from dataclasses import dataclass, field
import os
from pathlib import Path
import socket
import time
from typing import Any

import pytest

from custom_components.kpn_voip.kpn_line.client import (
    EngineClient,
    EngineError,
    default_engine_command,
)
from custom_components.kpn_voip.kpn_line.profile import K19_RTP_PORT_MAX, K19_RTP_PORT_MIN
from custom_components.kpn_voip.kpn_line.protocol import (
    CallEvent,
    CallState,
    ErrorEvent,
    Event,
    RegistrationEvent,
    RegState,
)
from custom_components.kpn_voip.kpn_line.settings import LineSettings
from kpn_devtools.farend import FarEnd
from kpn_devtools.kamailio import TEST_ACCOUNT

PACKAGE_PARENT = Path(__file__).resolve().parents[2] / "custom_components" / "kpn_voip"


@pytest.fixture(autouse=True)
def _sockets_for_engine_tests(request: pytest.FixtureRequest) -> None:
    """Engine tests talk to real peers on loopback: lift phcc's socket block."""
    request.getfixturevalue("socket_enabled")


@dataclass(frozen=True)
class Untyped:
    """A command that the typed ones cannot express (an engine refusal under test).

    The client sends it like any command (commands.encode_command writes its
    fields): `type` as given, `settings` as a raw wire object.
    """

    type: str
    settings: dict[str, Any] | None = None


@dataclass
class Line:
    """An engine with its client, and every event it reported."""

    client: EngineClient
    events: list[Event] = field(default_factory=list)
    exits: list[tuple[int | None, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_event(self, event: Event) -> None:
        self.events.append(event)
        self.changed.set()

    def on_exit(self, returncode: int | None, reason: str) -> None:
        self.exits.append((returncode, reason))
        self.changed.set()

    async def wait(self, predicate: Callable[[Event], bool], timeout: float = 5.0) -> Event:  # noqa: ASYNC109
        """The first event (old or new) matching `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if predicate(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching event; got {self.events!r}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)

    async def wait_exit(self, timeout: float) -> None:  # noqa: ASYNC109
        """Until on_exit was called (or `timeout`)."""
        deadline = time.monotonic() + timeout
        while not self.exits and time.monotonic() < deadline:
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), deadline - time.monotonic())

    async def wait_state(
        self,
        state: RegState,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> RegistrationEvent:
        event = await self.wait(
            lambda e: isinstance(e, RegistrationEvent) and e.state == state, timeout
        )
        assert isinstance(event, RegistrationEvent)
        return event

    async def wait_call(
        self,
        state: CallState,
        call_id: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> CallEvent:
        event = await self.wait(
            lambda e: isinstance(e, CallEvent)
            and e.state == state
            and (call_id is None or e.call_id == call_id),
            timeout,
        )
        assert isinstance(event, CallEvent)
        return event

    def registrations(self) -> list[RegistrationEvent]:
        return [e for e in self.events if isinstance(e, RegistrationEvent)]

    def calls(self) -> list[CallEvent]:
        return [e for e in self.events if isinstance(e, CallEvent)]

    def errors(self) -> list[ErrorEvent]:
        return [e for e in self.events if isinstance(e, ErrorEvent)]


LineFactory = Callable[..., Awaitable[Line]]


def engine_command(prefix: Sequence[str] = (), log_level: int | None = None) -> list[str]:
    """The engine's command line, optionally inside a netns (`prefix`)."""
    cmd = [*prefix, *default_engine_command()]
    if log_level is not None:
        cmd += ["--log-level", str(log_level)]
    return cmd


@pytest.fixture
async def line_factory() -> AsyncIterator[LineFactory]:
    """Start lines: `await line_factory(settings, registered=True, command=None)`."""
    lines: list[Line] = []

    async def factory(
        settings: LineSettings,
        *,
        registered: bool = True,
        single_attempt: bool = False,
        previous_contacts: Sequence[str] = (),
        **client_options: Any,
    ) -> Line:
        """`client_options`: EngineClient's command, ping_interval, reply_timeout."""
        line = Line(client=None)  # type: ignore[arg-type]
        line.client = EngineClient(on_event=line.on_event, on_exit=line.on_exit, **client_options)
        lines.append(line)
        await line.client.start(
            settings, single_attempt=single_attempt, previous_contacts=previous_contacts
        )
        if registered:
            await line.wait_state(RegState.REGISTERED, timeout=10)
        return line

    try:
        yield factory
    finally:
        for line in lines:
            await line.client.stop()


def sip_headers(text: str, name: str) -> list[str]:
    """Values of header `name` in a SIP message (case-insensitive)."""
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
    out = []
    for raw in head.split("\n")[1:]:
        key, sep, value = raw.partition(":")
        if sep and key.strip().lower() == name.lower():
            out.append(value.strip())
    return out


def sip_body(text: str) -> str:
    """The body of a SIP message."""
    parts = text.replace("\r\n", "\n").split("\n\n", 1)
    return parts[1] if len(parts) > 1 else ""


def send_udp(data: bytes, target: tuple[str, int], source: str = "127.0.0.1") -> None:
    """One datagram to `target` (loopback only) from `source`."""
    assert target[0].startswith("127.")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.sendto(data, target)


def engine_sockets(line: Line) -> dict[str, list[int]]:
    """Local ports of the engine's sockets by protocol (udp, udp6, tcp, tcp6).

    From its own /proc/<pid>/net: that is per netns.
    """
    pid = line.client.pid
    assert pid is not None
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    out: dict[str, list[int]] = {}
    for proto in ("udp", "udp6", "tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{proto}") as fh:
            rows = [row.split() for row in fh.readlines()[1:]]
        out[proto] = [int(cols[1].rsplit(":", 1)[1], 16) for cols in rows if cols[9] in inodes]
    return out


def engine_port(line: Line) -> int:
    """The engine's SIP port: its UDP socket outside the RTP range (K19)."""
    ports = engine_sockets(line)["udp"]
    sip = [p for p in ports if not K19_RTP_PORT_MIN <= p <= K19_RTP_PORT_MAX]
    assert sip, ports
    return sip[0]


def registrar_settings(port: int) -> LineSettings:
    """TEST_ACCOUNT's settings with the proxy at 127.0.0.1:`port` (a SIPp registrar, or none)."""
    return LineSettings(
        number=TEST_ACCOUNT.number,
        username=TEST_ACCOUNT.username,
        password=TEST_ACCOUNT.password,
        proxy_host="127.0.0.1",
        proxy_port=port,
    )


def refused[E: Exception](
    call: Callable[[], object], error_type: type[E], code: str, codes: Iterable[str]
) -> E:
    """`call()` must raise `error_type` with `code` (one of `codes`) and str() = its message."""
    with pytest.raises(error_type) as caught:
        call()
    err: Any = caught.value
    assert err.code == code
    assert err.code in codes
    assert str(err) == err.message
    assert err.message
    return caught.value


async def expect_error(request: Awaitable[object], code: str) -> EngineError:
    """`request` must fail with an EngineError of `code`; that error."""
    with pytest.raises(EngineError) as err:
        await request
    assert err.value.code == code, err.value
    return err.value


def _sipp_lines(*lines: str) -> str:
    """Lines of a SIPp message, indented as in the scenario (blank lines stay empty)."""
    return "\n".join("      " + line if line else "" for line in lines)


def _callee_sdp(version: int, *media: str) -> str:
    """The callee's Contact, SDP headers and SDP (session `version`) in a SIPp message."""
    return _sipp_lines(
        "Contact: <sip:callee@[local_ip]:[local_port];transport=[transport]>",
        "Content-Type: application/sdp",
        "Content-Length: [len]",
        "",
        "v=0",
        f"o=callee 1 {version} IN IP[local_ip_type] [local_ip]",
        "s=-",
        "c=IN IP[media_ip_type] [media_ip]",
        "t=0 0",
        *media,
    )


def _callee_request(method: str) -> str:
    """The head of a request the callee sends inside the dialog (CSeq 10)."""
    return _sipp_lines(
        f"{method} [next_url] SIP/2.0",
        "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]",
        "From:[$callee];tag=[pid]SIPpTag01[call_number]",
        "To:[$caller]",
        "Call-ID: [call_id]",
        f"CSeq: 10 {method}",
        "[routes]",
        "Max-Forwards: 70",
    )


def _callee_response(status: str) -> str:
    """The head of the callee's answer to the INVITE (its To gets the callee's tag)."""
    return _sipp_lines(
        f"SIP/2.0 {status}",
        "[last_Via:]",
        "[last_From:]",
        "[last_To:];tag=[pid]SIPpTag01[call_number]",
        "[last_Call-ID:]",
        "[last_CSeq:]",
        "[last_Record-Route:]",
    )


_AUDIO_ANSWER = _callee_sdp(
    1,
    "m=audio [media_port] RTP/AVP 8 101",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=ptime:20",
)
_T38_OFFER = _callee_sdp(
    2,
    "m=image [media_port] udptl t38",
    "a=T38FaxVersion:0",
    "a=T38MaxBitRate:14400",
    "a=T38FaxRateManagement:transferredTCF",
    "a=T38FaxUdpEC:t38UDPRedundancy",
)


T38_REINVITE_UAS = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- Callee that answers, then sends a T.38 re-INVITE (K17) and expects 488. -->
<scenario name="uas_t38">
  <recv request="INVITE" crlf="true" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="caller"/>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="callee"/>
    </action>
  </recv>
  <send>
    <![CDATA[
{_callee_response("180 Ringing")}
      Contact: <sip:callee@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
{_callee_response("200 OK")}
{_AUDIO_ANSWER}

    ]]>
  </send>
  <recv request="ACK"/>
  <pause milliseconds="300"/>
  <send retrans="500">
    <![CDATA[
{_callee_request("INVITE")}
{_T38_OFFER}

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="488"/>
  <send>
    <![CDATA[
{_callee_request("ACK")}
      Content-Length: 0

    ]]>
  </send>
  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


def fd_count(pid: int | None = None) -> int:
    """Open file descriptors of a process (default: this one)."""
    return len(os.listdir(f"/proc/{pid or os.getpid()}/fd"))


@pytest.fixture
def far_ends() -> Iterator[list[FarEnd]]:
    """Far ends started by a test; stopped afterwards."""
    started: list[FarEnd] = []
    try:
        yield started
    finally:
        for far in started:
            far.stop()
