"""A registrar that is down across a refresh, then answers again (issue 9, K8, K21, K23).

The stand-in runs in its one-time-nonce mode (IMS practice).  K23 forbids
OPTIONS probing, so the line learns that the registrar is gone only from a
REGISTER nobody answers; it must then report `unreachable` (never an auth
failure), keep retrying at the pace of its retransmissions
(registration.NO_ANSWER_CODES) and be registered again within 10 s of the
registrar answering again, with one credentialed REGISTER per challenge.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from custom_components.kpn_voip.kpn_line.protocol import AUTH_FAILURE_STATES, RegState
from custom_components.kpn_voip.kpn_line.registration import BACKOFF_JITTER, NO_ANSWER_RETRY
from kpn_devtools.kamailio import TEST_ACCOUNT

from .conftest import LineFactory

pytestmark = [pytest.mark.peers, pytest.mark.slow, pytest.mark.timeout(150)]

GRANT = 10  # seconds the stand-in grants: the refresh is due after 5 s
TIMER_F = 32.0  # pjsip's non-INVITE transaction time-out (64 * T1), RFC 3261 §17.1.2.2


async def test_registrar_down_across_a_refresh_then_back_within_10_s(
    kamailio_factory, line_factory: LineFactory
) -> None:
    kam = kamailio_factory(expires=GRANT, lockout_seconds=0, one_time_nonce=True)
    line = await line_factory(kam.line_settings())
    registered = line.registrations()[-1]
    assert registered.state == RegState.REGISTERED
    assert registered.expires == GRANT
    kam.stop()  # down: nothing answers (no ICMP reaches pjsip's unconnected UDP socket)
    down_at = time.monotonic()

    # The refresh (after GRANT / 2) is not answered; after Timer F: unreachable, 408.
    event = await line.wait_state(RegState.UNREACHABLE, timeout=GRANT / 2 + TIMER_F + 15)
    assert time.monotonic() - down_at >= TIMER_F  # the refresh ran its full transaction
    assert event.code == 408
    assert event.next_attempt is not None
    assert event.next_attempt - event.time <= NO_ANSWER_RETRY * (1 + BACKOFF_JITTER)

    # The registrar answers again while the line waits for its retry.
    await asyncio.sleep(0.5)
    await asyncio.to_thread(kam.restart)  # returns once Kamailio answers (RPC)
    back_at = time.monotonic()
    await kam.async_wait_registered(TEST_ACCOUNT.number, timeout=10)
    assert time.monotonic() - back_at <= 10.0
    await line.wait(
        lambda e: e is not registered and getattr(e, "state", None) == RegState.REGISTERED,
        timeout=5,
    )

    states = [e.state for e in line.registrations()]
    assert not [s for s in states if s in AUTH_FAILURE_STATES], states
    # K8: one credentialed REGISTER per challenge, each accepted; no digest replayed.
    deadline = time.monotonic() + 5
    while not kam.register_attempts()[-1:] or kam.register_attempts()[-1].code != 200:
        assert time.monotonic() < deadline  # Kamailio logs after saving the contact
        await asyncio.sleep(0.05)  # polling Kamailio's log file: nothing to wait on
    pattern = [(a.with_credentials, a.code) for a in kam.register_attempts()]
    assert pattern == [(False, 401), (True, 200)] * 2, pattern
    assert kam.nonce_reuses() == 0
    assert len(kam.contacts(TEST_ACCOUNT.number)) == 1
