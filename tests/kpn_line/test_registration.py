"""The registration state machine and digest answers (pure; K8, K21)."""

from __future__ import annotations

import hashlib
import random

import pytest

from custom_components.kpn_voip.kpn_line.profile import K8_LOCKOUT_SECONDS
from custom_components.kpn_voip.kpn_line.protocol import RegState
from custom_components.kpn_voip.kpn_line.registration import (
    BACKOFF_CAP,
    Action,
    Challenge,
    RegistrationMachine,
    choose_challenge,
    digest_authorization,
    parse_challenges,
    parse_min_expires,
    refresh_delay,
)

T0 = 1_800_000_000.0


def _params(header: str) -> dict[str, str]:
    out = {}
    for part in header.removeprefix("Digest ").split(", "):
        key, _, value = part.partition("=")
        out[key] = value.strip('"')
    return out


def test_digest_rfc2617_example() -> None:
    """RFC 2617 section 3.5's worked example (qop=auth)."""
    challenge = Challenge(
        header="WWW-Authenticate",
        realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        opaque="5ccc069c403ebaf9f0171e9517f40e41",
        qop=("auth", "auth-int"),
    )
    value = digest_authorization(
        challenge,
        username="Mufasa",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce="0a4f113b",
    )
    params = _params(value)
    assert params["response"] == "6629fae49393a05397450978507c4ef1"
    assert params["nc"] == "00000001"
    assert params["qop"] == "auth"
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"
    assert "Circle Of Life" not in value  # K9


def test_digest_without_qop_and_sha256() -> None:
    plain = Challenge(header="WWW-Authenticate", realm="r", nonce="n")
    value = digest_authorization(plain, username="u", password="p", method="REGISTER", uri="sip:d")
    ha1 = hashlib.md5(b"u:r:p").hexdigest()
    ha2 = hashlib.md5(b"REGISTER:sip:d").hexdigest()
    assert _params(value)["response"] == hashlib.md5(f"{ha1}:n:{ha2}".encode()).hexdigest()
    assert "cnonce" not in value
    sha = Challenge(header="WWW-Authenticate", realm="r", nonce="n", algorithm="SHA-256")
    value = digest_authorization(sha, username="u", password="p", method="REGISTER", uri="sip:d")
    assert len(_params(value)["response"]) == 64
    assert _params(value)["algorithm"] == "SHA-256"


def test_parse_challenges() -> None:
    msg = (
        "SIP/2.0 401 Unauthorized\r\n"
        "Via: SIP/2.0/UDP 1.2.3.4\r\n"
        'WWW-Authenticate: Digest realm="ims.imscore.net", nonce="a,b=c", qop="auth,auth-int",\r\n'
        ' algorithm=MD5, stale=TRUE, opaque="xyz"\r\n'
        'WWW-Authenticate: Digest realm="other", nonce="n2", algorithm=SHA-256\r\n'
        'WWW-Authenticate: Digest realm="x", nonce="n3", qop="auth-int"\r\n'
        'WWW-Authenticate: Digest realm="x", nonce="n4", algorithm=AKAv1-MD5\r\n'
        'Proxy-Authenticate: Basic realm="x"\r\n'
        "Content-Length: 0\r\n\r\n"
    )
    challenges = parse_challenges(msg)
    assert [c.nonce for c in challenges] == ["a,b=c", "n2"]
    first = challenges[0]
    assert first.realm == "ims.imscore.net"
    assert first.qop == ("auth", "auth-int")
    assert first.stale
    assert first.opaque == "xyz"
    assert first.answer_header == "Authorization"
    assert choose_challenge(challenges, "ims.imscore.net") is first
    assert choose_challenge(challenges, None).algorithm == "SHA-256"
    proxy = parse_challenges(
        'SIP/2.0 407 X\r\nProxy-Authenticate: Digest realm="r", nonce="n"\r\n\r\n'
    )
    assert proxy[0].answer_header == "Proxy-Authorization"
    assert parse_challenges("garbage") == []
    assert choose_challenge([], "r") is None


def test_parse_min_expires() -> None:
    assert parse_min_expires("SIP/2.0 423 Too Brief\r\nMin-Expires: 7200\r\n\r\n") == 7200
    assert parse_min_expires("SIP/2.0 423 Too Brief\r\nMin-Expires: soon\r\n\r\n") is None
    assert parse_min_expires("SIP/2.0 423 Too Brief\r\n\r\n") is None


def test_refresh_before_expiry() -> None:
    """K21: 3600 s is refreshed 300 s early; short ones at half time."""
    assert refresh_delay(3600) == 3300
    assert refresh_delay(60) == 30
    assert refresh_delay(600) == 300


def _registered(machine: RegistrationMachine, now: float = T0) -> None:
    assert machine.start(now).action == Action.REGISTER
    assert machine.on_response(now, 401, "Unauthorized", challenge=True).action == (
        Action.AUTHENTICATE
    )
    step = machine.on_response(now, 200, "OK", granted=3600)
    assert step.event is not None
    assert step.event.state == RegState.REGISTERED


def test_register_then_refresh_cycle() -> None:
    machine = RegistrationMachine()
    assert machine.starting(T0).state == RegState.STARTING
    step = machine.start(T0)
    assert step.action == Action.REGISTER
    assert step.event is not None
    assert step.event.state == RegState.REGISTERING
    step = machine.on_response(T0, 401, "Unauthorized", challenge=True)
    assert step.action == Action.AUTHENTICATE
    assert step.event is None
    assert machine.credentialed_pending
    step = machine.on_response(T0 + 0.1, 200, "OK", granted=3600)
    assert step.event is not None
    assert step.event.expires == 3600
    assert step.event.next_attempt == T0 + 0.1 + 3300
    assert machine.due(T0 + 3000).action == Action.NONE
    step = machine.due(T0 + 3301)
    assert step.action == Action.REGISTER  # a refresh starts without credentials again
    assert machine.state == RegState.REGISTERED
    assert machine.due(T0 + 3302).action == Action.NONE  # one in flight at a time
    assert machine.on_response(T0 + 3302, 401, "U", challenge=True).action == Action.AUTHENTICATE
    step = machine.on_response(T0 + 3302, 200, "OK", granted=3600)
    assert step.event is not None
    assert step.event.state == RegState.REGISTERED


@pytest.mark.parametrize("code", [401, 403, 407])
def test_credentialed_failure_is_final(code: int) -> None:
    """K8: 401/403/407 to the credentialed REGISTER: auth_failed, nothing sent ever again."""
    machine = RegistrationMachine()
    machine.start(T0)
    machine.on_response(T0, 401, "Unauthorized", challenge=True)
    step = machine.on_response(T0, code, "Nope", challenge=True)
    assert step.action == Action.NONE
    assert step.event is not None
    assert step.event.state == RegState.AUTH_FAILED
    assert step.event.code == code
    assert step.event.next_attempt is None
    assert machine.terminal
    assert machine.locked_until == T0 + K8_LOCKOUT_SECONDS
    for later in (T0 + 1, T0 + 10 * K8_LOCKOUT_SECONDS):
        assert machine.due(later).action == Action.NONE
        assert machine.start(later).action == Action.NONE


def test_refresh_failure_with_credentials_is_final() -> None:
    """A second challenge during a refresh counts as a failure as well (K8)."""
    machine = RegistrationMachine()
    _registered(machine)
    machine.due(T0 + 4000)
    machine.on_response(T0 + 4000, 401, "U", challenge=True)
    step = machine.on_response(T0 + 4000, 401, "U", challenge=True)
    assert step.event is not None
    assert step.event.state == RegState.AUTH_FAILED


def test_403_without_credentials_is_locked_out() -> None:
    machine = RegistrationMachine()
    machine.start(T0)
    step = machine.on_response(T0, 403, "Forbidden")
    assert step.event is not None
    assert step.event.state == RegState.LOCKED_OUT
    assert machine.due(T0 + 10_000).action == Action.NONE


def test_401_without_usable_challenge_is_retried_later() -> None:
    machine = RegistrationMachine(rng=random.Random(1))
    machine.start(T0)
    step = machine.on_response(T0, 401, "Unauthorized", challenge=False)
    assert step.event is not None
    assert step.event.state == RegState.UNREACHABLE


def test_423_honoured_once() -> None:
    machine = RegistrationMachine(rng=random.Random(1))
    machine.start(T0)
    step = machine.on_response(T0, 423, "Interval Too Brief", min_expires=7200)
    assert step.action == Action.REGISTER
    assert machine.expires == 7200
    step = machine.on_response(T0, 423, "Interval Too Brief", min_expires=14400)
    assert step.action == Action.NONE
    assert machine.state == RegState.UNREACHABLE
    assert machine.expires == 7200


def test_network_errors_back_off_bounded_with_jitter() -> None:
    machine = RegistrationMachine(rng=random.Random(7))
    delays = []
    now = T0
    machine.start(now)
    for _ in range(12):
        step = machine.on_response(now, 503, "Service Unavailable")
        assert step.event is not None
        assert step.event.state == RegState.UNREACHABLE
        assert step.event.next_attempt is not None
        delays.append(step.event.next_attempt - now)
        assert machine.due(step.event.next_attempt - 0.01).action == Action.NONE
        now = step.event.next_attempt
        assert machine.due(now).action == Action.REGISTER
    assert 1.6 <= delays[0] <= 2.4
    assert 3.2 <= delays[1] <= 4.8
    assert max(delays) <= BACKOFF_CAP
    assert delays[-1] >= BACKOFF_CAP * 0.8
    assert len({round(d, 6) for d in delays[-4:]}) == 4  # jitter: not all the same
    step = machine.on_response(now, 200, "OK", granted=3600)
    assert machine.failures == 0


@pytest.mark.parametrize("code", [408, 480, 500, 503, 600, 603, 404])
def test_single_attempt_never_retries(code: int) -> None:
    """The login test (K8): one attempt, then a terminal answer."""
    machine = RegistrationMachine(single_attempt=True)
    machine.start(T0)
    step = machine.on_response(T0, code, "x", min_expires=7200)
    assert step.event is not None
    assert step.event.state == RegState.UNREACHABLE
    assert step.event.next_attempt is None
    assert machine.due(T0 + 10_000).action == Action.NONE


def test_answers_out_of_turn_are_ignored_and_stop() -> None:
    machine = RegistrationMachine()
    assert machine.on_response(T0, 200, "OK").event is None  # nothing in flight
    _registered(machine)
    assert machine.on_response(T0, 200, "OK").event is None
    event = machine.stop(T0 + 1)
    assert event.state == RegState.STOPPED
    assert event.next_attempt is None
    assert machine.start(T0 + 2).action == Action.NONE
