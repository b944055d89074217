"""The registration state machine and digest answers (pure; K8, K21)."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from custom_components.kpn_voip.kpn_line.profile import K8_LOCKOUT_SECONDS
from custom_components.kpn_voip.kpn_line.protocol import RegState
from custom_components.kpn_voip.kpn_line.registration import (
    BACKOFF_CAP,
    BACKOFF_JITTER,
    NO_ANSWER_RETRY,
    Action,
    ChallengeBudget,
    RegistrationMachine,
    choose_challenge,
    parse_challenges,
    parse_cseq,
    refresh_delay,
    wall_clock,
)

T0 = 1000.0  # monotonic seconds
EPOCH = 1_800_000_000.0  # what T0 is on the wall clock


def wall(monotonic: float) -> float:
    """The events' clock in these tests: T0 is EPOCH."""
    return EPOCH - T0 + monotonic


def machine_(**kwargs: Any) -> RegistrationMachine:
    """A machine whose events carry EPOCH-based times."""
    return RegistrationMachine(wall=wall, **kwargs)


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
    assert choose_challenge(challenges, "ims.imscore.net") is first
    assert choose_challenge(challenges, None).algorithm == "SHA-256"
    proxy = parse_challenges(
        'SIP/2.0 407 X\r\nProxy-Authenticate: Digest realm="r", nonce="n"\r\n\r\n'
    )
    assert proxy[0].header == "Proxy-Authenticate"
    assert parse_challenges("garbage") == []
    assert choose_challenge([], "r") is None
    # K1/K8: another realm's challenge is never answered with the line's credentials.
    assert choose_challenge(challenges, "elsewhere.example") is None


def test_parse_cseq() -> None:
    assert parse_cseq("SIP/2.0 401 U\r\nCSeq: 4711 REGISTER\r\n\r\n") == 4711
    assert parse_cseq("SIP/2.0 401 U\r\nCSeq:   12\r\n\r\n") == 12
    assert parse_cseq("SIP/2.0 401 U\r\nCSeq: x REGISTER\r\n\r\n") is None
    assert parse_cseq("SIP/2.0 401 U\r\nCSeq: \r\n\r\n") is None
    assert parse_cseq("SIP/2.0 401 U\r\nCSeq: 99999999999 REGISTER\r\n\r\n") is None
    assert parse_cseq("SIP/2.0 401 U\r\n\r\n") is None


def test_refresh_before_expiry() -> None:
    """K21: 3600 s is refreshed 300 s early; short ones at half time."""
    assert refresh_delay(3600) == 3300
    assert refresh_delay(60) == 30
    assert refresh_delay(600) == 300


def test_wall_clock_maps_monotonic_to_epoch() -> None:
    """Events carry epoch seconds; the machine itself runs on the monotonic clock."""
    assert abs(wall_clock(time.monotonic()) - time.time()) < 1.0
    assert abs(wall_clock(time.monotonic() + 60) - time.time() - 60) < 1.0


def _registered(machine: RegistrationMachine, now: float = T0, cseq: int = 10) -> None:
    assert machine.start(now).action == Action.REGISTER
    assert machine.on_challenge(cseq=cseq) is True
    step = machine.on_response(now, 200, "OK", granted=3600)
    assert step.event is not None
    assert step.event.state == RegState.REGISTERED


def test_register_then_refresh_cycle() -> None:
    """One challenge answered per exchange; refresh at K21 time; wall-clock events."""
    machine = machine_()
    assert machine.starting(T0).state == RegState.STARTING
    step = machine.start(T0)
    assert step.action == Action.REGISTER
    assert step.event is not None
    assert step.event.state == RegState.REGISTERING
    assert step.event.time == EPOCH
    assert machine.on_challenge(cseq=10) is True
    assert machine.credentials_sent
    step = machine.on_response(T0 + 0.1, 200, "OK", granted=3600)
    assert step.event is not None
    assert step.event.expires == 3600
    assert step.event.next_attempt == EPOCH + 0.1 + 3300
    assert machine.next_attempt == T0 + 0.1 + 3300  # monotonic inside
    assert machine.due(T0 + 3000).action == Action.NONE
    step = machine.due(T0 + 3301)
    assert step.action == Action.REGISTER  # a refresh starts without credentials again
    assert step.event is None
    assert not machine.credentials_sent
    assert machine.state == RegState.REGISTERED
    assert machine.due(T0 + 3302).action == Action.NONE  # one in flight at a time
    assert machine.on_challenge(cseq=12) is True  # the refresh's own challenge (K8: once)
    step = machine.on_response(T0 + 3302, 200, "OK", granted=3600)
    assert step.event is not None
    assert step.event.state == RegState.REGISTERED


@pytest.mark.parametrize("code", [401, 403, 407])
def test_credentialed_failure_is_final(code: int) -> None:
    """K8: a challenge to the credentialed REGISTER is not answered; 401/403/407 is final."""
    machine = machine_()
    machine.start(T0)
    assert machine.on_challenge(cseq=10) is True
    if code != 403:
        assert machine.on_challenge(cseq=11) is False  # the credentialed one: refused
    step = machine.on_response(T0, code, "Nope")
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
        assert machine.on_challenge(cseq=20) is False


@pytest.mark.parametrize("cseq", [None, 11])
def test_second_challenge_without_known_cseq_is_a_refusal(cseq: int | None) -> None:
    """Without a CSeq to tell them apart, a second challenge counts as a refusal (K8-safe)."""
    machine = machine_()
    machine.start(T0)
    assert machine.on_challenge(cseq=None) is True
    assert machine.on_challenge(cseq=cseq) is False
    step = machine.on_response(T0, 401, "Unauthorized")
    assert step.event is not None
    assert step.event.state == RegState.AUTH_FAILED


def test_stale_nonce_is_answered_once() -> None:
    """Issue 9 item 4: 401 stale=true after credentials is a new nonce: answered once."""
    machine = machine_()
    machine.start(T0)
    assert machine.on_challenge(cseq=10) is True
    assert machine.on_challenge(cseq=11, stale=True) is True
    assert machine.on_challenge(cseq=12, stale=True) is False  # not twice
    step = machine.on_response(T0, 401, "Unauthorized")
    assert step.event is not None
    assert step.event.state == RegState.AUTH_FAILED


def test_stale_nonce_then_registered() -> None:
    machine = machine_()
    machine.start(T0)
    assert machine.on_challenge(cseq=10) is True
    assert machine.on_challenge(cseq=11, stale=True) is True
    step = machine.on_response(T0, 200, "OK", granted=3600)
    assert step.event is not None
    assert step.event.state == RegState.REGISTERED


def test_423_restart_is_answered_once() -> None:
    """Issue 9 item 1: after a 423, pjsip restarts the exchange without credentials;
    its new challenge (a later CSeq) is answered once, a further restart is not."""
    machine = machine_()
    machine.start(T0)
    assert machine.on_challenge(cseq=10) is True  # credentials go out in CSeq 11
    # 11 got 423; pjsip sends CSeq 12 with the Min-Expires, no credentials: challenged.
    assert machine.on_challenge(cseq=12) is True  # credentials in CSeq 13
    # 13 got 423 again; 14 is challenged: not honoured a second time.
    assert machine.on_challenge(cseq=14) is False
    step = machine.on_response(T0, 401, "Unauthorized")
    assert step.event is not None
    assert step.event.state == RegState.AUTH_FAILED


def test_423_restart_then_wrong_password() -> None:
    """A challenge to the credentials sent after the 423 restart is a refusal (K8)."""
    machine = machine_()
    machine.start(T0)
    assert machine.on_challenge(cseq=10) is True
    assert machine.on_challenge(cseq=12) is True
    assert machine.on_challenge(cseq=13) is False
    step = machine.on_response(T0, 401, "Unauthorized")
    assert step.event is not None
    assert step.event.state == RegState.AUTH_FAILED


def test_423_that_pjsip_gave_up_on_is_retried_later() -> None:
    """A 423 that reaches the machine (no usable Min-Expires) is a network-type failure."""
    machine = machine_(rng=random.Random(1))
    machine.start(T0)
    step = machine.on_response(T0, 423, "Interval Too Brief")
    assert step.event is not None
    assert step.event.state == RegState.UNREACHABLE
    assert step.event.next_attempt is not None


def test_refresh_failure_with_credentials_is_final() -> None:
    """A second challenge during a refresh counts as a failure as well (K8)."""
    machine = machine_()
    _registered(machine)
    machine.due(T0 + 4000)
    assert machine.on_challenge(cseq=12) is True
    assert machine.on_challenge(cseq=13) is False
    step = machine.on_response(T0 + 4000, 401, "U")
    assert step.event is not None
    assert step.event.state == RegState.AUTH_FAILED


def test_403_without_credentials_is_locked_out() -> None:
    machine = machine_()
    machine.start(T0)
    step = machine.on_response(T0, 403, "Forbidden")
    assert step.event is not None
    assert step.event.state == RegState.LOCKED_OUT
    assert machine.due(T0 + 10_000).action == Action.NONE


def test_401_without_usable_challenge_is_retried_later() -> None:
    """A 401 whose challenge the engine cannot answer (not asked): no credentials, retry."""
    machine = machine_(rng=random.Random(1))
    machine.start(T0)
    step = machine.on_response(T0, 401, "Unauthorized")
    assert step.event is not None
    assert step.event.state == RegState.UNREACHABLE
    assert not machine.credentials_sent


def test_network_errors_back_off_bounded_with_jitter() -> None:
    machine = machine_(rng=random.Random(7))
    delays = []
    now = T0
    machine.start(now)
    for _ in range(12):
        step = machine.on_response(now, 503, "Service Unavailable")
        assert step.event is not None
        assert step.event.state == RegState.UNREACHABLE
        assert step.event.next_attempt is not None
        assert machine.next_attempt is not None
        assert step.event.next_attempt == wall(machine.next_attempt)
        delays.append(machine.next_attempt - now)
        assert machine.due(machine.next_attempt - 0.01).action == Action.NONE
        now = machine.next_attempt
        assert machine.due(now).action == Action.REGISTER
    assert 1.6 <= delays[0] <= 2.4
    assert 3.2 <= delays[1] <= 4.8
    assert max(delays) <= BACKOFF_CAP
    assert delays[-1] >= BACKOFF_CAP * 0.8
    assert len({round(d, 6) for d in delays[-4:]}) == 4  # jitter: not all the same
    step = machine.on_response(now, 200, "OK", granted=3600)
    assert machine.failures == 0


@pytest.mark.parametrize("code", [408, 504])
def test_unanswered_register_is_retried_at_the_retransmission_pace(code: int) -> None:
    """Issue 9: a registrar that is down for long is seen within 10 s once it answers again.

    A REGISTER nobody answered ends after pjsip's Timer F (32 s of retransmissions
    every T2 = 4 s, RFC 3261 §17.1.2.2) with a 408 (504: a proxy's time-out): the
    next one goes after T2 +-20 %, however many failed before, never after the
    growing back-off (the first: its shorter first step).  The last retransmission
    went 0.5 s before the 408, so the registrar sees a REGISTER at most 0.5 + 4.8 s
    after the previous one.
    """
    machine = machine_(rng=random.Random(3))
    now = T0
    machine.start(now)
    delays = []
    for _ in range(30):  # 30 failures: far past where the back-off would reach its cap
        now += 32.0  # Timer F
        step = machine.on_response(now, code, "Request Timeout")
        assert step.event is not None
        assert step.event.state == RegState.UNREACHABLE
        assert step.event.code == code
        assert machine.next_attempt is not None
        delays.append(machine.next_attempt - now)
        assert machine.due(machine.next_attempt - 0.01).action == Action.NONE
        now = machine.next_attempt
        assert machine.due(now).action == Action.REGISTER
    low, high = NO_ANSWER_RETRY * (1 - BACKOFF_JITTER), NO_ANSWER_RETRY * (1 + BACKOFF_JITTER)
    # The first retry keeps the shorter first back-off step (2 s), the others T2.
    assert 1.6 <= delays[0] <= 2.4
    assert all(low <= d <= high for d in delays[1:]), delays
    assert 0.5 + max(delays) < 10.0  # the goal, with the registrar's round trip to spare
    assert len({round(d, 6) for d in delays}) > 1  # jittered: lines do not retry in step
    # An answer that comes at once keeps the grown back-off (30 failures: the cap).
    step = machine.on_response(now, 503, "Service Unavailable")
    assert machine.next_attempt is not None
    assert machine.next_attempt - now >= BACKOFF_CAP * (1 - BACKOFF_JITTER)
    # and a success starts over.
    now = machine.next_attempt
    assert machine.due(now).action == Action.REGISTER
    machine.on_response(now, 200, "OK", granted=3600)
    assert machine.failures == 0
    assert machine.state == RegState.REGISTERED


@pytest.mark.parametrize("code", [408, 423, 480, 500, 503, 600, 603, 404])
def test_single_attempt_never_retries(code: int) -> None:
    """The login test (K8): one attempt, then a terminal answer."""
    machine = machine_(single_attempt=True)
    machine.start(T0)
    step = machine.on_response(T0, code, "x")
    assert step.event is not None
    assert step.event.state == RegState.UNREACHABLE
    assert step.event.next_attempt is None
    assert machine.due(T0 + 10_000).action == Action.NONE


def test_answers_out_of_turn_are_ignored_and_stop() -> None:
    machine = machine_()
    assert machine.on_response(T0, 200, "OK").event is None  # nothing in flight
    assert machine.on_challenge(cseq=1) is False  # nothing in flight: never answered
    _registered(machine)
    assert machine.on_response(T0, 200, "OK").event is None
    assert machine.on_challenge(cseq=30) is False
    step = machine.stop(T0 + 1)
    assert step.event is not None
    assert step.event.state == RegState.STOPPED
    assert step.event.next_attempt is None
    assert machine.start(T0 + 2).action == Action.NONE


def test_unregister_answers_its_own_challenge_once() -> None:
    """Issue 9 item 2 (K7): the un-REGISTER answers its own challenge, once, silently."""
    machine = machine_()
    _registered(machine)
    step = machine.stop(T0 + 5000)  # longer than any nonce lifetime: a fresh challenge
    assert step.action == Action.UNREGISTER
    assert step.event is not None
    assert step.event.state == RegState.STOPPED
    assert machine.on_challenge(cseq=20) is True
    assert machine.on_challenge(cseq=21) is False  # its credentials refused: not again
    assert machine.on_response(T0 + 5001, 401, "Unauthorized").event is None
    assert not machine.in_flight
    assert machine.state == RegState.STOPPED
    assert machine.due(T0 + 10_000).action == Action.NONE


def test_unregister_ok_is_silent() -> None:
    machine = machine_()
    _registered(machine)
    assert machine.stop(T0 + 1).action == Action.UNREGISTER
    assert machine.on_challenge(cseq=20) is True
    assert machine.on_response(T0 + 1, 200, "OK").event is None
    assert not machine.unregistering


@pytest.mark.parametrize(
    ("setup", "unregisters"),
    [
        ("never-started", False),
        ("registering-no-credentials", False),
        ("credentials-in-flight", True),
        ("unreachable", False),
        ("auth-failed", False),
    ],
)
def test_unregister_only_where_a_binding_may_exist(setup: str, unregisters: bool) -> None:
    """K7: an un-REGISTER whenever the registrar may hold a binding, never otherwise."""
    machine = machine_(rng=random.Random(3))
    if setup != "never-started":
        machine.start(T0)
    if setup in ("credentials-in-flight", "auth-failed"):
        machine.on_challenge(cseq=10)
    if setup == "unreachable":
        machine.on_response(T0, 503, "x")
    if setup == "auth-failed":
        machine.on_challenge(cseq=11)
        machine.on_response(T0, 401, "x")
    step = machine.stop(T0 + 1)
    assert (step.action == Action.UNREGISTER) is unregisters
    assert step.event is not None
    assert step.event.state == RegState.STOPPED


def test_challenge_budget_for_a_call() -> None:
    """A call: the INVITE's challenge once, a later request's (a BYE) once each, bounded."""
    budget = ChallengeBudget(later_requests=2)
    assert budget.on_challenge(cseq=1) is True  # the INVITE
    assert budget.credentials_sent
    assert budget.on_challenge(cseq=2) is False  # the credentialed INVITE again: refused
    assert budget.refused
    budget = ChallengeBudget(later_requests=2)
    assert budget.on_challenge(cseq=1) is True
    assert budget.on_challenge(cseq=3) is True  # a later request of the dialog
    assert budget.on_challenge(cseq=5) is True
    assert budget.on_challenge(cseq=7) is False  # the bound
    assert not budget.refused


def test_challenge_budget_not_sent_restores() -> None:
    """An answer that could not be sent leaves the budget as it was."""
    budget = ChallengeBudget(later_requests=1)
    assert budget.on_challenge(cseq=1) is True
    budget.not_sent()
    assert not budget.credentials_sent
    assert budget.on_challenge(cseq=1) is True  # still the first one
    assert budget.on_challenge(cseq=2, stale=True) is True
    budget.not_sent()
    assert budget.on_challenge(cseq=2, stale=True) is True  # the stale allowance is back
    budget.not_sent()
    budget.not_sent()  # twice: nothing more to undo
    assert budget.credentials_sent


def test_machine_not_sent() -> None:
    machine = machine_(rng=random.Random(2))
    machine.start(T0)
    assert machine.on_challenge(cseq=10) is True
    machine.not_sent()
    assert not machine.credentials_sent
    step = machine.on_response(T0, 401, "Unauthorized")  # nothing was sent: not K8
    assert step.event is not None
    assert step.event.state == RegState.UNREACHABLE


def test_call_auth_failure_is_k8() -> None:
    """A call's refused credentials end the line like a REGISTER's (K8), once."""
    machine = machine_()
    _registered(machine)
    step = machine.auth_failed(T0 + 5, 407, "Proxy Authentication Required")
    assert step.event is not None
    assert step.event.state == RegState.AUTH_FAILED
    assert step.event.code == 407
    assert machine.locked_until == T0 + 5 + K8_LOCKOUT_SECONDS
    assert machine.due(T0 + 10_000).action == Action.NONE
    assert machine.auth_failed(T0 + 6, 403, "Forbidden").event is None
    assert machine.stop(T0 + 7).action == Action.NONE  # no un-REGISTER with refused credentials


def test_stop_without_credentials_answers_no_challenge() -> None:
    """K8: a stop inside KPN's block window un-REGISTERs, but answers no challenge to it."""
    machine = RegistrationMachine()
    machine.start(0.0)
    assert machine.on_challenge(cseq=1)
    machine.on_response(1.0, 200, "OK", granted=3600)
    step = machine.stop(2.0, credentials=False)
    assert step.action == Action.UNREGISTER
    assert not machine.on_challenge(cseq=3)
    assert not machine.on_challenge(cseq=3, stale=True)
    assert not machine.credentials_sent
    machine.on_response(3.0, 401, "Unauthorized")
    assert not machine.in_flight
