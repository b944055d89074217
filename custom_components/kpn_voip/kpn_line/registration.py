"""The registration state machine and digest challenges (K7, K8, K21). Pure: no pjsua2.

Who sends what: pjsip's registration client (one per line, so one Call-ID
and a rising CSeq for every REGISTER of the line, RFC 3261 §10.2) sends the
REGISTERs; the engine asks it for one with `Action.REGISTER` (first
registration, refresh, retry) or `Action.UNREGISTER`.  Every digest
challenge pjsip receives is put to `on_challenge`, which answers True
(respond once with the credentials) or False (abandon).  The rules (K8:
KPN blocks the line for ~15 minutes after wrong credentials):

* Credentials go out once per challenge, never as a replay: pjsip builds
  each credentialed request from the challenge it answers, and nothing
  re-sends an old Authorization.
* One exchange (one REGISTER the engine asked for) answers one challenge.
  A challenge to the request that carried the credentials (its CSeq is the
  answered one + 1, or unknown) means they were refused: abandoned, and
  the 401/403/407 that follows is `auth_failed`.  Exceptions, each once per
  exchange: `stale=true` (RFC 7616 §3.3: a new nonce, not a wrong password),
  and a challenge to a later request pjsip sent by itself after a
  `423 Interval Too Brief` (it restarts the exchange without credentials and
  with the Min-Expires, RFC 3261 §10.2.8).
* The un-REGISTER answers its own challenge once (no credential replay).
* After `auth_failed` / `locked_out` nothing registers again by itself.

Retries after other failures (`unreachable`): a growing back-off with
jitter, except after a REGISTER nobody answered (408/504), which is retried
at the pace of its own retransmissions, so a registrar that answers again
is seen within seconds (NO_ANSWER_CODES).

Every method takes `now` in seconds of a monotonic clock (never the wall
clock: a clock step must not delay a refresh past expiry).  Events carry
epoch seconds, converted by the `wall` function given to the machine.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
import random
import re
import time
from typing import Final

from .callerid import split_header_values
from .lockout import lockout_until
from .profile import K8_AUTH_FAILURE_CODES, K21_REGISTER_EXPIRES
from .protocol import AUTH_FAILURE_STATES, RegistrationEvent, RegState

BACKOFF_BASE: Final = 2.0  # seconds before the first retry after a network error
BACKOFF_CAP: Final = 300.0  # never wait longer than this between retries
BACKOFF_JITTER: Final = 0.2  # +-20 %
REFRESH_MARGIN: Final = 300.0  # refresh this long before expiry (or at half the time)
# A REGISTER nobody answered: pjsip retransmitted it for 32 s (RFC 3261 §17.1.2.2:
# Timer E doubling up to T2 = 4 s, Timer F = 64*T1), ending in a 408.  A 408 or
# 504 from a proxy means the same: a request waited out a timer on the path.
# The next REGISTER then goes after T2 (+-jitter), not after the growing
# back-off: the line keeps sending at the pace of a pending transaction's
# retransmissions (one packet per ~4 s, no more than any client whose request is
# in flight), so a registrar that answers again sees a REGISTER within
# T2 * (1 + BACKOFF_JITTER) + 0.5 s (the last retransmission goes 0.5 s before
# Timer F) = 5.3 s, and is registered a round trip later (issue 9: <= 10 s).
# Answers that come at once (503, a local error) keep the growing back-off:
# they would otherwise repeat at once (RFC 5626 §4.5's reason for one).
NO_ANSWER_CODES: Final = frozenset({408, 504})
NO_ANSWER_RETRY: Final = 4.0  # seconds: T2, the retransmission interval (RFC 3261 §17.1.2.2)

_HEADER_LINE = re.compile(r"^([A-Za-z-]+)[ \t]*:[ \t]*(.*)$")
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^\s,]+)\s*,?')
_DISPLAY_NAME = re.compile(r'^\s*"(?:[^"\\]|\\.)*"')
try:
    # CPython's built-in hash: hashlib would load OpenSSL's libcrypto, ~2.6 MB of
    # resident memory in the engine process for one fingerprint.
    from _sha2 import sha256 as _sha256  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover  another Python implementation
    from hashlib import sha256 as _sha256

# The digest algorithms pjsip answers (RFC 7616); a challenge with another one is not.
ANSWERABLE_ALGORITHMS: Final = frozenset({"MD5", "SHA-256"})


def sha256_hex(data: bytes) -> str:
    """SHA-256 as hex."""
    return str(_sha256(data).hexdigest())


class Action(StrEnum):
    """What the engine has to do next."""

    NONE = "none"
    REGISTER = "register"  # ask pjsip's registration client for a REGISTER
    UNREGISTER = "unregister"  # ask it for the un-REGISTER (Expires 0)


@dataclass(frozen=True, slots=True)
class Challenge:
    """One digest challenge from WWW-Authenticate or Proxy-Authenticate."""

    header: str  # the header it came in: "WWW-Authenticate" or "Proxy-Authenticate"
    realm: str
    nonce: str
    opaque: str | None = None
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    stale: bool = False


def response_headers(whole_msg: str) -> list[tuple[str, str]]:
    """(name, value) of every header of a SIP message, folded lines joined."""
    head = whole_msg.split("\r\n\r\n", 1)[0].split("\n\n", 1)[0]
    out: list[tuple[str, str]] = []
    for raw in head.replace("\r\n", "\n").split("\n")[1:]:
        if raw[:1] in (" ", "\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + " " + raw.strip())
            continue
        m = _HEADER_LINE.match(raw)
        if m:
            out.append((m.group(1), m.group(2).strip()))
    return out


def header_value(whole_msg: str, name: str) -> str | None:
    """The first value of header `name` (case-insensitive), or None."""
    wanted = name.lower()
    for key, value in response_headers(whole_msg):
        if key.lower() == wanted:
            return value
    return None


def parse_challenges(whole_msg: str) -> list[Challenge]:
    """Every digest challenge with an algorithm we can answer (MD5, SHA-256)."""
    out = []
    for key, value in response_headers(whole_msg):
        if key.lower() not in ("www-authenticate", "proxy-authenticate"):
            continue
        scheme, _, rest = value.partition(" ")
        if scheme.lower() != "digest":
            continue
        params: dict[str, str] = {}
        for m in _PARAM.finditer(rest):
            raw = m.group(3) if m.group(3) is not None else m.group(2)
            params[m.group(1).lower()] = raw.replace('\\"', '"')
        algorithm = params.get("algorithm", "MD5").upper()
        if algorithm not in ANSWERABLE_ALGORITHMS or "nonce" not in params or "realm" not in params:
            continue
        qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
        if qop and "auth" not in qop:
            continue  # auth-int only: not supported
        out.append(
            Challenge(
                header="Proxy-Authenticate" if key.lower().startswith("proxy") else key,
                realm=params["realm"],
                nonce=params["nonce"],
                opaque=params.get("opaque"),
                algorithm=algorithm,
                qop=qop,
                stale=params.get("stale", "").lower() == "true",
            )
        )
    return out


def choose_challenge(challenges: list[Challenge], realm: str | None = None) -> Challenge | None:
    """The challenge to answer: only one for `realm` if given (K1), strongest algorithm first.

    None when no challenge is for `realm`: the line has credentials for its
    own realm only, so another realm's challenge is never answered (K8).
    """
    usable = [c for c in challenges if realm is None or c.realm.lower() == realm.lower()]
    usable.sort(key=lambda c: c.algorithm != "SHA-256")
    return usable[0] if usable else None


def parse_cseq(whole_msg: str) -> int | None:
    """The sequence number of a message's CSeq header, or None."""
    value = header_value(whole_msg, "CSeq")
    if value is None:
        return None
    number = value.split(None, 1)[0] if value.split() else ""
    return int(number) if number.isdigit() and len(number) <= 10 else None


@dataclass(frozen=True, slots=True)
class Binding:
    """One binding a REGISTER's 2xx lists: a Contact of the AOR (RFC 3261 §10.3 step 8).

    `uri`: the Contact URI as the registrar wrote it (without <>);
    `expires`: its `expires` parameter in seconds, None when it has none.
    """

    uri: str
    expires: int | None = None

    @property
    def hostport(self) -> str:
        """`host:port` of the URI, lower case; port 5060 when it names none (RFC 3261 §19.1.2)."""
        rest = self.uri.split(":", 1)[1] if ":" in self.uri else self.uri
        host = rest.rsplit("@", 1)[-1].split(";", 1)[0].split("?", 1)[0].lower()
        if host.endswith("]") or host.rsplit("]", 1)[-1].count(":") == 0:
            return f"{host}:5060"
        return host


def _binding(contact: str) -> Binding | None:
    """One contact-param (RFC 3261 §25.1 `contact-param`) as a Binding; None for `*`."""
    contact = _DISPLAY_NAME.sub("", contact, count=1)
    if "<" in contact and ">" in contact.split("<", 1)[1]:
        uri, params = contact.split("<", 1)[1].split(">", 1)
    else:  # addr-spec without <>: its parameters are the header's (RFC 3261 §20.10)
        uri, _, params = contact.partition(";")
        params = ";" + params
    uri = uri.strip()
    if not uri or uri == "*":
        return None
    expires = None
    for param in params.split(";"):
        name, _, raw = param.partition("=")
        if name.strip().lower() == "expires" and raw.strip().isdigit():
            expires = int(raw.strip()[:10])
    return Binding(uri, expires)


def contact_bindings(whole_msg: str) -> list[Binding]:
    """Every current binding a REGISTER's 2xx lists, in order (RFC 3261 §10.3 step 8).

    From each Contact header (also the compact `m`), each of its comma-separated
    contacts; one with `expires=0` (removed) is no binding.  No secret is in a
    Contact; its URIs name devices, so callers count them, never log them (K9).
    """
    out = []
    for name, value in response_headers(whole_msg):
        if name.lower() not in ("contact", "m"):
            continue
        for contact in split_header_values(value):
            binding = _binding(contact)
            if binding is not None and binding.expires != 0:
                out.append(binding)
    return out


def other_bindings(bindings: Sequence[Binding], own: Collection[str]) -> int:
    """K7: how many of the AOR's bindings belong to another device (0 or more).

    `own`: the `host:port` of every Contact of this line (Binding.hostport's
    form: the transport's, and those it is removing after an address move).
    A registrar that rewrites Contacts (to the address it received from, say)
    lists none of them: then one binding is taken as the line's own, so the
    line's own binding is never reported as another device.
    """
    wanted = {hostport.lower() for hostport in own}
    others = sum(1 for binding in bindings if binding.hostport not in wanted)
    if others == len(bindings):
        return max(0, others - 1)
    return others


def refresh_delay(expires: float) -> float:
    """Seconds after a successful REGISTER to refresh it (K21: before expiry)."""
    return max(expires / 2.0, expires - REFRESH_MARGIN)


def wall_clock(monotonic: float) -> float:
    """Epoch seconds of a `time.monotonic()` reading (for events only)."""
    return time.time() - time.monotonic() + monotonic


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of feeding the machine: what to send, and what to report."""

    action: Action = Action.NONE
    event: RegistrationEvent | None = None


class ChallengeBudget:
    """Which digest challenges of one exchange are answered with the credentials (K8).

    An exchange is what pjsip sends for one thing the engine asked for: a
    REGISTER (with pjsip's own restart after a 423), an un-REGISTER, or one
    call (its INVITE and the requests in its dialog).  `cseq` is the CSeq
    number of the challenged request; pjsip sends the credentialed request
    with the next one.

    * The first challenge is answered.
    * A challenge to the request that carried the credentials (CSeq at most
      the credentialed one, or unknown) means they were refused: not
      answered, and `refused` is set - unless it says `stale=true` (RFC 7616
      §3.3: a new nonce, not a wrong password), which is answered once.
    * A challenge to a later request (pjsip's restart after a 423, a BYE in
      the dialog) is answered, at most `later_requests` times.
    * With `answer` False no challenge is answered at all (K8: KPN's block
      window runs, so no credentialed request may go out).
    """

    def __init__(self, *, later_requests: int, answer: bool = True) -> None:
        """`later_requests`: how many later requests of the exchange may be answered."""
        self._answer_any = answer
        self.credentials_sent = False
        self.refused = False
        self._credentialed_cseq: int | None = None
        self._stale_left = 1
        self._later_left = later_requests
        self._before: tuple[bool, int | None, int, int] | None = None

    def on_challenge(self, *, cseq: int | None, stale: bool = False) -> bool:
        """True: answer this challenge (the budget counts it as sent); False: abandon it."""
        if not self._answer_any:
            return False
        if not self.credentials_sent:
            return self._answer(cseq)
        answered = self._credentialed_cseq
        if cseq is None or answered is None or cseq <= answered:
            # The challenge answers the request that carried the credentials.
            if stale and self._stale_left:
                self._stale_left -= 1
                return self._answer(cseq, stale=True)
            self.refused = True
            return False
        if self._later_left:
            self._later_left -= 1
            return self._answer(cseq, later=True)
        return False

    def _answer(self, cseq: int | None, *, stale: bool = False, later: bool = False) -> bool:
        self._before = (
            self.credentials_sent,
            self._credentialed_cseq,
            self._stale_left + stale,
            self._later_left + later,
        )
        self.credentials_sent = True
        self._credentialed_cseq = None if cseq is None else cseq + 1
        return True

    def not_sent(self) -> None:
        """The answer just granted could not be built or sent: nothing went out."""
        if self._before is not None:
            sent, cseq, stale_left, later_left = self._before
            self.credentials_sent, self._credentialed_cseq = sent, cseq
            self._stale_left, self._later_left = stale_left, later_left
            self._before = None


class RegistrationMachine:
    """States per protocol.RegState; see the module docstring for K8."""

    def __init__(
        self,
        *,
        expires: int = K21_REGISTER_EXPIRES,
        single_attempt: bool = False,
        rng: random.Random | None = None,
        wall: Callable[[float], float] = wall_clock,
    ) -> None:
        """`single_attempt`: a login test (K8): no retry of any kind.

        `wall`: monotonic seconds -> epoch seconds, for the events' times.
        """
        self.state = RegState.STARTING
        self.expires = expires  # what a REGISTER asks for (K21; pjsip applies a 423's)
        self.granted: int | None = None
        self.single_attempt = single_attempt
        self.next_attempt: float | None = None  # monotonic time of the next automatic REGISTER
        self.failures = 0  # network-type failures in a row
        self.in_flight = False  # an exchange (REGISTER or un-REGISTER) is under way
        self.unregistering = False
        self.locked_until: float | None = None  # monotonic end of the K8 window
        self._rng = rng or random.Random()  # noqa: S311  jitter, not security
        self._wall = wall
        self._last_code: int | None = None
        self._last_reason: str | None = None
        self._new_exchange()

    def _new_exchange(self) -> None:
        # A REGISTER exchange answers pjsip's one restart after a 423 (honoured once).
        self.budget = ChallengeBudget(later_requests=1)

    @property
    def credentials_sent(self) -> bool:
        """The exchange in flight has sent the credentials (outcome unknown until answered)."""
        return self.budget.credentials_sent

    @property
    def terminal(self) -> bool:
        """True after auth_failed / locked_out / stopped: nothing registers by itself (K8)."""
        return self.state in AUTH_FAILURE_STATES or self.state is RegState.STOPPED

    def _event(
        self,
        now: float,
        *,
        expires: int | None = None,
        other_bindings: int = 0,
        contact: str | None = None,
    ) -> RegistrationEvent:
        return RegistrationEvent(
            state=self.state,
            code=self._last_code,
            reason=self._last_reason,
            expires=expires,
            other_bindings=other_bindings,
            contact=contact,
            next_attempt=None if self.next_attempt is None else self._wall(self.next_attempt),
            time=self._wall(now),
        )

    def starting(self, now: float) -> RegistrationEvent:
        """The engine sets pjsua2 up; nothing is sent yet."""
        self.state = RegState.STARTING
        return self._event(now)

    def start(self, now: float) -> Step:
        """Register now (after `start`)."""
        if self.terminal:
            return Step()
        return self._send(now)

    def _send(self, now: float) -> Step:
        self.state = RegState.REGISTERING
        self.next_attempt = None
        self.in_flight = True
        self._new_exchange()
        return Step(Action.REGISTER, self._event(now))

    def on_challenge(self, *, cseq: int | None, stale: bool = False) -> bool:
        """A 401/407 with a digest challenge we can answer arrived: answer it (True) or not.

        `cseq`: the CSeq number of the challenged request (None: unknown).
        See ChallengeBudget and the module docstring for the rules (K8).
        """
        if not self.in_flight or (self.terminal and not self.unregistering):
            return False
        return self.budget.on_challenge(cseq=cseq, stale=stale)

    def not_sent(self) -> None:
        """The answer on_challenge granted could not be sent (nothing went out)."""
        self.budget.not_sent()

    def credentials_event(self, now: float) -> RegistrationEvent | None:
        """`registering` + credentials_sent, once they are out (K8); None for a refresh.

        While it stands, nobody may start another credentialed attempt: the
        outcome comes within CREDENTIALS_OUTCOME_WAIT.
        """
        if self.state != RegState.REGISTERING or not self.credentials_sent:
            return None
        return RegistrationEvent(state=self.state, credentials_sent=True, time=self._wall(now))

    def on_response(
        self,
        now: float,
        code: int,
        reason: str,
        *,
        granted: int | None = None,
        other_bindings: int = 0,
        contact: str | None = None,
    ) -> Step:
        """The final answer to the exchange in flight (408/503 for local errors too).

        `other_bindings`: for a 2xx, how many bindings of the AOR it lists that
        are not the line's (K7: another device registered on the account); it
        goes into the `registered` event, with `contact` (`host:port` of the
        line's own Contact, RegistrationEvent.contact).
        """
        if not self.in_flight:
            return Step()
        self.in_flight = False
        if self.unregistering:
            self.unregistering = False
            return Step()
        if self.terminal:
            return Step()
        credentialed = self.credentials_sent
        self._last_code, self._last_reason = code, reason
        if 200 <= code < 300:
            self.state = RegState.REGISTERED
            self.failures = 0
            self.granted = granted if granted and granted > 0 else self.expires
            self.next_attempt = now + refresh_delay(self.granted)
            return Step(
                event=self._event(
                    now, expires=self.granted, other_bindings=other_bindings, contact=contact
                )
            )
        if code in K8_AUTH_FAILURE_CODES and (credentialed or self.budget.refused):
            # K8: the credentials were refused; a second challenge is a refusal too.
            return self._terminal(now, RegState.AUTH_FAILED)
        if code == 403:
            # 403 before any credentials were sent: the platform refuses the line (K8).
            return self._terminal(now, RegState.LOCKED_OUT)
        return self._unreachable(now)

    def auth_failed(self, now: float, code: int, reason: str) -> Step:
        """The credentials were refused outside a REGISTER (a call's INVITE): K8 as well."""
        if self.state in (RegState.AUTH_FAILED, RegState.LOCKED_OUT):
            return Step()
        self.in_flight = self.unregistering = False
        self._last_code, self._last_reason = code, reason
        return self._terminal(now, RegState.AUTH_FAILED)

    def _terminal(self, now: float, state: RegState) -> Step:
        self.state = state
        self.next_attempt = None
        self.locked_until = lockout_until(now)
        return Step(event=self._event(now))

    def _unreachable(self, now: float) -> Step:
        self.state = RegState.UNREACHABLE
        if self.single_attempt:
            self.next_attempt = None
            return Step(event=self._event(now))
        self.failures += 1
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (self.failures - 1))
        if self._last_code in NO_ANSWER_CODES:
            delay = min(delay, NO_ANSWER_RETRY)  # see NO_ANSWER_CODES
        delay *= 1.0 + self._rng.uniform(-BACKOFF_JITTER, BACKOFF_JITTER)
        self.next_attempt = now + min(delay, BACKOFF_CAP)
        return Step(event=self._event(now))

    def due(self, now: float) -> Step:
        """Call regularly: the refresh or retry REGISTER when its time has come."""
        if self.terminal or self.in_flight or self.next_attempt is None:
            return Step()
        if now < self.next_attempt:
            return Step()
        if self.state == RegState.REGISTERED:
            # A refresh: registered stays the state shown; only the wire changes (K21).
            self.next_attempt = None
            self.in_flight = True
            self._new_exchange()
            return Step(Action.REGISTER)
        return self._send(now)

    def reregister(self, now: float, reason: str) -> Step:
        """Register again now, from a new local address (issue 9 item 9).

        The line is `registering` (with `reason`) until the answer: a binding
        made from an address the line no longer has does not reach it, so
        `registered` would be wrong.  Nothing when the line is terminal (K8)
        or an exchange is in flight (the caller asks again after it ends).
        """
        if self.terminal or self.in_flight:
            return Step()
        self._last_code, self._last_reason = None, reason
        return self._send(now)

    def stop(self, now: float, *, credentials: bool = True) -> Step:
        """The line is shut down: the un-REGISTER if a binding may exist (K7), and `stopped`.

        The un-REGISTER answers its own challenge once (`on_challenge`), and
        its answer ends the exchange (`on_response`) without another event.
        `credentials` False (KPN's block window runs, K8): its challenge is not
        answered; the binding then expires at the registrar by itself.
        """
        bound = self.state == RegState.REGISTERED or (
            self.in_flight and self.credentials_sent and not self.terminal
        )
        self.state = RegState.STOPPED
        self.next_attempt = None
        event = self._event(now)
        if not bound:
            self.in_flight = False
            return Step(event=event)
        self.in_flight = True
        self.unregistering = True
        self._new_exchange()
        if not credentials:
            self.budget = ChallengeBudget(later_requests=0, answer=False)
        return Step(Action.UNREGISTER, event)
