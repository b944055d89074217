"""The line engine: pjsua2 in a process of its own (`python -m kpn_line.engine`).

Protocol: docs/engine-protocol.md (JSON lines on stdin/stdout).  Layout:

* a reader thread reads stdin, decodes each command once and queues it; it
  never touches pjsua2 (stdio.py);
* the main thread owns pjsua2 (threadCnt=0, mainThreadOnly): libHandleEvents
  in a loop that also runs the queued commands and our timers.  A queued
  command wakes it at once with a CRLF (a SIP keep-alive, ignored by pjsip)
  sent to its own UDP port;
* stdout is written under a lock and by nothing else: the process's fd 1 is
  pointed at stderr before pjsua2 starts, so a stray C printf cannot break
  the protocol; logs go to stderr, through a redacting writer (K9, redact.py).

This module is that pjsua2 thread owner: the loop and the command handlers.
The registration driver is in regdriver.py, the pjsua2 settings in
pjconfig.py, the calls in calls.py, a call's media in media.py, addresses in
addresses.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import contextlib
import gc
import os
import queue
import re
import signal
import sys
import threading
import time
from typing import Any, Final

import pjsua2 as pj

from . import PROTOCOL_VERSION
from .addresses import AllowedSources, is_ip_address, source_host
from .callerid import callee_id, parse_caller_id
from .calls import (
    CallRecord,
    CallTable,
    LineAccount,
    LineCall,
    LineEndpoint,
    has_request_guard,
    release_retired,
)
from .commands import (
    MEDIA_COMMANDS,
    Answer,
    CommandError,
    Dial,
    Hangup,
    Ping,
    Request,
    SetCallPolicy,
    Start,
    Stop,
)
from .linepath import PathDriver
from .lockout import credential_fingerprint
from .media import set_call_media
from .numbers import InvalidNumberError, dial_string
from .pjconfig import (
    MAX_CALLS,
    UNREGISTER_WAIT,
    endpoint_config,
    set_codec_priorities,
)
from .policy import CallPolicy, Refusal
from .profile import K24_MAX_CALLS
from .protocol import (
    AUTH_FAILURE_STATES,
    CallerId,
    CallState,
    Direction,
    ErrorCode,
    ErrorEvent,
    Event,
    Hello,
    RegState,
    Reply,
)
from .redact import PjLogWriter, Redactor
from .regdriver import RegistrationDriver
from .registration import Action, RegistrationMachine
from .settings import LineSettings
from .stdio import LOGGER, Output, Waker, guard, parse_log_level, read_commands

_LOGGER: Final = LOGGER
# Longest libHandleEvents wait while no call is answered: pjsip's timers, a packet, a
# command (stdio.Waker), the engine's own deadlines (_wait_ms) and SIGTERM (it
# interrupts the select, see main) end it sooner.  Every wake-up of this thread costs;
# at 1 s the idle engine spent ~0.2 % of a core on them alone (issue 11,
# benchmarks/bench_engine.py figure 3).
IDLE_WAIT_MS: Final = 5000
# Longest wait while a call is answered.  The far end's digits (K15) arrive on the
# media thread; pjsua2 (mainThreadOnly) queues its onDtmfEvent/onDtmfDigit as a pending
# job that only the next libHandleEvents runs, and nothing wakes this thread for it:
# with IDLE_WAIT_MS the digits came up to a second late and in one bunch.
ANSWERED_WAIT_MS: Final = 20
MESSAGE_REFUSED: Final = 403  # the line has no messaging
# pjsua call slots the line's calls may hold at once: the calls up, those still ending and
# refused INVITEs awaiting their ACK (a flood).  Below pjsua's MAX_CALLS, which must keep a
# slot for the INVITE being refused: one more is refused 486 with an event (`busy`).
MAX_LIVE_CALLS: Final = MAX_CALLS - 2
SUBSCRIBE_REFUSED: Final = 489  # Bad Event: the line has no event package (RFC 6665)
# Out-of-dialog requests whose account callbacks refuse strangers themselves (below).
ACCOUNT_GUARDED: Final = frozenset({"INVITE", "MESSAGE", "SUBSCRIBE"})
# `ended`'s reason for an INVITE that rang (ring_early) but pjsua refused by itself.
EARLY_REFUSED: Final = "Refused by the line's SIP stack"
_SIP_CALL_ID: Final = re.compile(r"^(?:call-id|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


def sip_call_id(message: str) -> str:
    """The Call-ID of a SIP message's text (RFC 3261 §20.8, also its short form `i`);
    "" without one."""
    found = _SIP_CALL_ID.search(message)
    return found.group(1) if found else ""


STRANGER_REFUSED: Final = 403  # any other out-of-dialog request from a stranger
# From the proxy, requests pjsua leaves unanswered (the proxy would retransmit them
# for 32 s, Timer F) get a final answer (RFC 3261 §8.2.1): those that only exist
# inside a dialog or a subscription that is not there 481 (§15.1.2 for BYE, RFC 6665
# §4.1.3 NOTIFY, RFC 6086 INFO, RFC 3262 PRACK, RFC 3311 UPDATE); every method the line
# does not implement 501 (§21.5.2: a stateless answer carries no Allow header, which
# 405 requires).  OPTIONS, CANCEL and ACK go on to pjsua (200, 481, dropped).
NO_SUCH_DIALOG: Final = frozenset({"BYE", "NOTIFY", "INFO", "PRACK", "UPDATE"})
HANDLED_BY_PJSUA: Final = frozenset({"OPTIONS", "CANCEL", "ACK"})
# Strangers reported (an `error` event each) per start; more are refused unreported, so
# a scan from many (or spoofed) addresses floods neither Home Assistant nor memory.
MAX_REPORTED_STRANGERS: Final = 32


class Engine(RegistrationDriver, PathDriver):
    """Owns pjsua2; everything here runs on the main thread.

    The registration driver's methods (apply, send_register, on_reg_state,
    on_auth_challenge, on_call_auth_failure) are in regdriver.py; the
    transport, the proxy's address and address changes in linepath.py.
    """

    def __init__(self, out: Output, commands: queue.SimpleQueue[Request | None]) -> None:
        """Nothing of pjsua2 exists until `start`."""
        self.out = out
        self.emit: Callable[[Event], None] = out.write  # an event to the client
        self.commands = commands
        self.waker = Waker()  # the reader thread's wake-up; its target is set at `start`
        self.redact = Redactor()
        self.log_level = 1
        self.ep: Any = None  # the Endpoint once libCreate ran
        self.endpoint: Any = None  # the Endpoint singleton (exists from the start)
        self.log_writer: PjLogWriter | None = None
        self.settings: LineSettings | None = None
        self.machine: RegistrationMachine | None = None
        self.reg_acc: LineAccount | None = None
        self.call_acc: LineAccount | None = None
        self.retired: list[Any] = []  # pjsua2 objects to drop outside their callbacks
        self.table = CallTable(self.emit, self.retired, self.on_call_auth_failure, self.waker)
        self.calls = self.table.calls
        self.sources = AllowedSources()
        self.policy = CallPolicy()  # every call rings until set_call_policy says otherwise
        # The INVITE that rang early (on_rx_request) and waits for its onIncomingCall:
        # (its Call-ID, its record).
        self.early: tuple[str, CallRecord] | None = None
        self.failed_logins: dict[str, float] = {}  # fingerprint -> monotonic until (K8)
        self.pending: list[Callable[[], None]] = []  # work to run outside pjsua callbacks
        self.refused_proxy_network = 0  # INVITEs refused from the proxy's network (item 8)
        self.path_init()  # transport and proxy address state (linepath.py)
        self.done = False

    def reply_error(self, cmd_id: Any, code: str, message: str) -> None:
        """Error reply (thread-safe: the reader thread refuses bad lines with it)."""
        self.out.write(
            Reply(id=cmd_id, ok=False, error_code=code, error_message=self.redact(message))
        )

    # -- main loop ---------------------------------------------------------------

    def run(self) -> None:
        """Serve commands until `stop` (or stdin closes)."""
        while not self.done:
            if self.ep is None:
                try:
                    cmd = self.commands.get(timeout=0.5)
                except queue.Empty:
                    continue
                self.handle(cmd)
                continue
            self.ep.libHandleEvents(self._wait_ms())
            self.end_early()  # an INVITE that rang early but pjsua refused by itself
            self.drain_inbox()  # look-up results (linepath.py)
            release_retired(self.retired)  # never a call object whose id a new call has
            while not self.done:
                try:
                    cmd = self.commands.get_nowait()
                except queue.Empty:
                    break
                self.handle(cmd)
            if not self.done:
                self.tick()

    def _wait_ms(self) -> int:
        if self.pending:
            return 0
        wait = IDLE_WAIT_MS / 1000
        if self.table.answered():
            wait = ANSWERED_WAIT_MS / 1000
        machine = self.machine
        if machine is not None and machine.next_attempt is not None:
            wait = min(wait, machine.next_attempt - time.monotonic())
        for deadline in (self.table.next_deadline(), self.path_deadline()):
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
        return max(0, int(wait * 1000))

    def tick(self) -> None:
        """Timers: deferred work, registration refresh/retry, call deadlines."""
        while self.pending:
            job = self.pending.pop(0)
            guard(job)
        if self.machine is not None:
            self.apply(self.machine.due(time.monotonic()))
        self.path_tick(time.monotonic())
        self.table.tick()

    # -- commands ---------------------------------------------------------------

    def handle(self, request: Request | None) -> None:
        """Run one decoded command (stdio.read_commands); every command gets one reply."""
        if request is None:  # stdin closed: the client is gone
            _LOGGER.info("stdin closed: stopping")
            self.shutdown()
            return
        command = request.command
        result: dict[str, Any] = {}
        try:
            match command:
                case Ping():
                    pass
                case Start():
                    self.cmd_start(command)
                case Stop():
                    self.shutdown(credentials=command.credentials)  # un-REGISTER, hang up
                case Dial():
                    result = self.cmd_dial(command)
                case Hangup():
                    result = self.cmd_hangup(command)
                case Answer():
                    self.cmd_answer(command)
                case SetCallPolicy():
                    self.policy = command.policy  # from the next INVITE on
                case _ if isinstance(command, MEDIA_COMMANDS):
                    result = self.table.audio.execute(command)  # play, record, DTMF
        except CommandError as err:
            self.reply_error(request.id, err.code, err.message)
        except Exception as err:
            _LOGGER.exception("command %s failed", command.type)
            detail = str(err.reason) if isinstance(err, pj.Error) else type(err).__name__
            self.reply_error(request.id, ErrorCode.INTERNAL, detail[:200])
        else:
            self.out.write(Reply(id=request.id, ok=True, result=result))
            if isinstance(command, Stop):
                self.done = True

    def cmd_start(self, cmd: Start) -> None:
        """Configure the line and register."""
        settings = cmd.settings
        self.redact.add(settings.password)  # K9: before anything could log it
        if cmd.log_level is not None:
            self.log_level = cmd.log_level
        until = self.failed_logins.get(credential_fingerprint(settings.username, settings.password))
        if until is not None and time.monotonic() < until:
            # K8: these credentials failed less than 15 minutes ago: never again by ourselves.
            raise CommandError(
                ErrorCode.LOCKED_OUT, "these credentials failed recently; not sending them (K8)"
            )
        if is_ip_address(settings.proxy_host) and ":" in settings.proxy_host:
            # pjsua2 is built without IPv6 media; KPN's proxy (K2) has IPv4 addresses (a
            # name is looked up later, off this thread, and only its IPv4 addresses used).
            raise CommandError(ErrorCode.BAD_REQUEST, "proxy_host: IPv6 is not supported")
        if self.ep is not None and settings.local_port != (self.settings or settings).local_port:
            raise CommandError(ErrorCode.BAD_REQUEST, "local_port: restart the engine to change")
        self.take_previous(settings.number, cmd.previous_contacts)  # K7 (linepath.py)
        if self.ep is None:
            self.init_lib(settings, single_attempt=cmd.single_attempt)
        else:
            self.teardown_line(unregister=True)
        self.settings = settings
        self.setup_line(settings, single_attempt=cmd.single_attempt)

    def cmd_dial(self, cmd: Dial) -> dict[str, Any]:
        """Place a call (K25, K26)."""
        try:
            dialled = dial_string(cmd.number, hide_caller_id=cmd.hide_caller_id)
        except InvalidNumberError as err:
            raise CommandError(ErrorCode.INVALID_NUMBER, str(err)) from None
        machine, settings = self.machine, self.settings
        if machine is None or settings is None or self.call_acc is None:
            raise CommandError(ErrorCode.NOT_STARTED, "the line is not started")
        if machine.state in AUTH_FAILURE_STATES:
            raise CommandError(ErrorCode.LOCKED_OUT, "the line is locked out (K8)")
        if machine.state != RegState.REGISTERED:
            raise CommandError(ErrorCode.NOT_REGISTERED, "the line is not registered")
        if self._line_full(besides=-1):
            up = self.table.live()
            raise CommandError(ErrorCode.LINE_BUSY, f"the line carries {up} calls already (K24)")
        user = dialled.replace("#", "%23")
        uri = f"sip:{user}@{settings.domain}"
        record = self.table.new_record(Direction.OUTGOING)
        record.caller = callee_id(dialled)  # E.164 + national, as the README's table says
        if cmd.hangup_after is not None:
            record.hangup_at = time.monotonic() + cmd.hangup_after
        call = LineCall(self.table, self.call_acc, record)
        prm = pj.CallOpParam(True)
        set_call_media(prm.opt)
        try:
            call.makeCall(uri, prm)
        except pj.Error as err:
            _LOGGER.warning("makeCall failed: %s", err.info())
            self.retired.append(call)
            raise CommandError(ErrorCode.INTERNAL, "the call could not be placed") from None
        self.calls[record.call_id] = call
        self.table.emit_call(record, CallState.DIALING)
        return {"call_id": record.call_id}

    def cmd_hangup(self, cmd: Hangup) -> dict[str, Any]:
        """End one call, or every call."""
        call_id = cmd.call_id
        if call_id is None:
            targets = list(self.calls.values())
        elif call_id in self.calls:
            targets = [self.calls[call_id]]
        elif self.table.was_issued(call_id):
            targets = []  # it ended just before (the far end hung up first): nothing to do
        else:
            raise CommandError(ErrorCode.NO_SUCH_CALL, f"no call {call_id[:20]!r}")
        for call in targets:
            if not call.record.hanging_up:  # a second hang-up of a call that is ending: no-op
                self.table.hangup(call)
        return {"ended": len(targets)}

    def cmd_answer(self, cmd: Answer) -> None:
        """Answer a ringing incoming call; from then on it has sound (audio.py).

        Errors: no_such_call (no call `call_id`, or an outgoing one); not_ringing for a
        call answered, being answered (its 200 is sent, the ACK still to come) or being
        ended: a second `answer` right after the first (two automations) leaves the
        call alone.  internal if pjsua refuses the answer: the call keeps ringing (a
        command's failure never ends a call nobody asked to end).
        """
        call = self.calls.get(cmd.call_id)
        if call is None or call.record.direction != Direction.INCOMING:
            raise CommandError(ErrorCode.NO_SUCH_CALL, f"no ringing call {cmd.call_id[:20]!r}")
        record = call.record
        if record.answering or record.answered_at is not None or record.hanging_up:
            raise CommandError(ErrorCode.NOT_RINGING, f"call {cmd.call_id[:20]!r} is not ringing")
        prm = pj.CallOpParam(True)
        prm.statusCode = 200
        set_call_media(prm.opt)
        record.answering = True
        try:
            call.answer(prm)
        except pj.Error as err:
            record.answering = False
            _LOGGER.warning("answer of %s failed: %s", record.call_id, err.info())
            raise CommandError(ErrorCode.INTERNAL, "the call could not be answered") from None

    # -- pjsua2 set-up -----------------------------------------------------------------

    def init_lib(self, settings: LineSettings, *, single_attempt: bool = False) -> None:
        """libCreate/libInit/transport/libStart: once per process."""
        ep = self.endpoint if self.endpoint is not None else LineEndpoint(self)
        self.endpoint = ep
        ep.libCreate()
        if not has_request_guard():
            _LOGGER.warning("this pjsua2 build lacks onRxRequest: OPTIONS from any address get 200")
        self.log_writer = PjLogWriter(self.redact)
        ep.libInit(endpoint_config(self.log_writer, self.log_level))
        self.ep = ep
        ep.audDevManager().setNullDev()  # no sound card needed
        set_codec_priorities(ep)
        # K18: UDP only, on the address routing to the proxy (linepath.py).
        self.settings = settings
        self.first_transport(settings, single_attempt=single_attempt)
        ep.libStart()

    def setup_line(self, settings: LineSettings, *, single_attempt: bool) -> None:
        """Accounts and the registration machine for `settings`."""
        self.start_watch(settings)  # allowed sources, route checks (linepath.py)
        machine = RegistrationMachine(
            expires=settings.register_expires, single_attempt=single_attempt
        )
        self.machine = machine
        self.emit(machine.starting(time.monotonic()))
        reg_cfg, call_cfg = self.account_configs(settings)
        self.reg_acc = LineAccount(self, registering=True)
        self.reg_acc.create(reg_cfg)
        self.call_acc = LineAccount(self, registering=False)
        self.call_acc.create(call_cfg)
        self.apply(machine.start(time.monotonic()))

    # -- incoming calls ------------------------------------------------------------

    def on_incoming_call(self, account: LineAccount, prm: Any) -> None:
        """Ring (180) and report; never answer by ourselves.

        An INVITE that rang early (ring_early, as it arrived) only gets its call
        object and its 180 here.  Any other is decided here: refused (403 to a
        stranger, the call policy's 486/603, busy), or it rings now, its event
        before the call object and the 180 (pjsua sends the 180 after this
        callback returns anyway).  Should the 180 fail, `ended` follows.
        """
        pjsua_id = int(prm.callId)
        early = self.early
        if early is not None and early[0] == sip_call_id(str(prm.rdata.wholeMsg)):
            self.early = None
            self._ring(account, early[1], pjsua_id)  # it rang already: checked and reported
            return
        self.end_early()
        record = self.table.new_record(Direction.INCOMING)
        host = source_host(str(prm.rdata.srcAddress))
        if host not in self.sources:  # K16/K24 safety: INVITEs only from the proxy
            if self.sources.looks_like_proxy(host):
                self._refused_proxy_network(host)
            else:
                self._refused_stranger("INVITE", host)
            record.ended = True  # no call event ever (K16 safety)
            self._refuse(LineCall(self.table, account, record, pjsua_id), 403)
            return
        record.caller = parse_caller_id(str(prm.rdata.wholeMsg))
        record.waiting = self.table.busy()  # K24
        refusal = self._refusal(record.caller, besides=pjsua_id)
        if refusal is not None:
            # Refused before it rings (486 for do-not-disturb, 603 for the block list:
            # policy.py cites RFC 3261): one `ended` event, never `ringing`.
            record.ended = True
            self._refuse(LineCall(self.table, account, record, pjsua_id), refusal.code)
            self.table.emit_call(
                record,
                CallState.ENDED,
                code=refusal.code,
                reason=refusal.reason,
                duration=0.0,
                refused=refusal.value,
            )
            return
        self.table.emit_call(record, CallState.RINGING)
        self._ring(account, record, pjsua_id)

    def _refusal(self, caller: CallerId, *, besides: int) -> Refusal | None:
        """Why an INVITE from `caller` must not ring (the call policy, or no slot), or
        None.  `besides`: the INVITE's pjsua id, -1 before pjsua gave it one."""
        refusal = self.policy.decide(caller.number, anonymous=caller.anonymous)
        if refusal is None and self._line_full(besides=besides):
            refusal = Refusal.BUSY
        return refusal

    def _line_full(self, *, besides: int) -> bool:
        """True while a new call, either direction, must not be placed or ring.

        K24: K24_MAX_CALLS calls are up (ringing or answered, either direction, not
        ending); then a dial is refused `line_busy` (no INVITE goes out) and an
        incoming INVITE 486 Busy Here before it rings, with its event (`busy`).  Or
        the line's calls hold MAX_LIVE_CALLS pjsua slots (calls ending, refused
        INVITEs awaiting their ACK): refused here, with an event, before pjsua runs
        out of slots and refuses further INVITEs 486 by itself, silently.
        `besides`: the pjsua id of the INVITE being decided on, -1 for none
        (CallTable.slots_taken).
        """
        return (
            self.table.live() >= K24_MAX_CALLS
            or self.table.slots_taken(besides=besides) >= MAX_LIVE_CALLS
        )

    def _ring(self, account: LineAccount, record: CallRecord, pjsua_id: int) -> None:
        """The call object of an INVITE that rings, and its 180 (on failure the call
        ends, with its `ended` event)."""
        call = LineCall(self.table, account, record, pjsua_id)
        self.calls[record.call_id] = call
        self.table.answer(call, 180)

    def _refuse(self, call: LineCall, code: int) -> None:
        """Answer an INVITE that never rings with `code`; its call object goes."""
        self.table.answer(call, code)
        self.retired.append(call)

    def on_rx_request(self, prm: Any) -> None:
        """Issue 9 item 10: a request outside any dialog from a stranger (not the proxy, K16)
        is refused (403) before pjsua's own modules see it, or dropped if it is an ACK.

        Without this, pjsua's OPTIONS handler answers 200 to anybody.  INVITE, MESSAGE
        and SUBSCRIBE go on to the accounts, whose callbacks refuse strangers
        themselves (403).  From the proxy, OPTIONS, CANCEL and ACK go on to pjsua; what
        nothing in the line handles gets a final answer instead of the silence that
        makes the proxy retransmit: 481 (NO_SUCH_DIALOG) or 501 (REFER, PUBLISH,
        unknown methods).
        `prm`: pjsua2 OnRxRequestParam (the project's patch, calls.LineEndpoint).
        """
        method = str(prm.method)
        if method == "INVITE":
            self.ring_early(prm)
            return
        if method in ACCOUNT_GUARDED:
            return
        host = source_host(str(prm.rdata.srcAddress))
        if host in self.sources:
            if method not in HANDLED_BY_PJSUA:
                prm.code = 481 if method in NO_SUCH_DIALOG else 501
            return
        if method == "ACK":
            prm.code = -1  # an ACK is never answered: dropped
            return
        self._refused_stranger(method, host)
        prm.code = STRANGER_REFUSED

    def ring_early(self, prm: Any) -> None:
        """Report a new INVITE's `ringing` as it arrives, before pjsua's work on it.

        pjsua makes the call, its media transport and dialog before onIncomingCall
        (~0.3 ms, issue 11, benchmarks/bench_ha.py --trace): an INVITE that will
        ring (from an allowed source, not refused by the call policy, a slot free)
        rings now, and on_incoming_call takes its record.  Any other INVITE is
        left to on_incoming_call, which refuses it as before.  `prm`: pjsua2
        OnRxRequestParam of an INVITE outside any dialog.
        """
        self.end_early()
        rdata = prm.rdata
        if source_host(str(rdata.srcAddress)) not in self.sources:
            return
        message = str(rdata.wholeMsg)
        caller = parse_caller_id(message)
        if self._refusal(caller, besides=-1) is not None:
            return
        record = self.table.new_record(Direction.INCOMING)
        record.caller = caller
        record.waiting = self.table.busy()  # K24
        self.table.emit_call(record, CallState.RINGING)
        self.early = (sip_call_id(message), record)

    def end_early(self) -> None:
        """An INVITE that rang early and never reached onIncomingCall: pjsua answered it
        by itself (for example 420 for a Require it lacks)."""
        if self.early is None:
            return
        record = self.early[1]
        self.early = None
        record.ended = True
        _LOGGER.warning("an INVITE from %s was refused by the SIP stack", record.caller.number)
        self.table.emit_call(
            record, CallState.ENDED, reason=EARLY_REFUSED, duration=0.0, missed=True
        )

    def _refused_stranger(self, method: str, host: str) -> None:
        """Report a request refused because it is not from the proxy: once per address,
        for the first MAX_REPORTED_STRANGERS addresses."""
        if host in self.sources.rejected or len(self.sources.rejected) >= MAX_REPORTED_STRANGERS:
            return
        self.sources.rejected.add(host)
        self.emit(
            ErrorEvent(
                code=ErrorCode.REJECTED_SOURCE,
                message=f"{method[:32]} from {host[:64]} refused (403): not the proxy",
            )
        )
        _LOGGER.warning("%s from %s refused: not the proxy", method[:32], host[:64])

    def _refused_proxy_network(self, host: str) -> None:
        """An INVITE refused from the proxy's network but not from an allowed address.

        Likely a real call through another node of the platform (issue 9
        item 8): a warning once per address (for the first
        MAX_REPORTED_STRANGERS addresses, like strangers), and an event per
        INVITE that the integration counts (diagnostics).  The sources follow the
        registration; `allowed_sources` widens them if a line needs it.
        """
        self.refused_proxy_network += 1
        rejected = self.sources.rejected
        if host not in rejected and len(rejected) < MAX_REPORTED_STRANGERS:
            rejected.add(host)
            _LOGGER.warning(
                "INVITE from %s refused: in the proxy's network, but not an address the line "
                "registered through; add it to allowed_sources if calls are missing",
                host[:64],
            )
        self.emit(
            ErrorEvent(
                code=ErrorCode.REJECTED_PROXY_NETWORK,
                message=f"INVITE from {host[:64]} refused (403): the proxy's network, "
                f"not the registered proxy ({self.refused_proxy_network} so far)",
            )
        )

    def on_instant_message(self, account: LineAccount, prm: Any) -> None:
        """MESSAGE: refused, from the proxy as well (the line has no messaging).

        The accounts do not answer MESSAGE by themselves (autoRespondSipMessage
        off), so a stranger's MESSAGE never gets a 200.
        """
        host = source_host(str(prm.rdata.srcAddress))
        if host not in self.sources:
            self._refused_stranger("MESSAGE", host)
        response = pj.SendResponseParam()
        response.deferredResponse = pj.DeferredResponse(prm)
        response.code = MESSAGE_REFUSED
        account.sendResponse(response)

    def on_incoming_subscribe(self, account: LineAccount, prm: Any) -> None:
        """SUBSCRIBE: refused (489 Bad Event, RFC 6665 §8.2.1: no event package here),
        403 from a stranger; never a NOTIFY to a Contact somebody named (a reflector)."""
        host = source_host(str(prm.rdata.srcAddress))
        if host not in self.sources:
            self._refused_stranger("SUBSCRIBE", host)
            prm.code = 403
            return
        prm.code = SUBSCRIBE_REFUSED

    # -- shutdown ---------------------------------------------------------------------

    def _pump(self, seconds: float, until: Callable[[], bool]) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until():
            self.ep.libHandleEvents(20)
            while self.pending:
                guard(self.pending.pop(0))

    def teardown_line(self, *, unregister: bool, credentials: bool = True) -> None:
        """Hang up, un-REGISTER (if registered), delete the accounts.

        `credentials` False: a challenge to the un-REGISTER is not answered (K8).
        """
        for call in list(self.calls.values()):
            self.table.hangup(call)
        if self.calls and self.ep is not None:
            self._pump(1.0, lambda: not self.calls)
        machine = self.machine
        if machine is not None:
            step = machine.stop(time.monotonic(), credentials=credentials)
            if step.event is not None:
                self.emit(step.event)
            self.pending.clear()
            reg_acc = self.reg_acc
            if unregister and step.action == Action.UNREGISTER and reg_acc and self.ep:
                # K7: the binding goes; the un-REGISTER answers its own challenge once (K8).
                try:
                    reg_acc.setRegistration(False)
                except pj.Error:
                    machine.on_response(time.monotonic(), 503, "Local error")
                self._pump(UNREGISTER_WAIT, lambda: not machine.in_flight)
        for acc in (self.reg_acc, self.call_acc):
            if acc is not None:
                with contextlib.suppress(Exception):
                    acc.shutdown()
        self.reg_acc = self.call_acc = None
        self.table.audio.clear()
        self.calls.clear()
        self.retired.clear()
        self.machine = None
        gc.collect()

    def shutdown(self, *, credentials: bool = True) -> None:
        """End everything; pjsua2 objects go before libDestroy (`credentials`: see Stop)."""
        if self.done:
            return
        if self.ep is not None:
            self.teardown_line(unregister=True, credentials=credentials)
            gc.collect()
            with contextlib.suppress(Exception):
                self.ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
            # The log writer lives until pjsua2 is gone: pjsip logs while it shuts down.
            self.ep = None
            self.endpoint = None
            self.log_writer = None
            gc.collect()
        self.done = True


# -- process -----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the engine on this process's stdin/stdout."""
    log_level = parse_log_level(sys.argv[1:] if argv is None else list(argv))
    # The protocol gets the real stdout; fd 1 becomes stderr, so nothing else
    # (a C printf of pjlib) can ever write into the protocol stream.
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    out = Output(os.fdopen(proto_fd, "wb", buffering=0))
    commands: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
    engine = Engine(out, commands)
    _LOGGER.redact = engine.redact
    if log_level is not None:
        engine.log_level = log_level
    # Ctrl-C in a terminal reaches the whole process group: the client stops
    # us with `stop`; SIGTERM is treated like stdin closing.  Linux hands a signal
    # sent to the process to this thread (it blocks none), which interrupts
    # pjsip's select: libHandleEvents returns and the handler runs at once, not
    # after IDLE_WAIT_MS (tests/kpn_line/test_engine_robust.py).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: commands.put(None))
    endpoint = LineEndpoint(engine)  # the singleton; libCreate happens at `start`
    engine.endpoint = endpoint
    out.write(Hello(protocol=PROTOCOL_VERSION, pjsua2=_pjsua2_version(endpoint)))
    reader = threading.Thread(
        target=read_commands,
        args=(sys.stdin.fileno(), commands, engine.reply_error, engine.waker),
        daemon=True,
        name="stdin",
    )
    reader.start()
    try:
        engine.run()
    finally:
        engine.shutdown()
    _LOGGER.info("engine stopped")
    return 0


def _pjsua2_version(endpoint: Any) -> str | None:
    with contextlib.suppress(Exception):
        return str(endpoint.libVersion().full)
    return None


if __name__ == "__main__":
    sys.exit(main())
