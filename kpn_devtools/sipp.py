"""SIPp peers on 127.0.0.1: caller into the line, callee (UAS), registrars, raw sender.

Scenarios live in scenarios/ next to this file as templates: {{NAME}} markers are
filled in here; SIPp's own [keywords] are left to SIPp.  Every SIPp runs in a
process group of its own, logs every message (-trace_msg) and is killed by
its `Sipp` factory's stop_all() (the `sipp` fixture's teardown), whatever
happened.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator, Sequence
import contextlib
from dataclasses import dataclass
import html
import math
import os
from pathlib import Path
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Final

from .kamailio import DEMO_ACCOUNT, TEST_ACCOUNT, Account, Kamailio
from .line import K1_DOMAIN, normalize_presented_number, too_long
from .poll import async_wait_until, wait_until
from .ports import free_udp_port, orphan_guard

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
HOST = "127.0.0.1"
DEFAULT_DOMAIN = K1_DOMAIN

# Final answers the caller treats as "the call failed" (no CANCEL needed).
_FAIL_CODES = (
    400, 403, 404, 405, 408, 410, 415, 420, 480, 481, 482, 483, 484, 485, 486, 487, 488,
    491, 500, 501, 502, 503, 504, 600, 603, 604, 606,
)  # fmt: skip

REGISTRAR_SCENARIOS = (
    "always_401",
    "503_then_200",
    "423_then_200",
    "silent",
    "ok",
    "stale_then_200",
    "always_stale",
    "ok_invite_407",
    "ok_invite_403",
    "slow_403",
    "challenge_then_silent",
)

_SEPARATOR = re.compile(r"^-{20,} .*$", re.MULTILINE)
_DIRECTION = re.compile(r"^\S+ message (sent|received)\b.*$", re.MULTILINE)


@dataclass(frozen=True)
class SipMessage:
    """One message SIPp logged: direction ("sent"/"received") and raw text."""

    direction: str
    text: str

    @property
    def first_line(self) -> str:
        """Request line or status line."""
        return self.text.split("\n", 1)[0].strip()

    @property
    def method(self) -> str | None:
        """Request method, None for a response."""
        first = self.first_line
        return None if first.startswith("SIP/2.0") else first.split(" ", 1)[0]

    @property
    def code(self) -> int | None:
        """Status code, None for a request."""
        first = self.first_line
        return int(first.split()[1]) if first.startswith("SIP/2.0") else None

    def header(self, name: str) -> list[str]:
        """Values of every header called `name` (case-insensitive)."""
        head = self.text.split("\n\n", 1)[0].replace("\r", "")
        wanted = name.lower()
        out = []
        for line in head.split("\n")[1:]:
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() == wanted:
                out.append(value.strip())
        return out

    @property
    def cseq_method(self) -> str | None:
        """Method named in CSeq."""
        values = self.header("CSeq")
        return values[0].split()[-1] if values else None


def parse_message_log(text: str) -> list[SipMessage]:
    """Split a SIPp -trace_msg log into messages."""
    out = []
    for chunk in _SEPARATOR.split(text):
        m = _DIRECTION.search(chunk)
        if not m:
            continue
        body = chunk[m.end() :].lstrip("\r\n")
        body = body.replace("\r\n", "\n").rstrip("\n") + "\n"
        if body.strip():
            out.append(SipMessage(direction=m.group(1), text=body))
    return out


def render_scenario(name: str, values: dict[str, str], workdir: Path) -> Path:
    """Fill in the {{NAME}} markers of scenarios/<name>.xml; return the new file."""
    text = (SCENARIOS / f"{name}.xml").read_text()

    def replace(m: re.Match[str]) -> str:
        return values[m.group(1)]

    text = re.sub(r"\{\{([A-Z_]+)\}\}", replace, text)
    fd, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".xml", dir=workdir)
    os.close(fd)
    Path(path).write_text(text)
    return Path(path)


def _xml_text(text: str) -> str:
    """Text safe inside a CDATA section and on one SIP header line."""
    if any(ch in text for ch in "\r\n") or "]]>" in text:
        raise ValueError("header values must be single lines")
    return text


class SippRun:
    """One SIPp process (background); see `wait`, `messages`, `stop`."""

    def __init__(
        self, name: str, args: Sequence[str], workdir: Path, port: int, host: str = HOST
    ) -> None:
        self.name = name
        self.port = port
        self.workdir = workdir
        self.message_file = workdir / f"{name}-{port}-messages.log"
        self.error_file = workdir / f"{name}-{port}-errors.log"
        self.output_file = workdir / f"{name}-{port}-output.log"
        sipp = shutil.which("sipp")
        if sipp is None:
            raise RuntimeError("sipp not found: run inside the environment (scripts/run)")
        self.args = [
            *orphan_guard(),
            sipp,
            *args,
            "-i",
            host,
            "-mi",
            host,
            "-bind_local",
            "-p",
            str(port),
            "-nostdin",
            "-trace_msg",
            "-message_file",
            str(self.message_file),
            "-trace_err",
            "-error_file",
            str(self.error_file),
        ]
        self._out = self.output_file.open("wb")
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=workdir,
        )
        self.returncode: int | None = None

    @property
    def running(self) -> bool:
        """True while SIPp runs."""
        return self._proc is not None and self._proc.poll() is None

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for SIPp to end by itself; return its exit code (0 = all calls ok)."""
        if self._proc is not None:
            try:
                self.returncode = self._proc.wait(timeout=timeout)
            finally:
                if self._proc.poll() is None:
                    self.stop()
            self._close()
        assert self.returncode is not None
        return self.returncode

    async def async_wait(self, timeout: float = 30.0) -> int:  # noqa: ASYNC109
        """wait() for async tests: polls without blocking the event loop."""
        try:
            await async_wait_until(
                lambda: not self.running,
                timeout,
                lambda: f"sipp {self.name} still running after {timeout} s",
            )
        except TimeoutError:
            self.stop()
            raise
        return self.wait(0)

    async def async_wait_for(
        self,
        predicate: Callable[[list[SipMessage]], bool],
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[SipMessage]:
        """wait_for() for async tests."""
        return await async_wait_until(self._matching(predicate), timeout, self._not_met)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Stop SIPp (SIGSTOP to its process group) for the `with` block, continue it
        after: what reaches it meanwhile waits in its socket and is read in one go,
        as on a busy machine that did not run SIPp for a while.  RuntimeError if
        SIPp is not running."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise RuntimeError(f"sipp {self.name} is not running:\n{self.errors()}")
        os.killpg(proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Kill SIPp's process group; idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=2)
                    break
                except subprocess.TimeoutExpired:
                    continue
        else:
            # SIPp is gone, but a child it left behind may not be.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.returncode = proc.wait()
        self._close()

    def _close(self) -> None:
        self._proc = None
        if not self._out.closed:
            self._out.close()

    def messages(self) -> list[SipMessage]:
        """Every SIP message SIPp sent or received so far."""
        try:
            return parse_message_log(self.message_file.read_text(errors="replace"))
        except FileNotFoundError:
            return []

    def received(self, method: str | None = None) -> list[SipMessage]:
        """Messages SIPp received (requests of `method` only, if given)."""
        return [
            m
            for m in self.messages()
            if m.direction == "received" and (method is None or m.method == method)
        ]

    def responses(self, method: str = "INVITE") -> list[int]:
        """Status codes SIPp received for requests of `method`, in order."""
        return [
            m.code
            for m in self.messages()
            if m.direction == "received" and m.code is not None and m.cseq_method == method
        ]

    def final_code(self, method: str = "INVITE") -> int | None:
        """The last final (>= 200) answer to `method`, or None."""
        finals = [c for c in self.responses(method) if c >= 200]
        return finals[-1] if finals else None

    @property
    def answered(self) -> bool:
        """A 200 OK for the INVITE arrived."""
        return 200 in self.responses("INVITE")

    def errors(self) -> str:
        """SIPp's error log plus its output tail, for assertion messages."""
        parts = []
        for path in (self.error_file, self.output_file):
            with contextlib.suppress(FileNotFoundError):
                parts.append(path.read_text(errors="replace")[-2000:])
        return "\n".join(parts)

    def wait_for(
        self, predicate: Callable[[list[SipMessage]], bool], timeout: float = 10.0
    ) -> list[SipMessage]:
        """Poll messages() until predicate(messages) is true; return them."""
        return wait_until(self._matching(predicate), timeout, self._not_met)

    def _matching(
        self, predicate: Callable[[list[SipMessage]], bool]
    ) -> Callable[[], list[SipMessage] | None]:
        """The probe of wait_for()/async_wait_for(): the messages once `predicate` holds."""

        def probe() -> list[SipMessage] | None:
            msgs = self.messages()
            return msgs if predicate(msgs) else None

        return probe

    def _not_met(self) -> str:
        return f"sipp {self.name}: condition not met; log:\n{self.errors()}"


class SippUas(SippRun):
    """A SIPp callee (UAS) listening on 127.0.0.1:port until stopped."""

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) to send INVITEs to, e.g. Kamailio(forward_to=uas.address)."""
        return (HOST, self.port)

    def invites(self) -> list[str]:
        """Raw text of every INVITE received so far."""
        return [m.text for m in self.received("INVITE")]

    def wait_invites(self, count: int = 1, timeout: float = 10.0) -> list[str]:
        """Wait until `count` INVITEs arrived; return them all."""
        self.wait_for(lambda msgs: _count(msgs, "INVITE") >= count, timeout)
        return self.invites()

    async def async_wait_invites(self, count: int = 1, timeout: float = 10.0) -> list[str]:  # noqa: ASYNC109
        """wait_invites() for async tests."""
        await self.async_wait_for(lambda msgs: _count(msgs, "INVITE") >= count, timeout)
        return self.invites()


def _count(msgs: list[SipMessage], method: str) -> int:
    return sum(1 for m in msgs if m.direction == "received" and m.method == method)


class Sipp:
    """Factory for SIPp peers (the `sipp` fixture); stop_all() ends them all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.runs: list[SippRun] = []

    def _run[R: SippRun](
        self, cls: type[R], name: str, args: list[str], port: int = 0, host: str = HOST
    ) -> R:
        port = port or free_udp_port(host)
        run = cls(name, args, self.workdir, port, host)
        self.runs.append(run)
        return run

    def _media_args(self) -> list[str]:
        # Each SIPp gets its own RTP port: the default (6000) would clash.
        media = free_udp_port()
        return ["-min_rtp_port", str(media), "-max_rtp_port", str(media + 10), "-mp", str(media)]

    def _one_call_args(
        self,
        kamailio: Kamailio,
        scenario: Path,
        limit: int,
        auth: tuple[str, str] | None = None,
    ) -> list[str]:
        """SIPp arguments for one call of `scenario` at the stand-in, ended after `limit` s."""
        credentials = ["-au", auth[0], "-ap", auth[1]] if auth else []
        return [
            f"{kamailio.host}:{kamailio.port}",
            "-sf",
            str(scenario),
            "-m",
            "1",
            *credentials,
            "-timeout",
            f"{limit}s",
            "-timeout_error",
            *self._media_args(),
        ]

    def call_line(
        self,
        kamailio: Kamailio,
        *,
        caller: str = "+31612345678",
        name: str | None = "Jan",
        pai: Sequence[str] | None = None,
        privacy: bool = False,
        ring_seconds: float = 2.0,
        answer_expected: bool = False,
        talk_seconds: float = 1.0,
        number: str | None = None,
        from_uri: str | None = None,
        extra_headers: Iterable[str] = (),
        play_audio: bool = True,
        end_headers: Iterable[str] = (),
        dtmf: str = "",
    ) -> SippRun:
        """Call the line (INVITE to its number via the stand-in), in the background.

        K16: `pai` is a list of P-Asserted-Identity values (each a URI like
        "sip:+31612345678@ims.imscore.net;user=phone" or "tel:+31612345678",
        optionally with a display name); None = one sip: PAI for `caller`.
        `privacy` adds "Privacy: id" and an anonymous From.  Rings up to
        `ring_seconds`, then CANCELs; if answered, talks `talk_seconds`
        (playing G.711 a-law RTP) and sends BYE.  With answer_expected the
        run fails (returncode != 0) unless answered in time.  `end_headers` go on
        the CANCEL and on the BYE after talking (e.g. an RFC 3326 `Reason`).
        `dtmf`: digits (DTMF_DIGITS) sent once answered, as RFC 2833 telephone-events
        (payload type 101 of the offer, K15; SIPp's play_dtmf), instead of the audio.
        """
        domain = kamailio.domain
        number = number or kamailio.accounts[0].number
        if pai is None:
            pai = [f"<sip:{caller}@{domain};user=phone>"]
        pai_values = [p if "<" in p else f"<{p}>" for p in pai]
        if from_uri is None:
            if privacy:
                from_uri = '"Anonymous" <sip:anonymous@anonymous.invalid>'
            else:
                display = f'"{name}" ' if name else ""
                from_uri = f"{display}<sip:{caller}@{domain};user=phone>"
        headers = [f"P-Asserted-Identity: {_xml_text(v)}" for v in pai_values]
        if privacy:
            headers.append("Privacy: id")
        headers += [_xml_text(h) for h in extra_headers]
        pcap = _g711a_pcap()
        play = ""
        if dtmf:
            if not DTMF_DIGITS.fullmatch(dtmf):
                raise ValueError(f"dtmf {dtmf!r}: digits 0-9, *, #, A-D, at most 32")
            # SIPp's play_dtmf="DIGITS,TONE_MS,PT": 200 ms tones, with the payload type
            # of telephone-event in call_line.xml's offer (SIPp's own default is 96).
            action = f'<exec play_dtmf="{dtmf},200,101"/>'
            play = f"  <nop>\n    <action>\n      {action}\n    </action>\n  </nop>"
        elif play_audio and pcap is not None:
            play = (
                "  <nop>\n    <action>\n"
                f'      <exec play_pcap_audio="{html.escape(str(pcap))}"/>\n'
                "    </action>\n  </nop>"
            )
        ring_ms = int(ring_seconds * 1000)
        ontimeout = "" if answer_expected else 'ontimeout="cancel"'
        fails = _fail_recvs(ring_ms, ontimeout)
        values = {
            "RURI": f"sip:{number}@{domain}",
            "FROM": _xml_text(from_uri),
            "TO": f"<sip:{number}@{domain}>",
            "CONTACT_USER": "anonymous" if privacy else caller.lstrip("+"),
            "EXTRA_HEADERS": "\n".join("      " + h for h in headers),
            "RING_MS": str(ring_ms),
            "TALK_MS": str(int(talk_seconds * 1000)),
            "ONTIMEOUT": ontimeout,
            "FAIL_RECVS": fails,
            "PLAY_AUDIO": play,
            "END_HEADERS": "".join("\n      " + _xml_text(h) for h in end_headers),
        }
        scenario = render_scenario("call_line", values, self.workdir)
        args = self._one_call_args(kamailio, scenario, int(ring_seconds + talk_seconds + 15))
        return self._run(SippRun, "call_line", args)

    def call_out(
        self,
        kamailio: Kamailio,
        dialled: str,
        account: Account = TEST_ACCOUNT,
        *,
        password: str | None = None,
        ring_seconds: float = 5.0,
        answer_expected: bool = False,
        talk_seconds: float = 1.0,
    ) -> SippRun:
        """A call FROM the line (as a phone on it would place it), in the background.

        INVITE sip:<dialled>@domain, answered by a 407 challenge, then resent
        with credentials; the stand-in forwards it to its forward_to.
        """
        domain = kamailio.domain
        ring_ms = int(ring_seconds * 1000)
        ontimeout = "" if answer_expected else 'ontimeout="cancel"'
        values = {
            "RURI": f"sip:{dialled}@{domain}",
            "FROM": f"<sip:{account.number}@{domain}>",
            "TO": f"<sip:{dialled}@{domain}>",
            "CONTACT_USER": account.number.lstrip("+"),
            "RING_MS": str(ring_ms),
            "TALK_MS": str(int(talk_seconds * 1000)),
            "ONTIMEOUT": ontimeout,
            "FAIL_RECVS": _fail_recvs(ring_ms, ontimeout),
        }
        scenario = render_scenario("call_out", values, self.workdir)
        auth = (account.username, account.password if password is None else password)
        args = self._one_call_args(kamailio, scenario, int(ring_seconds + talk_seconds + 15), auth)
        return self._run(SippRun, "call_out", args)

    def uas(
        self,
        port: int = 0,
        *,
        answer_after: float | None = 0.5,
        reject_code: int | None = None,
        rtp_echo: bool = True,
        codec: tuple[int, str] = (8, "PCMA/8000"),
    ) -> SippUas:
        """A callee on 127.0.0.1:port (0 = free port), until stopped.

        Rings, then answers after `answer_after` s (None = never: rings until
        CANCEL), or rejects every INVITE with `reject_code` (e.g. 486).
        Answers PCMA and echoes RTP back (-rtp_echo); `codec` (payload type,
        rtpmap) puts another codec in the answer (one the line never offered
        makes an answer without a common codec).
        """
        answer_ms = 3_600_000 if answer_after is None else int(answer_after * 1000)
        values = {
            "ANSWER_MS": str(max(answer_ms, 1)),
            "REJECT_CODE": str(reject_code or 500),  # unreachable without the jump
            "REJECT_JUMP": '<nop next="reject"/>' if reject_code else "",
            "CODEC_PT": str(int(codec[0])),
            "CODEC_NAME": _xml_text(codec[1]),
        }
        scenario = render_scenario("uas", values, self.workdir)
        args = ["-sf", str(scenario), *self._media_args()]
        if rtp_echo:
            args.append("-rtp_echo")
        uas: SippUas = self._run(SippUas, "uas", args, port)
        _wait_bound(uas)
        return uas

    def register(
        self,
        kamailio: Kamailio,
        account: Account = TEST_ACCOUNT,
        *,
        password: str | None = None,
        port: int = 0,
        expires: int = 3600,
        timeout: float = 10.0,
    ) -> SippRun:
        """Register `account` (digest auth) from 127.0.0.1:port; wait; return the run.

        run.final_code("REGISTER") is the answer to the last REGISTER (200,
        401 or 403).  `password` overrides the account's (to test a wrong one).
        """
        values = {"NUMBER": account.number, "DOMAIN": kamailio.domain, "EXPIRES": str(expires)}
        scenario = render_scenario("register", values, self.workdir)
        auth = (account.username, account.password if password is None else password)
        args = self._one_call_args(kamailio, scenario, int(timeout), auth)
        run: SippRun = self._run(SippRun, "register", args, port)
        run.wait(timeout + 5)
        return run

    def line(
        self,
        kamailio: Kamailio,
        account: Account = TEST_ACCOUNT,
        *,
        answer_after: float | None = 0.5,
        reject_code: int | None = None,
    ) -> SippUas:
        """A SIPp "phone" on the line: registers `account`, then answers calls.

        The REGISTER and the callee use the same port, since the stand-in sends
        calls to the address the REGISTER came from (K10).
        """
        port = free_udp_port()
        reg = self.register(kamailio, account, port=port)
        if reg.final_code("REGISTER") != 200:
            raise RuntimeError(f"line registration failed: {reg.responses('REGISTER')}")
        return self.uas(port, answer_after=answer_after, reject_code=reject_code)

    def registrar(
        self,
        scenario_name: str,
        port: int = 0,
        *,
        domain: str = DEFAULT_DOMAIN,
        expires: int = 3600,
        min_expires: int = 7200,
        retry_after: int = 1,
        realm: str | None = None,
        delay: float = 4.0,
    ) -> SippUas:
        """A misbehaving registrar on 127.0.0.1:port, until stopped.

        scenario_name: "always_401" (fresh challenge every time), "503_then_200",
        "423_then_200" (Min-Expires: min_expires, then 200 with the asked
        Expires), "silent" (never answers), "ok" (200 without auth),
        "stale_then_200" (challenge, then stale=true to the credentials, then
        200), "always_stale" (every credentialed REGISTER gets stale=true),
        "ok_invite_407" (REGISTER 200 without auth, every INVITE a fresh 407
        for `realm`, default `domain`), "ok_invite_403" (the same, but the
        credentialed INVITE gets 403), "slow_403" (challenge, then 403 to the
        credentials `delay` s later), "challenge_then_silent" (challenge, then
        never an answer to the credentials).  Every nonce is new.
        Requests it got: .received("REGISTER").
        """
        if scenario_name not in REGISTRAR_SCENARIOS:
            raise ValueError(f"unknown registrar scenario {scenario_name!r}")
        values = {
            "DOMAIN": domain,
            "EXPIRES": str(expires),
            "MIN_EXPIRES": str(min_expires),
            "RETRY_AFTER": str(retry_after),
            "REALM": domain if realm is None else realm,
            "DELAY_MS": str(int(delay * 1000)),
        }
        scenario = render_scenario(f"registrar_{scenario_name}", values, self.workdir)
        args = ["-sf", str(scenario), *self._media_args()]
        reg: SippUas = self._run(SippUas, f"registrar_{scenario_name}", args, port)
        _wait_bound(reg)
        return reg

    def out_of_dialog(
        self,
        target: tuple[str, int],
        method: str,
        *,
        source: str = HOST,
        contact: tuple[str, int],
        headers: Iterable[str] = (),
        to_tag: str | None = None,
        wait: float = 3.0,
    ) -> SippRun:
        """One request outside any dialog from `source` (a loopback address) to `target`,
        in the background (issue 9 item 10).

        The request names `contact` as its Contact (where a reflector would send
        NOTIFYs); `headers` are extra header lines (Event, Refer-To, ...); `to_tag`
        makes it look like a request of a dialog.  Waits up to `wait` s for a final
        answer: `final_code(method)` is None when there was none.
        """
        if not (source.startswith("127.") and target[0].startswith("127.")):
            raise ValueError("tests send only to loopback")
        # SIPp takes a wait's timeout from the first recv it waits at: each one has it.
        until = f'timeout="{int(wait * 1000)}" ontimeout="done"'
        codes = (202, 400, 403, 404, 405, 415, 481, 489, 500, 501, 503)
        recvs = [f'  <recv response="100" optional="true" {until}/>']
        recvs += [f'  <recv response="{c}" optional="true" next="done" {until}/>' for c in codes]
        recvs.append(f'  <recv response="200" next="done" {until}/>')
        values = {
            "METHOD": _xml_text(method),
            "RURI": f"sip:line@{target[0]}:{target[1]}",
            "TO_PARAMS": f";tag={_xml_text(to_tag)}" if to_tag else "",
            "CONTACT": f"{contact[0]}:{contact[1]}",
            "HEADERS": "".join(f"      {_xml_text(h)}\n" for h in headers),
            "FINAL_RECVS": "\n".join(recvs),
        }
        scenario = render_scenario("out_of_dialog", values, self.workdir)
        args = [f"{target[0]}:{target[1]}", "-sf", str(scenario), "-m", "1"]
        return self._run(SippRun, f"ood-{method.lower()}", args, host=source)

    @staticmethod
    def send_raw(
        host: str,
        port: int,
        data: bytes,
        source: tuple[str, int] = (HOST, 0),
        *,
        wait_reply: float = 0.0,
    ) -> bytes | None:
        """Send one UDP datagram (garbled/hostile SIP); optionally wait for a reply."""
        if not host.startswith("127."):
            raise ValueError("tests send only to loopback")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(source)
            sock.sendto(data, (host, port))
            if wait_reply <= 0:
                return None
            sock.settimeout(wait_reply)
            try:
                return sock.recv(65535)
            except TimeoutError:
                return None

    def stop_all(self) -> None:
        """Stop every SIPp this factory started."""
        for run in self.runs:
            run.stop()


def _g711a_pcap() -> Path | None:
    """The a-law sample Debian's sip-tester ships (<prefix>/share/sip-tester)."""
    sipp = shutil.which("sipp")
    if sipp is None:
        return None
    pcap = Path(sipp).resolve().parents[1] / "share" / "sip-tester" / "g711a.pcap"
    return pcap if pcap.exists() else None


def _fail_recvs(ring_ms: int, ontimeout: str) -> str:
    """Optional recvs that send a failed INVITE to the "failed" label."""
    return "\n".join(
        f'  <recv response="{code}" optional="true" next="failed" timeout="{ring_ms}" {ontimeout}/>'
        for code in _FAIL_CODES
    )


def _wait_bound(run: SippRun, timeout: float = 5.0) -> None:
    """Wait until SIPp listens on its UDP port (a server must be ready first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not run.running:
            raise RuntimeError(f"sipp {run.name} exited:\n{run.errors()}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((HOST, run.port))
            except OSError:
                return
        time.sleep(0.02)
    raise RuntimeError(f"sipp {run.name} did not bind 127.0.0.1:{run.port}:\n{run.errors()}")


def display_name_problem(name: str) -> str | None:
    """Why `name` cannot be the caller's display name in From, or None if it can.

    The name goes into From as an RFC 3261 quoted-string (§25.1); this tool
    writes it as is, so a quote, a backslash or a line break would end it early.
    """
    if '"' in name or "\\" in name:
        return 'a display name cannot contain quotes (") or backslashes; leave them out'
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "a display name cannot contain line breaks or other control characters"
    return None


# DTMF digits a call sends (RFC 4733 events 0-15), as many as kpn_voip.send_dtmf takes.
DTMF_DIGITS: Final = re.compile(r"[0-9*#A-D]{1,32}")
MAX_CALL_SECONDS: Final = 3600.0  # --ring and --talk: a test call, not a day-long one
_CALLER_NUMBER: Final = re.compile(r"\+?[0-9]+")
_CALLER_SEPARATORS: Final = str.maketrans("", "", " -./()")


def caller_number(text: str) -> str:
    """argparse type of NUMBER: a caller's number as KPN may present it (K16), digits
    with an optional leading +, like +31612345678, 0201234567 or 112 (spaces, dashes,
    dots, slashes and brackets are removed).  Raises argparse.ArgumentTypeError for
    anything else: it goes into the INVITE's From and P-Asserted-Identity URIs as is.
    """
    compact = text.strip().translate(_CALLER_SEPARATORS)
    if _CALLER_NUMBER.fullmatch(compact) and too_long(compact):  # the dial check's bound
        raise argparse.ArgumentTypeError(
            f"{text!r} is too long: a Dutch number has ten digits, an international one"
            " at most 15 after + or 00"
        )
    if not _CALLER_NUMBER.fullmatch(compact) or normalize_presented_number(compact) is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is no phone number: give digits with an optional + at the start,"
            " like +31612345678 or 0201234567 (--anonymous withholds the number)"
        )
    return compact


def seconds(text: str) -> float:
    """argparse type of --ring and --talk: seconds, more than 0, at most an hour.
    Raises argparse.ArgumentTypeError otherwise (a negative --ring made SIPp wait for ever)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is no number of seconds") from None
    if not (math.isfinite(value) and 0 < value <= MAX_CALL_SECONDS):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give seconds more than 0 and at most {MAX_CALL_SECONDS:g}"
        )
    return value


def dtmf_digits(text: str) -> str:
    """argparse type of --dtmf: keypad digits 0-9, *, #, A-D (1 to 32, K15); the
    letters in either case.  Raises argparse.ArgumentTypeError otherwise."""
    digits = text.strip().upper()
    if not DTMF_DIGITS.fullmatch(digits):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give 1 to 32 keypad digits: 0-9, *, # (and A-D), like 1234#"
        )
    return digits


def udp_port(text: str) -> int:
    """argparse type of --port: a UDP port number, 1-65535 (argparse.ArgumentTypeError)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is no port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is a number from 1 to 65535")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """scripts/call: one call into the stand-in's demo line."""
    parser = argparse.ArgumentParser(
        prog="scripts/call", description="Call the stand-in's demo line (K16 caller ID)."
    )
    parser.add_argument(
        "number",
        nargs="?",
        type=caller_number,
        default="+31612345678",
        metavar="NUMBER",
        help="caller's number (digits, optional leading +)",
    )
    parser.add_argument(
        "name", nargs="?", default="Test caller", metavar="NAME", help="caller's display name"
    )
    parser.add_argument("--anonymous", action="store_true", help="withhold the caller ID")
    parser.add_argument("--port", type=udp_port, default=os.environ.get("KPN_SIP_PORT") or "5070")
    parser.add_argument("--ring", type=seconds, default=10.0, metavar="SECONDS")
    parser.add_argument("--talk", type=seconds, default=5.0, metavar="SECONDS")
    parser.add_argument(
        "--dtmf",
        type=dtmf_digits,
        default=None,
        metavar="DIGITS",
        help="once answered, key in these digits (RFC 2833 telephone-events, K15)",
    )
    args = parser.parse_args(argv)
    if problem := display_name_problem(args.name):
        # Said here: a broken From header makes the stand-in drop the INVITE, which
        # would read as "no answer from the stand-in: is it running?".
        parser.error(f"NAME {args.name!r}: {problem}")
    target = Kamailio(accounts=[DEMO_ACCOUNT], port=args.port)  # not started: an address
    workdir = Path(tempfile.mkdtemp(prefix="kpn-call-"))
    factory = Sipp(workdir)
    try:
        who = "anonymous" if args.anonymous else f'"{args.name}" <{args.number}>'
        print(f"calling {DEMO_ACCOUNT.number} via 127.0.0.1:{args.port} as {who} ...", flush=True)
        run = factory.call_line(
            target,
            caller=args.number,
            name=args.name,
            privacy=args.anonymous,
            ring_seconds=args.ring,
            talk_seconds=args.talk,
            dtmf=args.dtmf or "",
        )
        run.wait(args.ring + args.talk + 20)
        codes = run.responses("INVITE")
        if run.answered:
            keyed = f", keyed in {args.dtmf}" if args.dtmf else ""
            if run.received("BYE"):  # SIPp answers a BYE it did not wait for (its default)
                print(f"answered{keyed}; the line hung up first (responses {codes})")
            else:
                print(f"answered{keyed}, talked {args.talk:g} s, hung up (responses {codes})")
        elif 487 in codes:
            print(f"not answered within {args.ring:g} s: cancelled (responses {codes})")
        elif codes:
            print(f"call failed: {run.final_code()} (responses {codes})")
        else:
            print("no answer from the stand-in: is scripts/standin running on that port?")
            return 1
        return 0 if run.answered or 487 in codes else 1
    except KeyboardInterrupt:
        return 130
    finally:
        factory.stop_all()
        target.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
