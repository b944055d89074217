"""The registration state machine and digest authentication (K8, K21). Pure: no pjsua2.

Why the engine authenticates REGISTER itself: pjsip re-sends a credentialed
REGISTER up to three times when the registrar answers with a fresh 401
challenge (its stale-nonce handling), which on KPN's platform locks the line
for ~15 minutes (K8).  So the registering account carries no credentials; the
engine reads the challenge of an unauthenticated REGISTER, computes the
Authorization header here and sends exactly one credentialed REGISTER.  Any
401/403/407 to it is a failure, and nothing registers again until a new
`start` with new credentials.

Every method takes `now` (epoch seconds): the machine has no clock of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
import os
import random
import re
from typing import Final

from .lockout import lockout_until
from .profile import K8_AUTH_FAILURE_CODES, K21_REGISTER_EXPIRES
from .protocol import AUTH_FAILURE_STATES, RegistrationEvent, RegState

BACKOFF_BASE: Final = 2.0  # seconds before the first retry after a network error
BACKOFF_CAP: Final = 300.0  # never wait longer than this between retries
BACKOFF_JITTER: Final = 0.2  # +-20 %
REFRESH_MARGIN: Final = 300.0  # refresh this long before expiry (or at half the time)

_HEADER_LINE = re.compile(r"^([A-Za-z-]+)[ \t]*:[ \t]*(.*)$")
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^\s,]+)\s*,?')
try:
    # CPython's built-in hashes: hashlib would load OpenSSL's libcrypto, ~2.6 MB of
    # resident memory in the engine process for two digests.
    from _md5 import md5 as _md5  # type: ignore[import-not-found,unused-ignore]
    from _sha2 import sha256 as _sha256  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover  another Python implementation
    from hashlib import md5 as _md5, sha256 as _sha256


def md5_hex(data: bytes) -> str:
    """MD5 as hex (digest authentication only, not for security by itself)."""
    return str(_md5(data, usedforsecurity=False).hexdigest())


def sha256_hex(data: bytes) -> str:
    """SHA-256 as hex."""
    return str(_sha256(data).hexdigest())


_HASHES: Final[dict[str, Callable[[bytes], str]]] = {"MD5": md5_hex, "SHA-256": sha256_hex}


class Action(StrEnum):
    """What the engine has to do next."""

    NONE = "none"
    REGISTER = "register"  # a REGISTER without credentials (asks for a challenge)
    AUTHENTICATE = "authenticate"  # the one REGISTER with credentials (K8)


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

    @property
    def answer_header(self) -> str:
        """The header name the answer goes in."""
        return "Proxy-Authorization" if self.header.lower().startswith("proxy") else "Authorization"


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
        if algorithm not in _HASHES or "nonce" not in params or "realm" not in params:
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
    """The challenge to answer: for `realm` if given (K1), strongest algorithm first."""
    usable = [c for c in challenges if realm is None or c.realm.lower() == realm.lower()]
    if not usable:
        usable = challenges
    usable.sort(key=lambda c: c.algorithm != "SHA-256")
    return usable[0] if usable else None


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def digest_authorization(
    challenge: Challenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str | None = None,
    nc: int = 1,
) -> str:
    """The value of the Authorization header answering `challenge` (RFC 2617/7616).

    It carries only a hash of the password (K9).
    """
    digest = _HASHES[challenge.algorithm]
    ha1 = digest(f"{username}:{challenge.realm}:{password}".encode())
    ha2 = digest(f"{method}:{uri}".encode())
    parts = [
        f"username={_quote(username)}",
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
    ]
    if challenge.qop:
        cnonce = cnonce or os.urandom(8).hex()
        count = f"{nc:08x}"
        response = digest(f"{ha1}:{challenge.nonce}:{count}:{cnonce}:auth:{ha2}".encode())
        parts += [
            f"response={_quote(response)}",
            f"algorithm={challenge.algorithm}",
            f"cnonce={_quote(cnonce)}",
            "qop=auth",
            f"nc={count}",
        ]
    else:
        response = digest(f"{ha1}:{challenge.nonce}:{ha2}".encode())
        parts += [f"response={_quote(response)}", f"algorithm={challenge.algorithm}"]
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    return "Digest " + ", ".join(parts)


def parse_min_expires(whole_msg: str) -> int | None:
    """Min-Expires of a 423 answer, or None."""
    value = header_value(whole_msg, "Min-Expires")
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


def refresh_delay(expires: float) -> float:
    """Seconds after a successful REGISTER to refresh it (K21: before expiry)."""
    return max(expires / 2.0, expires - REFRESH_MARGIN)


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of feeding the machine: what to send, and what to report."""

    action: Action = Action.NONE
    event: RegistrationEvent | None = None


class RegistrationMachine:
    """States per protocol.RegState; see the module docstring for K8."""

    def __init__(
        self,
        *,
        expires: int = K21_REGISTER_EXPIRES,
        single_attempt: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        """`single_attempt`: a login test (K8): no retry of any kind."""
        self.state = RegState.STARTING
        self.expires = expires  # what the next REGISTER asks for (K21, or a 423's)
        self.granted: int | None = None
        self.single_attempt = single_attempt
        self.next_attempt: float | None = None  # epoch seconds of the next automatic REGISTER
        self.failures = 0  # network-type failures in a row
        self.credentialed_pending = False  # the REGISTER in flight carries credentials
        self.in_flight = False
        self.locked_until: float | None = None
        self._honoured_423 = False
        self._rng = rng or random.Random()  # noqa: S311  jitter, not security
        self._last_code: int | None = None
        self._last_reason: str | None = None

    @property
    def terminal(self) -> bool:
        """True after auth_failed / locked_out / stopped: nothing registers by itself (K8)."""
        return self.state in AUTH_FAILURE_STATES or self.state is RegState.STOPPED

    def _event(self, now: float, *, expires: int | None = None) -> RegistrationEvent:
        return RegistrationEvent(
            state=self.state,
            code=self._last_code,
            reason=self._last_reason,
            expires=expires,
            next_attempt=self.next_attempt,
            time=now,
        )

    def starting(self, now: float) -> RegistrationEvent:
        """The engine sets pjsua2 up; nothing is sent yet."""
        self.state = RegState.STARTING
        return self._event(now)

    def start(self, now: float) -> Step:
        """Register now (after `start`): a REGISTER without credentials."""
        if self.terminal:
            return Step()
        return self._send(now)

    def _send(self, now: float) -> Step:
        self.state = RegState.REGISTERING
        self.next_attempt = None
        self.credentialed_pending = False
        self.in_flight = True
        return Step(Action.REGISTER, self._event(now))

    def on_response(
        self,
        now: float,
        code: int,
        reason: str,
        *,
        challenge: bool = False,
        min_expires: int | None = None,
        granted: int | None = None,
    ) -> Step:
        """The final answer to the REGISTER in flight (code 408/503 for local errors too).

        `challenge`: the answer carried a digest challenge we can answer.
        """
        if self.terminal or not self.in_flight:
            return Step()
        credentialed = self.credentialed_pending
        self.in_flight = False
        self.credentialed_pending = False
        self._last_code, self._last_reason = code, reason
        if 200 <= code < 300:
            self.state = RegState.REGISTERED
            self.failures = 0
            self.granted = granted if granted and granted > 0 else self.expires
            self.next_attempt = now + refresh_delay(self.granted)
            return Step(event=self._event(now, expires=self.granted))
        if code in K8_AUTH_FAILURE_CODES and credentialed:
            # K8: the one credentialed REGISTER failed; a second challenge is a failure too.
            return self._terminal(now, RegState.AUTH_FAILED)
        if code in (401, 407) and challenge:
            self.credentialed_pending = True
            self.in_flight = True
            return Step(Action.AUTHENTICATE)
        if code == 403:
            # 403 before any credentials were sent: the platform refuses the line (K8).
            return self._terminal(now, RegState.LOCKED_OUT)
        if code == 423 and min_expires and not self._honoured_423 and not self.single_attempt:
            self._honoured_423 = True
            self.expires = min_expires
            return self._send(now)
        return self._unreachable(now)

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
            return Step(Action.REGISTER)
        return self._send(now)

    def stop(self, now: float) -> RegistrationEvent:
        """The line is shut down."""
        self.state = RegState.STOPPED
        self.next_attempt = None
        self.in_flight = False
        self.credentialed_pending = False
        return self._event(now)
