"""The line's registration driver on the pjsua2 thread (K7, K8, K21).

`RegistrationDriver` carries out what the registration machine
(registration.py, pure) decides: it asks pjsip's registration client for a
REGISTER, answers each digest challenge at most once (or abandons it), feeds
the final answers back to the machine, reports its events and remembers
credentials that failed (K8).  It is a part of the engine (engine.Engine
inherits it), kept here so the engine's main module holds only the loop and
the command handlers; the state it works on is the engine's.
"""

from __future__ import annotations

from collections.abc import Callable
import time
from typing import Any

import pjsua2 as pj

from . import registration
from .calls import CallTable, LineAccount
from .lockout import credential_fingerprint, lockout_until
from .profile import K8_AUTH_FAILURE_CODES
from .protocol import AUTH_FAILURE_STATES, Event
from .registration import Action, RegistrationMachine, Step
from .settings import LineSettings
from .stdio import LOGGER as _LOGGER


class RegistrationDriver:
    """The registration half of the engine: see the module docstring.

    Works on the engine's state: `settings`, `machine` and `reg_acc` (the
    line's, set at `start`), `failed_logins` (fingerprint -> monotonic time
    until which `start` refuses them, K8), `pending` (work run outside pjsua2
    callbacks), `table` (the calls, for their challenges) and `emit`.
    """

    settings: LineSettings | None
    machine: RegistrationMachine | None
    reg_acc: LineAccount | None
    failed_logins: dict[str, float]
    pending: list[Callable[[], None]]
    table: CallTable
    emit: Callable[[Event], None]
    with_path: Callable[[Callable[[], None]], None]  # linepath.PathDriver
    note_registration: Callable[[Any], int]  # linepath.PathDriver
    own_contact: Callable[[], str | None]  # linepath.PathDriver

    def apply(self, step: Step) -> None:
        """Carry out a registration Step: send what it says, report its event."""
        if step.event is not None:
            self.emit(step.event)
            if step.event.state in AUTH_FAILURE_STATES and (settings := self.settings):
                # K8: remember, so a `start` with the same credentials is refused.
                # On the monotonic clock: a clock step must not shorten the window.
                fingerprint = credential_fingerprint(settings.username, settings.password)
                self.failed_logins[fingerprint] = lockout_until(time.monotonic())
        if step.action == Action.REGISTER:
            self.pending.append(self.send_register)

    def send_register(self) -> None:
        """Ask pjsip's registration client for a REGISTER (it goes without credentials).

        One client per line: one Call-ID and a rising CSeq for all of the
        line's REGISTERs (RFC 3261 §10.2, K7), until the line moves to
        another local address (linepath.py).  Its challenge comes to
        on_auth_challenge.  The proxy's name is looked up again first, off
        this thread (issue 9 item 8); the REGISTER goes when the answer is in.
        """
        machine = self.machine
        if self.reg_acc is None or machine is None or not machine.in_flight:
            return
        self.with_path(self._register_now)

    def _register_now(self) -> None:
        """setRegistration(True) on the path just looked up."""
        acc, machine = self.reg_acc, self.machine
        if acc is None or machine is None or not machine.in_flight:
            return
        try:
            acc.setRegistration(True)
        except pj.Error as err:
            _LOGGER.warning("REGISTER could not be sent: %s", err.info())
            self.apply(machine.on_response(time.monotonic(), 503, "Local error"))

    def on_auth_challenge(self, account: LineAccount, prm: Any) -> None:
        """A 401/407 arrived: answer it once with the credentials, or abandon it (K8).

        REGISTERs are judged by the registration machine, a call's requests by
        its call record (registration.ChallengeBudget).  Only a digest
        challenge for the line's own realm (K1) is ever answered.  The caller
        (LineAccount) abandons whatever this leaves unanswered, so pjsip never
        answers a challenge by itself.
        """
        settings = self.settings
        if settings is None:
            return
        msg = str(prm.rdata.wholeMsg)
        challenge = registration.choose_challenge(
            registration.parse_challenges(msg), settings.domain
        )
        call_id = int(prm.callId)
        call = self.table.by_pjsua_id(call_id) if call_id >= 0 else None
        if call is not None:
            status = msg.split(None, 2)[1:2]
            call.record.abandoned_code = 407 if status == ["407"] else 401
        if challenge is None:
            _LOGGER.warning("a challenge not for realm %s: not answered", settings.domain)
            return
        cseq = registration.parse_cseq(msg)
        if call_id < 0:
            machine = self.machine
            if not account.registering or machine is None:
                return
            if not machine.on_challenge(cseq=cseq, stale=challenge.stale):
                _LOGGER.info("REGISTER challenge not answered (K8: once per challenge)")
                return
            if prm.challenge.respond() != 0:
                _LOGGER.warning("REGISTER challenge could not be answered")
                machine.not_sent()
                return
            event = machine.credentials_event(time.monotonic())
            if event is not None:
                self.emit(event)  # K8: credentials out, outcome unknown
            return
        if call is None:
            return
        budget = call.record.challenges
        if not budget.on_challenge(cseq=cseq, stale=challenge.stale):
            _LOGGER.warning("call %s: credentials refused (K8)", call.record.call_id)
            return
        if prm.challenge.respond() != 0:
            _LOGGER.warning("call %s: challenge could not be answered", call.record.call_id)
            budget.not_sent()
            return
        call.record.abandoned_code = None  # answered

    def on_call_auth_failure(self, code: int, reason: str) -> None:
        """A call's credentials were refused (401/403/407 after them): a K8 auth failure."""
        machine = self.machine
        if machine is None or code not in K8_AUTH_FAILURE_CODES:
            return
        self.apply(machine.auth_failed(time.monotonic(), code, reason))

    def on_reg_state(self, prm: Any) -> None:
        """The final answer to our REGISTER (or un-REGISTER)."""
        machine = self.machine
        if machine is None:
            return
        code = int(prm.code)
        reason = str(prm.reason)
        if code == 0:
            code, reason = 503, reason or "Network error"
        expiration = int(prm.expiration) if 200 <= code < 300 else None
        others, contact = 0, None
        if expiration is not None and not machine.unregistering:
            # K16/K24: follow where the registration went.  K7: the 2xx lists every
            # binding of the AOR (RFC 3261 §10.3); one that is not ours is another
            # device on the line.  Read from this answer: no extra REGISTER (K8).
            others = self.note_registration(prm)
            contact = self.own_contact()
        _LOGGER.info("REGISTER answered %s %s", code, reason)
        if others:
            # A count only: the other Contacts name devices, not for the log (K9).
            _LOGGER.warning(
                "the registrar holds %d other binding(s) of this line: another device"
                " is registered on it (K7)",
                others,
            )
        step = machine.on_response(
            time.monotonic(),
            code,
            reason,
            granted=expiration,
            other_bindings=others,
            contact=contact,
        )
        self.apply(step)
