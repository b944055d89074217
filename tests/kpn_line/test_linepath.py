"""linepath.PathDriver's decisions without a network (issue 9 items 8, 9).

The end-to-end proofs are in test_engine_network.py; these cover the branches
a namespace cannot reach in a few seconds: a look-up that outlives
LOOKUP_TIMEOUT, a name server failing after it answered once, no route at
all, an address change while an exchange is in flight.
"""

from __future__ import annotations

from typing import Any

import pytest

from custom_components.kpn_voip.kpn_line import linepath
from custom_components.kpn_voip.kpn_line.addresses import AllowedSources, Path
from custom_components.kpn_voip.kpn_line.linepath import RECHECK_SECONDS, PathDriver
from custom_components.kpn_voip.kpn_line.netpath import LOOKUP_TIMEOUT
from custom_components.kpn_voip.kpn_line.protocol import RegistrationEvent, RegState
from custom_components.kpn_voip.kpn_line.registration import Binding, RegistrationMachine, Step
from custom_components.kpn_voip.kpn_line.settings import LineSettings
from custom_components.kpn_voip.kpn_line.stdio import Waker
from kpn_devtools.kamailio import TEST_ACCOUNT

PROXY = "192.0.2.1"
HERE = "10.0.0.7"


class Driver(PathDriver):
    """A PathDriver with the engine's state faked: no pjsua2 endpoint (no rebind)."""

    def __init__(self, settings: LineSettings) -> None:
        self.path_init()
        self.ep = None
        self.settings = settings
        self.machine = RegistrationMachine()
        self.reg_acc = self.call_acc = None
        self.sources = AllowedSources()
        self.waker = Waker()
        self.pending = []
        self.events: list[Any] = []
        self.emit = self.events.append
        self.steps: list[Step] = []
        self.apply = self._apply
        self.sent: list[str] = []
        # As after a first transport on HERE, routing to PROXY.
        self.path = Path(PROXY, frozenset({PROXY}), HERE)
        self.bound, self.placeholder, self.routed_proxy = HERE, False, PROXY
        self.seen_local = HERE
        self.sources.update(self.path)  # as start_watch does

    def _apply(self, step: Step) -> None:
        self.steps.append(step)
        if step.event is not None:
            self.events.append(step.event)


def _settings(**overrides: Any) -> LineSettings:
    values: dict[str, Any] = {
        "number": TEST_ACCOUNT.number,
        "username": TEST_ACCOUNT.username,
        "password": TEST_ACCOUNT.password,
        "proxy_host": "proxy.test",
        "keepalive_interval": 10,
    }
    values.update(overrides)
    return LineSettings(**values)


def _machine(driver: Driver) -> RegistrationMachine:
    assert driver.machine is not None
    return driver.machine


def _registered(driver: Driver, now: float) -> None:
    machine = driver.machine
    assert machine is not None
    machine.start(now)
    machine.on_response(now, 200, "OK", granted=3600)
    assert machine.state == RegState.REGISTERED


def _last_registration(driver: Driver) -> RegistrationEvent:
    event = driver.events[-1]
    assert isinstance(event, RegistrationEvent)
    return event


def test_a_look_up_that_takes_too_long_fails_the_register() -> None:
    """The REGISTER waiting for the name server gives up after LOOKUP_TIMEOUT: unreachable."""
    driver = Driver(_settings())
    machine = driver.machine
    assert machine is not None
    machine.start(0.0)
    driver.waiting = lambda: driver.sent.append("REGISTER")
    driver.lookup_deadline = 5.0 + LOOKUP_TIMEOUT
    driver.path_tick(5.0)
    assert driver.steps == []  # not yet
    driver.path_tick(5.0 + LOOKUP_TIMEOUT)
    event = _last_registration(driver)
    assert (event.state, event.code, event.reason) == (
        RegState.UNREACHABLE,
        503,
        "the proxy's name did not resolve",
    )
    assert driver.waiting is None
    assert driver.sent == []
    # A late answer then sends nothing by itself (no REGISTER waits for it).
    driver.on_path(Path(PROXY, frozenset({PROXY}), HERE))
    assert driver.sent == []


def test_a_failed_look_up_after_a_good_one_keeps_the_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The name server fails at a refresh: the REGISTER goes to the address found before."""
    monkeypatch.setattr(
        linepath, "find_path", lambda host, port: Path(host, frozenset({host}), HERE)
    )
    driver = Driver(_settings())
    _machine(driver).start(0.0)
    driver.waiting = lambda: driver.sent.append("REGISTER")
    driver.on_path(Path(None, error="the proxy's name does not resolve"))
    assert driver.sent == ["REGISTER"]
    assert PROXY in driver.sources
    assert driver.path == Path(PROXY, frozenset({PROXY}), HERE)


def test_no_route_fails_the_register_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    driver = Driver(_settings())
    _machine(driver).start(0.0)
    driver.waiting = lambda: driver.sent.append("REGISTER")
    driver.on_path(Path(PROXY, frozenset({PROXY}), None, error="no route to the proxy"))
    assert driver.sent == []
    event = _last_registration(driver)
    assert (event.state, event.reason) == (RegState.UNREACHABLE, "no route to the proxy")


def test_the_address_going_away_re_registers_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """K10 tick: no route any more -> `registering` (then the REGISTER fails); the same
    observation on the next tick does nothing more (the back-off retries)."""

    def no_route(host: str, port: int) -> str:
        raise OSError("Network is unreachable")

    monkeypatch.setattr(linepath, "local_address_towards", no_route)
    driver = Driver(_settings())
    _registered(driver, 0.0)
    driver.next_watch = 10.0
    driver.path_tick(9.9)
    assert driver.steps == []
    driver.path_tick(10.0)
    event = _last_registration(driver)
    assert (event.state, event.reason) == (RegState.REGISTERING, "local address changed")
    assert driver.next_watch == 20.0  # one keep-alive period (K10) later
    machine = driver.machine
    assert machine is not None
    machine.on_response(10.1, 503, "no route to the proxy")
    driver.path_tick(20.0)
    assert len(driver.steps) == 1


def test_a_change_during_an_exchange_is_looked_at_again_soon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(linepath, "local_address_towards", lambda host, port: "10.0.0.8")
    driver = Driver(_settings())
    machine = driver.machine
    assert machine is not None
    machine.start(0.0)  # a REGISTER in flight
    driver.next_watch = 10.0
    driver.path_tick(10.0)
    assert driver.steps == []
    assert driver.next_watch == 10.0 + RECHECK_SECONDS
    assert driver.seen_local == HERE  # not taken: it is looked at again


def test_a_removal_goes_until_a_2xx_no_longer_lists_the_binding() -> None:
    """RFC 3261 §10.2.2: an old Contact is removed once: kept while the registrar's 2xx still
    lists its binding (§10.3 step 8: not yet removed), dropped once it does not (by host:port,
    a registrar may add URI parameters)."""
    old = "sip:+31201234567@10.0.0.6:62641"
    older = "sip:+31201234567@10.0.0.5:62641"
    current = Binding("sip:+31201234567@10.0.0.7:62641")
    assert linepath.still_listed([older, old], [current]) == []
    listed = [current, Binding("sip:+31201234567@10.0.0.6:62641;ob", 12)]
    assert linepath.still_listed([older, old], listed) == [old]
    assert linepath.still_listed([], listed) == []
