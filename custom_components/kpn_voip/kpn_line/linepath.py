"""The line's network path on the pjsua2 thread: transport, proxy address, address changes.

`PathDriver` is a part of the engine (engine.Engine inherits it, like the
registration driver); it owns the one UDP transport (K18) and keeps it where
the line's SIP really goes (issue 9 items 8 and 9):

* Every REGISTER (first, refresh, retry) first looks the proxy's name up
  again, in a thread (netpath.Lookups): the pjsua2 thread never waits for a
  name server.  The accounts route to the address found (pjsip never
  resolves a name itself); the Request-URI and To keep the domain (K1).
* The transport is bound to the local address that routes to the proxy, so
  the Contact names that interface (never the wildcard address).  Before
  the first look-up has an answer, a placeholder transport on the loopback
  address stands in; nothing is sent from it.
* The allowed sources (K16/K24) follow: the proxy's addresses of the newest
  look-up and the address the last 2xx to a REGISTER came from.
* Once per keep-alive period (K10) the route to the proxy is checked (a UDP
  connect(): a kernel route look-up, no packet and no name server).  When
  the local address changed (DHCP renew, failover, a new WAN address) or
  went away, the line registers again at once (`registering` meanwhile):
  from a new transport bound to the new address, and its REGISTER lists the
  bindings made from the old address with expires=0, so the registrar keeps
  exactly one (K7).  The credentials of that REGISTER follow the usual K8
  rule: one answer per challenge (registration.py).  The removal goes until
  a 2xx no longer lists those bindings (RFC 3261 §10.2.2: removed once); the
  next REGISTER then carries only the current Contact (`drop_removed`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import contextlib
import queue
import time
from typing import Any, Final

import pjsua2 as pj

from .addresses import (
    AllowedSources,
    Path,
    find_path,
    is_ip_address,
    line_sip_port,
    local_address_towards,
    source_host,
)
from .calls import LineAccount
from .netpath import LOOKUP_TIMEOUT, Lookups
from .pjconfig import account_config, sip_transport_config
from .profile import K10_KEEPALIVE_SECONDS
from .protocol import Event
from .registration import (
    Binding,
    RegistrationMachine,
    Step,
    contact_bindings,
    other_bindings,
)
from .settings import LineSettings
from .stdio import LOGGER as _LOGGER, Waker

PLACEHOLDER_ADDRESS: Final = "127.0.0.1"  # the transport before the proxy's address is known
# Seconds before the route is checked again when a REGISTER was in flight at a check.
RECHECK_SECONDS: Final = 1.0
# Seconds between looks at the inbox while a look-up runs (its result has no wake-up).
LOOKUP_POLL: Final = 0.05


def watch_interval(settings: LineSettings) -> float:
    """Seconds between route checks: the keep-alive interval (K10), its default if 0."""
    return float(settings.keepalive_interval or K10_KEEPALIVE_SECONDS)


def still_listed(removed: Sequence[str], listed: Sequence[Binding]) -> list[str]:
    """The Contact URIs of `removed` whose binding a REGISTER's 2xx still lists (`listed`).

    RFC 3261 §10.3 step 8: the 2xx lists every current binding, so a removed
    Contact it no longer lists is gone at the registrar: no later REGISTER
    needs to remove it again (§10.2.2).  Compared by `host:port`
    (Binding.hostport), as a registrar may add URI parameters.
    """
    current = {binding.hostport for binding in listed}
    return [uri for uri in removed if Binding(uri).hostport in current]


def bindings_at(listed: Sequence[Binding], host: str, port: int) -> list[str]:
    """The Contact URIs of the bindings a REGISTER's 2xx lists (`listed`,
    registration.contact_bindings) that name `host`:`port`.

    RFC 3261 §10.3 step 8: the registrar's 2xx lists every current binding.
    """
    wanted = f"{host}:{port}".lower()
    return [binding.uri for binding in listed if binding.hostport == wanted]


class PathDriver:
    """The network half of the engine: see the module docstring.

    Works on the engine's state: `ep`, `settings`, `machine`, `reg_acc`,
    `call_acc`, `sources`, `waker`, `pending`, `emit` and `apply` (the
    registration driver's).
    """

    ep: Any
    settings: LineSettings | None
    machine: RegistrationMachine | None
    reg_acc: LineAccount | None
    call_acc: LineAccount | None
    sources: AllowedSources
    waker: Waker
    pending: list[Callable[[], None]]
    emit: Callable[[Event], None]
    apply: Callable[[Step], None]

    def path_init(self) -> None:
        """The path state before `start` (called by the engine's __init__)."""
        self.inbox: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.lookups = Lookups(self.post)
        self.path: Path | None = None  # the newest usable look-up (proxy address + route)
        self.tid: int | None = None  # the UDP transport
        self.bound = PLACEHOLDER_ADDRESS
        self.local_port: int | None = None
        self.placeholder = True  # the transport is the loopback stand-in
        self.wanted_port = 0  # the port every transport of this engine asks for (K7)
        self.routed_proxy: str | None = None  # the address the accounts route to
        self.names: list[str] = []  # host names among allowed_sources
        self.waiting: Callable[[], None] | None = None  # a REGISTER waiting for a look-up
        self.lookup_deadline: float | None = None
        self.next_watch: float | None = None
        self.seen_local: str | None = None  # the local address the last check saw
        self.bindings: list[str] = []  # Contact URIs the registrar holds for our transport
        self.removed: list[str] = []  # old Contacts the next REGISTER removes (expires=0)
        self.removing: tuple[str, ...] = ()  # those the registering account's REGISTERs list

    def post(self, job: Callable[[], None]) -> None:
        """Run `job` on the pjsua2 thread soon (thread-safe).

        No wake-up datagram: the loop looks every LOOKUP_POLL seconds while a
        look-up runs (path_deadline), so the engine keeps no extra bound port.
        """
        self.inbox.put(job)

    def drain_inbox(self) -> None:
        """Run what other threads posted (on the pjsua2 thread)."""
        while True:
            try:
                job = self.inbox.get_nowait()
            except queue.Empty:
                return
            self.pending.append(job)

    # -- transport --------------------------------------------------------------

    def first_transport(self, settings: LineSettings, *, single_attempt: bool) -> None:
        """The transport at libStart: on the routed address if it is known without DNS.

        A proxy given as an address needs no name server: its route is found
        here (a kernel look-up).  A name is looked up before the first
        REGISTER, in a thread; until then the placeholder stands in.
        """
        own = line_sip_port(settings.number, f"{settings.proxy_host}:{settings.proxy_port}")
        # K7: the line's own port unless one is configured (a login test takes any, so
        # its un-REGISTER never removes a running line's binding).
        self.wanted_port = settings.local_port or (0 if single_attempt else own)
        path = None
        if is_ip_address(settings.proxy_host):
            path = find_path(settings.proxy_host, settings.proxy_port)
        if path is not None and path.local_ip is not None:
            self.path = path
            self.bind(path.local_ip, placeholder=False)
        else:
            self.bind(PLACEHOLDER_ADDRESS, placeholder=True)

    def bind(self, address: str, *, placeholder: bool) -> None:
        """Create the UDP transport on `address` (K18: UDP only; K22 marks).

        The wanted port first; if it is taken (and not configured), any free
        port.  Raises pj.Error if that fails too.
        """
        port = 0 if placeholder else self.wanted_port
        try:
            tid = self.ep.transportCreate(
                pj.PJSIP_TRANSPORT_UDP, sip_transport_config(port, address)
            )
        except pj.Error:
            settings = self.settings
            if not port or (settings is not None and settings.local_port):
                raise
            _LOGGER.warning("SIP port %s is taken on %s: using any free port", port, address)
            tid = self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, sip_transport_config(0, address))
        info = self.ep.transportGetInfo(tid)
        self.tid = tid
        self.local_port = int(str(info.localName).rsplit(":", 1)[1])
        self.bound = address
        self.placeholder = placeholder
        # A Contact to remove that is the one this transport makes is no leftover:
        # its REGISTER replaces that binding (RFC 3261 §10.3 step 7).
        mine = f"{address}:{self.local_port}"
        self.removed = [uri for uri in self.removed if Binding(uri).hostport != mine]
        self.waker.target = (address, self.local_port)
        _LOGGER.info("SIP on udp %s:%s%s", address, self.local_port, " (placeholder)" * placeholder)

    def take_previous(self, number: str, contacts: Sequence[str]) -> None:
        """Remove the bindings a dead engine of this line left (K7; Start.previous_contacts).

        `contacts`: `host:port` of each Contact it registered (RegistrationEvent.contact).
        The first REGISTER lists them with expires=0 (RFC 3261 §10.2.2), as after
        an address move, and until it is answered they count as the line's own,
        never as another device: a restarted engine whose former port was
        still taken binds another one, and the registrar still lists the dead
        engine's binding.  The one at this engine's own address and port is
        left out when the transport is bound (`bind`).  Before `first_transport`.
        """
        self.removed = [f"sip:{number}@{hostport}" for hostport in contacts]

    def own_contact(self) -> str | None:
        """`host:port` of the line's Contact (the transport's), None for the placeholder."""
        if self.placeholder or self.local_port is None:
            return None
        return f"{self.bound}:{self.local_port}"

    def account_configs(self, settings: LineSettings) -> tuple[Any, Any]:
        """The AccountConfigs (registering, calling) for the current transport and path."""
        proxy = self.path.proxy_ip if self.path is not None else None
        self.routed_proxy = proxy
        self.removing = tuple(self.removed)
        common: dict[str, Any] = {"bound": self.bound, "proxy": proxy, "transport_id": self.tid}
        return (
            account_config(settings, registering=True, removed=self.removed, **common),
            account_config(settings, registering=False, **common),
        )

    def rebind(self, path: Path) -> None:
        """Move the line to `path`: a new transport if the local address changed.

        The accounts are modified to use it and to route to the new proxy
        address; the registering account's REGISTERs then list the bindings
        made from the old address with expires=0 (issue 9 item 9).  The old
        transport is closed.  Only between exchanges (nothing in flight).
        """
        settings = self.settings
        if settings is None or path.local_ip is None:
            return
        old_tid, old = self.tid, (self.bound, self.local_port)
        moved = self.placeholder or path.local_ip != self.bound
        self.path = path
        if moved:
            if self.bindings:
                # The registrar holds these for the address being left: remove them,
                # with any a 2xx has not yet shown removed (an earlier move's).
                fresh = [uri for uri in self.bindings if uri not in self.removed]
                self.removed = [*self.removed, *fresh][-4:]
            self.bindings = []
            self.bind(path.local_ip, placeholder=False)
            _LOGGER.info("the line moves from %s:%s to %s:%s", *old, self.bound, self.local_port)
        reg_cfg, call_cfg = self.account_configs(settings)
        for acc, cfg in ((self.reg_acc, reg_cfg), (self.call_acc, call_cfg)):
            if acc is not None:
                acc.modify(cfg)
        if moved and old_tid is not None:
            with contextlib.suppress(pj.Error):
                self.ep.transportClose(old_tid)

    # -- REGISTER after a look-up -------------------------------------------------

    def with_path(self, go: Callable[[], None]) -> None:
        """Run `go` (send a REGISTER) once the path is looked up again.

        A proxy address needs no look-up (done here at once); a name is
        looked up in a thread, and `go` waits for the answer, at most
        LOOKUP_TIMEOUT seconds (then the attempt fails like a network error).
        """
        settings = self.settings
        if settings is None:
            return
        self.waiting = go
        if is_ip_address(settings.proxy_host) and not self.names:
            self.on_path(find_path(settings.proxy_host, settings.proxy_port))
            return
        self.lookup_deadline = time.monotonic() + LOOKUP_TIMEOUT
        self.lookups.request(settings.proxy_host, settings.proxy_port, self.names, self.on_path)

    def on_path(self, path: Path) -> None:
        """A look-up's result (on the pjsua2 thread): move if needed, then send."""
        settings = self.settings
        if settings is None:
            return
        self.sources.update(path)
        if path.proxy_ip is None and self.path is not None and self.path.proxy_ip:
            # The name server failed now but answered before: keep that address.
            path = find_path(self.path.proxy_ip, settings.proxy_port)
        go, self.waiting, self.lookup_deadline = self.waiting, None, None
        machine = self.machine
        busy = machine is not None and machine.in_flight and go is None
        if path.local_ip is not None and not busy:
            self.seen_local = path.local_ip
            if (
                self.placeholder
                or path.local_ip != self.bound
                or path.proxy_ip != self.routed_proxy
            ):
                try:
                    self.rebind(path)
                except pj.Error as err:
                    _LOGGER.warning("the SIP transport could not be moved: %s", err.info())
                    path = Path(path.proxy_ip, error="the SIP transport could not be bound")
            else:
                self.path = path
        if go is None:
            return
        if path.local_ip is None or machine is None:
            _LOGGER.warning("REGISTER not sent: %s", path.error)
            if machine is not None:
                self.apply(machine.on_response(time.monotonic(), 503, path.error or "No route"))
            return
        self.drop_removed(settings)
        go()

    def drop_removed(self, settings: LineSettings) -> None:
        """Before a REGISTER: stop listing old Contacts the registrar no longer holds.

        RFC 3261 §10.2.2: an old binding is removed once; repeating its
        `expires=0` on every refresh is noise to the registrar (K7: one
        registration per line).  pjsip keeps an account's REGISTER headers in
        its registration client, and Account.modify with other headers
        replaces that client (pjsua_acc_modify: a new Call-ID, no REGISTER of
        its own: disableRegOnModify).  Done here, just before the REGISTER
        the engine asked for, not at the 2xx: until then the client that holds
        the binding is the one a `stop` un-REGISTERs with.
        """
        acc = self.reg_acc
        if acc is None or tuple(self.removed) == self.removing:
            return
        reg_cfg, _ = self.account_configs(settings)
        try:
            acc.modify(reg_cfg)
        except pj.Error as err:
            _LOGGER.warning("the removed Contacts could not be dropped: %s", err.info())

    # -- timers ---------------------------------------------------------------------

    def path_deadline(self) -> float | None:
        """The earliest monotonic time path_tick has something to do."""
        times = [t for t in (self.lookup_deadline, self.next_watch) if t is not None]
        if self.lookups.running or not self.inbox.empty():
            times.append(time.monotonic() + LOOKUP_POLL)  # a result may come any moment
        return min(times) if times else None

    def path_tick(self, now: float) -> None:
        """A look-up that took too long; the route check once per keep-alive period."""
        machine = self.machine
        if self.lookup_deadline is not None and now >= self.lookup_deadline:
            self.waiting = self.lookup_deadline = None
            if machine is not None:
                _LOGGER.warning("the proxy's name did not resolve within %.0f s", LOOKUP_TIMEOUT)
                self.apply(machine.on_response(now, 503, "the proxy's name did not resolve"))
        settings = self.settings
        if self.next_watch is None or settings is None or now < self.next_watch:
            return
        self.next_watch = now + watch_interval(settings)
        path = self.path
        if machine is None or machine.terminal or path is None or path.proxy_ip is None:
            return
        try:
            local: str | None = local_address_towards(path.proxy_ip, settings.proxy_port)
        except OSError:
            local = None
        if local == self.seen_local:
            return
        if machine.in_flight or self.waiting is not None:
            self.next_watch = now + RECHECK_SECONDS  # look again after this exchange
            return
        _LOGGER.warning(
            "local address towards the proxy changed: %s -> %s", self.seen_local, local or "none"
        )
        self.seen_local = local
        self.apply(machine.reregister(now, "local address changed"))

    def start_watch(self, settings: LineSettings) -> None:
        """Start the route checks and the allowed sources for a new `start`."""
        self.names = self.sources.configure_static(settings.allowed_sources)
        if self.path is not None:
            self.sources.update(self.path)
        self.next_watch = time.monotonic() + watch_interval(settings)
        self.seen_local = None if self.placeholder else self.bound

    def note_registration(self, prm: Any) -> int:
        """A 2xx to the line's REGISTER (pjsua2 OnRegStateParam): follow where it came from.

        Returns how many of the bindings it lists are another device's (K7,
        registration.other_bindings), 0 when that cannot be told.
        """
        others = 0
        with contextlib.suppress(Exception):
            rdata = prm.rdata
            self.sources.follow_registration(source_host(str(rdata.srcAddress)))
            if self.local_port is not None and self.settings is not None:
                listed = contact_bindings(str(rdata.wholeMsg))
                found = bindings_at(listed, self.bound, self.local_port)
                # A registrar whose 2xx lists no binding: the Contact pjsua sent (the
                # AOR's user at the transport's address, RFC 3261 §10.2.1).
                own = f"sip:{self.settings.number}@{self.bound}:{self.local_port}"
                self.bindings = found or [own]
                removing = (Binding(uri).hostport for uri in self.removed)
                mine = f"{self.bound}:{self.local_port}"
                others = other_bindings(listed, {mine, *removing})
                self.removed = still_listed(self.removed, listed)
        return others
