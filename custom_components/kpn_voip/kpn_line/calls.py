"""The engine's calls: pjsua2's Call/Account objects and each call's life cycle.

* `CallRecord` is what the engine knows about one call; calls are tracked by
  object and our own id ("c<n>"), never by pjsua's id (which it reuses at once);
* `LineCall` / `LineAccount` / `LineEndpoint` are the pjsua2 subclasses whose
  callbacks report to the call table or the engine (through `AccountOwner`, so
  this module never imports engine.py);
* `CallTable` holds the live calls: answer, hang up, turn pjsua's call states
  into `call` events (docs/engine-protocol.md), end calls stuck before answer.

Everything here runs on the pjsua2 thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import re
import time
from typing import Any, Final, Protocol

import pjsua2 as pj

from .audio import AudioDesk
from .media import add_ptime, reject_fax, set_call_media
from .profile import K8_AUTH_FAILURE_CODES
from .protocol import CallerId, CallEvent, CallState, Direction, EndReason, Event
from .reason import (
    CALL_REJECTED,
    NO_ANSWER,
    NO_MEDIA_SESSION,
    NO_USER_RESPONDING,
    NORMAL_CLEARING,
    TEMPORARY_FAILURE,
    parse_reason,
    reason_value,
)
from .registration import ChallengeBudget
from .stdio import LOGGER, guard

# An incoming call nobody answers ends as a missed call (480) after this long, so a
# flood of ringing INVITEs frees its call slots again within it.
MAX_RING_SECONDS: Final = 120.0
MAX_SETUP_SECONDS: Final = 180.0  # an outgoing call unanswered this long is stuck
# Requests after the INVITE in one call's dialog whose challenge may be answered (K8).
LATER_CHALLENGED_REQUESTS: Final = 4
# Call ids are "c<n>-<token>": n counts this engine's calls from 1, the token (the
# engine's start in milliseconds since 1970, base 36) tells engines apart, so a call
# id is never given out again after a restart or a reload (history, automations).
_CALL_ID: Final = re.compile(r"c([1-9][0-9]{0,17})-([0-9a-z]{1,16})")
_BASE36: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
_SESSION_TERMINATED: Final = "PJSIP_ESESSIONTERMINATED"
# Issue 9 item 12: a call whose audio cannot be set up ends with this cause (pjsua's own
# for an answer without a common codec; RFC 3261 §21.4.26 488 Not Acceptable Here).
NO_MEDIA: Final = (488, "Unable to create media session")


@dataclass
class CallRecord:
    """What the engine knows about one call (tracked by object, never by pjsua id)."""

    call_id: str
    direction: Direction
    caller: CallerId = field(default_factory=CallerId)  # the other party (K16)
    waiting: bool = False
    created: float = field(default_factory=time.monotonic)
    answered_at: float | None = None
    # The `answer` command sent its 200 (the ACK, CONFIRMED and answered_at are still to
    # come): a second `answer` is refused as not_ringing, never sent to pjsua again.
    answering: bool = False
    alerted: bool = False
    hangup_at: float | None = None  # monotonic deadline of hangup_after (a ringing limit)
    # Set when a ringing limit (hangup_after, a stuck call) ended it: its `ended` says so.
    no_answer: EndReason | None = None
    hanging_up: bool = False
    ended: bool = False
    end_reason: EndReason | None = None  # RFC 3326: the far end's BYE/CANCEL Reason
    no_media: bool = False  # its audio could not be set up: ended with NO_MEDIA
    # The 401/407 of a challenge left unanswered: pjsip ends the call as "401" then.
    abandoned_code: int | None = None
    # K8: the call's digest challenges, each answered once (registration.ChallengeBudget)
    challenges: ChallengeBudget = field(
        default_factory=lambda: ChallengeBudget(later_requests=LATER_CHALLENGED_REQUESTS)
    )


class LineCall(pj.Call):  # type: ignore[misc]
    """A pjsua2 call reporting to its call table."""

    def __init__(
        self, table: CallTable, account: Any, record: CallRecord, call_id: int = -1
    ) -> None:
        """Bind to `account`; `call_id` is pjsua's id for an incoming call."""
        if call_id >= 0:
            super().__init__(account, call_id)
        else:
            super().__init__(account)
        self.table = table
        self.record = record

    def onCallState(self, prm: Any) -> None:  # noqa: N802  pjsua2 API
        """State changes become call events."""
        guard(note_end_reason, self.record, prm.e)
        guard(self.table.on_call_state, self)

    def onCallTsxState(self, prm: Any) -> None:  # noqa: N802  pjsua2 API
        """A transaction of the call: a received CANCEL/BYE may carry a Reason (RFC 3326)."""
        guard(note_end_reason, self.record, prm.e)

    def onCallSdpCreated(self, prm: Any) -> None:  # noqa: N802
        """K20: pjsua sets ptime 20 but never writes a=ptime; add it to our SDP."""
        guard(add_ptime, prm)

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        """The call's audio is up (or changed): silence goes out from now on (audio.py)."""
        guard(self.table.on_media_state, self)

    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
        """A digit from the far end (K15: RFC 2833 only, audio.py)."""
        guard(self.table.audio.on_dtmf_digit, self, prm)

    def onCallRxOffer(self, prm: Any) -> None:  # noqa: N802
        """K17: decline a T.38 (fax) offer cleanly."""
        guard(reject_fax, prm)

    def onCallRxReinvite(self, prm: Any) -> None:  # noqa: N802
        """K17: decline a T.38 re-INVITE cleanly (488)."""
        guard(reject_fax, prm)


def note_end_reason(record: CallRecord, event: Any) -> None:
    """Keep the RFC 3326 Reason of a received BYE or CANCEL (`event`: a pjsua2 SipEvent).

    pjsip reports a received CANCEL in the CANCEL transaction (onCallTsxState) before
    the call is DISCONNECTED; a received BYE comes with the DISCONNECTED state itself.
    The first reason found is kept.
    """
    if record.end_reason is not None or event.type != pj.PJSIP_EVENT_TSX_STATE:
        return
    tsx_state = event.body.tsxState
    if tsx_state.type != pj.PJSIP_EVENT_RX_MSG:
        return
    message = str(tsx_state.src.rdata.wholeMsg)
    if message.startswith(("CANCEL ", "BYE ")):
        record.end_reason = parse_reason(message)


class AccountOwner(Protocol):
    """What a LineAccount reports to (the engine)."""

    def on_reg_state(self, prm: Any) -> None:
        """A REGISTER of the registering account was answered (pjsua2 OnRegStateParam)."""

    def on_incoming_call(self, account: LineAccount, prm: Any) -> None:
        """An INVITE arrived on `account` (pjsua2 OnIncomingCallParam)."""

    def on_auth_challenge(self, account: LineAccount, prm: Any) -> None:
        """A request of `account` was challenged (pjsua2 OnAuthChallengeParam)."""

    def on_instant_message(self, account: LineAccount, prm: Any) -> None:
        """A MESSAGE arrived, not answered yet (pjsua2 OnInstantMessageParam)."""

    def on_incoming_subscribe(self, account: LineAccount, prm: Any) -> None:
        """A SUBSCRIBE arrived: set prm.code (pjsua2 OnIncomingSubscribeParam)."""

    def on_rx_request(self, prm: Any) -> None:
        """A request outside any dialog arrived, before pjsua handles it: leave
        prm.code 0, or set it to refuse or drop the request (OnRxRequestParam)."""


class LineAccount(pj.Account):  # type: ignore[misc]
    """A pjsua2 account reporting to the engine."""

    def __init__(self, owner: AccountOwner, *, registering: bool) -> None:
        """`registering`: the account that REGISTERs (no credentials, see registration.py)."""
        super().__init__()
        self.owner = owner
        self.registering = registering

    def onRegState(self, prm: Any) -> None:  # noqa: N802
        """A REGISTER was answered (or failed locally)."""
        if self.registering:
            guard(self.owner.on_reg_state, prm)

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
        """An INVITE arrived."""
        guard(self.owner.on_incoming_call, self, prm)

    def onInstantMessage(self, prm: Any) -> None:  # noqa: N802
        """A MESSAGE: the owner answers it (a refusal)."""
        guard(self.owner.on_instant_message, self, prm)

    def onIncomingSubscribe(self, prm: Any) -> None:  # noqa: N802
        """A SUBSCRIBE: refused unless the owner says otherwise (it never does)."""
        prm.code = 403
        guard(self.owner.on_incoming_subscribe, self, prm)

    def onAuthChallenge(self, prm: Any) -> None:  # noqa: N802
        """A 401/407: the owner answers it once or leaves it; whatever is left is abandoned.

        Abandoning here (a no-op once answered) keeps pjsip from answering it by
        itself with the stored credentials, which it would do again and again (K8).
        """
        try:
            guard(self.owner.on_auth_challenge, self, prm)
        finally:
            prm.challenge.abandon()


class LineEndpoint(pj.Endpoint):  # type: ignore[misc]
    """The pjsua2 Endpoint (a singleton): out-of-dialog requests go to the owner first.

    `onRxRequest` comes from this project's patch of pjsua2
    (packaging/pjsua2/patches/0001-pjsua2-endpoint-onRxRequest.patch): without it,
    pjsua's own modules answer some requests from anybody (its OPTIONS handler,
    pjsua_core.c options_on_rx_request, answers 200); issue 9 item 10.
    """

    def __init__(self, owner: AccountOwner) -> None:
        """The Endpoint singleton; libCreate comes later."""
        super().__init__()
        self.owner = owner

    def onRxRequest(self, prm: Any) -> None:  # noqa: N802  pjsua2 API
        """A request outside any dialog and transaction: the owner may refuse or drop it."""
        guard(self.owner.on_rx_request, prm)


def has_request_guard() -> bool:
    """True if this pjsua2 build has the onRxRequest callback (the project's patch)."""
    return hasattr(pj, "OnRxRequestParam") and hasattr(pj.Endpoint, "onRxRequest")


def _no_answer(record: CallRecord) -> EndReason:
    """Why an unanswered call is ended by a timer: the far end rang (180/183) but nobody
    answered (Q.850 19), or it never even rang (Q.850 18)."""
    if record.direction == Direction.INCOMING or record.alerted:
        return NO_ANSWER
    return NO_USER_RESPONDING


def release_retired(retired: list[Any]) -> None:
    """Drop the retired call objects whose pjsua call slot is free now (in place).

    A pjsua2 Call's destructor clears the user data of its pjsua call id and,
    if that id is active, hangs it up.  pjsua gives a finished call's id to the
    next call at once, so a finished call object dropped while its id belongs
    to a new call would detach or hang up that new call.  So a call object is
    kept until its id is not active (nobody's), and dropped then: its
    destructor has nothing to touch.  pjsua2 runs on this one thread, so no
    call can take the id between the check and the drop.
    """
    retired[:] = [obj for obj in retired if _slot_busy(obj)]


def _base36(value: int) -> str:
    """`value` (>= 0) in base 36, lower case: 1764100000000 -> "miezlbls"."""
    digits = ""
    while True:
        value, digit = divmod(value, 36)
        digits = _BASE36[digit] + digits
        if not value:
            return digits


def _slot_busy(obj: Any) -> bool:
    """True for a pjsua2 Call whose call id is active (its own call, or a new one's)."""
    try:
        return isinstance(obj, pj.Call) and bool(obj.isActive())
    except Exception:  # noqa: BLE001  a broken object: nothing of pjsua's to protect
        return False


class CallTable:
    """The live calls by call id, and what happens to them.

    `emit` sends a protocol event; `retired` collects pjsua2 objects to drop
    outside their callbacks (the engine clears it after libHandleEvents).
    """

    def __init__(
        self,
        emit: Callable[[Event], None],
        retired: list[Any],
        on_auth_failure: Callable[[int, str], None] | None = None,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        """No calls yet.

        `on_auth_failure(code, reason)`: a call's credentials were refused (K8);
        `wake()`: wakes the pjsua2 thread (a player's end of file, audio.py).
        """
        self.emit = emit
        self.retired = retired
        self.on_auth_failure = on_auth_failure
        self.calls: dict[str, LineCall] = {}
        self.last_call_number = 0
        self.id_token = _base36(time.time_ns() // 1_000_000)  # this engine's (above _CALL_ID)
        self.audio = AudioDesk(emit, self.calls, self.hangup)  # each call's sound
        self.audio.wake = wake

    def new_record(self, direction: Direction) -> CallRecord:
        """A record with the next call id ("c1-<token>", "c2-<token>", ...: _CALL_ID)."""
        self.last_call_number += 1
        return CallRecord(call_id=f"c{self.last_call_number}-{self.id_token}", direction=direction)

    def was_issued(self, call_id: Any) -> bool:
        """True for a call id this engine gave out, ended or not (not another engine's)."""
        if not isinstance(call_id, str) or not (found := _CALL_ID.fullmatch(call_id)):
            return False
        return found[2] == self.id_token and int(found[1]) <= self.last_call_number

    def by_pjsua_id(self, pjsua_id: int) -> LineCall | None:
        """The live call pjsua knows as `pjsua_id` now (ids are reused: live calls only)."""
        for call in self.calls.values():
            if not call.record.ended and call.getId() == pjsua_id:
                return call
        return None

    def slots_taken(self, besides: int) -> int:
        """pjsua call slots our calls hold (live ones, and ended ones still ending),
        not counting slot `besides` (the pjsua id of the INVITE being decided on, which
        an ended call's object may still name)."""
        ids = {call.getId() for call in self.calls.values()}
        ids |= {obj.getId() for obj in self.retired if _slot_busy(obj)}
        ids.discard(besides)
        return len(ids)

    def live(self) -> int:
        """Calls up or ringing, in either direction, that are not ending (a dial's limit)."""
        return sum(1 for c in self.calls.values() if not (c.record.ended or c.record.hanging_up))

    def busy(self) -> bool:
        """True while any call is not ended (a new incoming one is `waiting`, K24)."""
        return any(not c.record.ended for c in self.calls.values())

    def answered(self) -> bool:
        """True while any call is answered and not ended (its digits may arrive, K15)."""
        return any(
            c.record.answered_at is not None and not c.record.ended for c in self.calls.values()
        )

    def next_deadline(self) -> float | None:
        """The earliest monotonic `hangup_after` deadline still to come, if any: of a call
        neither answered nor ending (a passed one would keep the loop from waiting)."""
        deadlines = [
            c.record.hangup_at
            for c in self.calls.values()
            if c.record.hangup_at is not None
            and c.record.answered_at is None
            and not c.record.hanging_up
        ]
        if (audio := self.audio.next_deadline()) is not None:
            deadlines.append(audio)
        return min(deadlines) if deadlines else None

    def tick(self) -> None:
        """End unanswered calls whose `hangup_after` passed, and calls stuck before answer;
        sound timers.  An answered call is never cut by a timer here."""
        self.audio.tick()
        mono = time.monotonic()
        for call in list(self.calls.values()):
            rec = call.record
            if rec.hanging_up or rec.answered_at is not None:
                continue
            if rec.hangup_at is not None and mono >= rec.hangup_at:
                # hangup_after: the ringing limit of a dialled call (CANCEL, RFC 3326 cause)
                rec.no_answer = _no_answer(rec)
                self.hangup(call, cause=rec.no_answer)
                continue
            limit = MAX_RING_SECONDS if rec.direction == Direction.INCOMING else MAX_SETUP_SECONDS
            if mono - rec.created > limit:
                LOGGER.warning("call %s stuck before answer: ending it", rec.call_id)
                if rec.direction == Direction.INCOMING:
                    self.hangup(call, 480, NO_ANSWER)  # RFC 3398: 480 <-> 19
                else:
                    rec.no_answer = _no_answer(rec)
                    self.hangup(call, cause=rec.no_answer)

    def answer(self, call: LineCall, code: int) -> bool:
        """Answer with `code` (180, 403, ...); on failure end the call and return False."""
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        set_call_media(prm.opt)
        try:
            call.answer(prm)
        except pj.Error as err:
            # A call whose answer failed stays EARLY for ever and blocks a slot.
            LOGGER.warning("answer %s failed: %s", code, err.info())
            self.hangup(call, 500, TEMPORARY_FAILURE)
            return False
        return True

    def hangup(self, call: LineCall, code: int = 0, cause: EndReason | None = None) -> None:
        """End a call (BYE, CANCEL, or a final response `code` to a ringing one); if even
        that fails, forget it (pjsua ends it on its own timers).

        RFC 3326: the BYE / CANCEL / response carries `Reason: <cause>`; without one,
        a ringing incoming call is declined (603, Q.850 21 "Call rejected") and any
        other call ends with Q.850 16 "Normal call clearing" (a hang-up).
        """
        record = call.record
        record.hanging_up = True
        prm = pj.CallOpParam(True)
        if code:
            prm.statusCode = code
        elif record.direction == Direction.INCOMING and record.answered_at is None:
            prm.statusCode = 603  # declined
            cause = cause or CALL_REJECTED
        header = pj.SipHeader()
        header.hName = "Reason"
        header.hValue = reason_value(cause or NORMAL_CLEARING)
        prm.txOption.headers.append(header)
        try:
            call.hangup(prm)
        except pj.Error as err:
            if _SESSION_TERMINATED in str(err.reason):
                # It ended at this very moment by the other side (a CANCEL or an error
                # crossing our hang-up): nothing to end.  Report it with its own cause
                # now, in case pjsua's DISCONNECTED callback for it is still to come.
                self.finish(call, *self._end_cause(call))
                return
            LOGGER.warning("hangup failed: %s", err.info())
            self.finish(call, 500, "Local error")

    def on_media_state(self, call: LineCall) -> None:
        """The call's media changed: its audio is hooked up (audio.py).

        Issue 9 item 12: a call is never left up without media.  If the audio stream
        failed (PJSUA_CALL_MEDIA_ERROR, no active one) or hooking it up fails, the call
        is hung up and its `ended` event says NO_MEDIA (488).
        """
        info = call.getInfo()
        audio = [m.status for m in info.media if m.type == pj.PJMEDIA_TYPE_AUDIO]
        failed = pj.PJSUA_CALL_MEDIA_ERROR in audio and pj.PJSUA_CALL_MEDIA_ACTIVE not in audio
        if not failed:
            try:
                self.audio.on_media_state(call)
            except pj.Error as err:
                LOGGER.warning("call %s: audio not set up: %s", call.record.call_id, err.info())
                failed = True
        if failed and not call.record.hanging_up:
            LOGGER.warning("call %s has no media: ending it", call.record.call_id)
            call.record.no_media = True
            self.hangup(call, NO_MEDIA[0], NO_MEDIA_SESSION)

    @staticmethod
    def _end_cause(call: LineCall) -> tuple[int, str]:
        """The SIP code and reason a call ended with, as pjsua knows them."""
        try:
            info = call.getInfo()
        except pj.Error:
            return 0, "Session terminated"
        return int(info.lastStatusCode), str(info.lastReason)

    def on_call_state(self, call: LineCall) -> None:
        """pjsua's call state -> our call events."""
        record = call.record
        if record.ended:
            return
        info = call.getInfo()
        state = info.state
        if state == pj.PJSIP_INV_STATE_EARLY and record.direction == Direction.OUTGOING:
            if not record.alerted and int(info.lastStatusCode) in (180, 183):
                record.alerted = True
                self.emit_call(record, CallState.ALERTING)
        elif state == pj.PJSIP_INV_STATE_CONFIRMED and record.answered_at is None:
            record.answered_at = time.monotonic()
            self.emit_call(record, CallState.ANSWERED)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            code, reason = int(info.lastStatusCode), str(info.lastReason)
            if record.abandoned_code is not None:
                code = record.abandoned_code
                reason = "Proxy Authentication Required" if code == 407 else "Unauthorized"
            elif record.no_media:
                code, reason = NO_MEDIA
            elif record.no_answer is not None and record.answered_at is None:
                # The line's ringing limit cancelled it: the 487 is its own CANCEL's
                # answer, so `ended` says why (the Q.850 text the CANCEL carried).
                reason = record.no_answer.text or reason
            challenges = record.challenges
            refused = challenges.refused or (
                challenges.credentials_sent
                and record.answered_at is None
                and code in K8_AUTH_FAILURE_CODES
            )
            self.finish(call, code, reason)
            if refused and self.on_auth_failure is not None:
                # K8: 401/403/407 after the credentials: recorded, no more dials.
                self.on_auth_failure(code if code in K8_AUTH_FAILURE_CODES else 401, reason)

    def finish(self, call: LineCall, code: int, reason: str) -> None:
        """Report `ended` once and let go of the call object (outside this callback)."""
        record = call.record
        if record.ended:
            return
        record.ended = True
        duration = 0.0 if record.answered_at is None else time.monotonic() - record.answered_at
        elsewhere = record.end_reason is not None and record.end_reason.answered_elsewhere
        # RFC 3326: a call another device answered (CANCEL, SIP;cause=200) is not missed.
        missed = (
            record.direction == Direction.INCOMING and record.answered_at is None and not elsewhere
        )
        self.calls.pop(record.call_id, None)
        self.retired.append(call)
        self.emit_call(
            record,
            CallState.ENDED,
            code=code,
            reason=reason,
            duration=duration,
            missed=missed,
            end_reason=record.end_reason,
        )
        self.audio.on_call_ended(record.call_id)

    def emit_call(
        self,
        record: CallRecord,
        state: CallState,
        *,
        code: int | None = None,
        reason: str | None = None,
        duration: float | None = None,
        missed: bool = False,
        refused: str | None = None,
        end_reason: EndReason | None = None,
    ) -> None:
        """One call event."""
        self.emit(
            CallEvent(
                call_id=record.call_id,
                direction=record.direction,
                state=state,
                caller=record.caller,
                code=code,
                reason=reason,
                duration=duration,
                missed=missed,
                waiting=record.waiting,
                refused=refused,
                end_reason=end_reason,
                time=time.time(),
            )
        )
