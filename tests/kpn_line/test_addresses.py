"""Allowed sources that follow the registration, the proxy's network, the path (item 8)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from custom_components.kpn_voip.kpn_line import addresses
from custom_components.kpn_voip.kpn_line.addresses import AllowedSources, Path, find_path
from custom_components.kpn_voip.kpn_line.linepath import bindings_at, watch_interval
from custom_components.kpn_voip.kpn_line.registration import contact_bindings
from custom_components.kpn_voip.kpn_line.settings import LineSettings
from kpn_devtools.kamailio import TEST_ACCOUNT


def test_sources_follow_the_registration_and_each_look_up() -> None:
    """K16/K24: the newest look-up's addresses and the last 2xx's source, nothing older."""
    sources = AllowedSources()
    assert sources.configure_static(["10.0.0.0/8", "extra.test"]) == ["extra.test"]
    assert "192.0.2.1" not in sources
    sources.update(Path("192.0.2.1", frozenset({"192.0.2.1", "192.0.2.2"}), "10.1.1.1"))
    assert "192.0.2.2" in sources
    sources.follow_registration("198.51.100.9")  # the registrar answered from elsewhere
    assert "198.51.100.9" in sources
    sources.follow_registration("198.51.100.10")
    assert "198.51.100.9" not in sources  # follows: the old one is gone
    assert "198.51.100.10" in sources
    sources.update(Path(None, error="down"))  # a failed look-up keeps the last answer
    assert "192.0.2.1" in sources
    sources.update(Path("192.0.2.7", frozenset({"192.0.2.7"}), "10.1.1.1"))
    assert "192.0.2.1" not in sources
    assert "192.0.2.7" in sources
    assert "10.200.0.1" in sources  # the configured network stays
    sources.configure_static([])  # a new start forgets what it learnt
    assert "192.0.2.7" not in sources
    assert "198.51.100.10" not in sources


def test_the_proxys_network_is_its_slash_16() -> None:
    """Item 8: /16 around every proxy address and the registration's source (/48 for IPv6)."""
    sources = AllowedSources()
    assert not sources.looks_like_proxy("192.0.2.1")  # nothing known yet
    sources.update(Path("192.0.2.1", frozenset({"192.0.2.1"}), "10.1.1.1"))
    sources.follow_registration("2001:db8:1::5")
    assert sources.looks_like_proxy("192.0.77.5")
    assert not sources.looks_like_proxy("192.1.2.1")
    assert sources.looks_like_proxy("2001:db8:1:ff::1")
    assert not sources.looks_like_proxy("2001:db8:2::1")
    assert not sources.looks_like_proxy("not an address")
    sources.update(Path("127.0.0.1", frozenset({"127.0.0.1"}), "127.0.0.1"))
    assert not sources.looks_like_proxy("127.0.0.2")  # loopback: one host, no network


def test_find_path_without_a_name_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that does not resolve: no proxy address and the reason; an IP: no look-up."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror("no such name")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    path = find_path("proxy.test", 5060, ["extra.test"])
    assert path == Path(None, error="the proxy's name does not resolve")
    path = find_path("127.0.0.1", 5060)
    assert (path.proxy_ip, path.local_ip, path.error) == ("127.0.0.1", "127.0.0.1", None)


def test_find_path_uses_ipv4_and_reports_no_route(monkeypatch: pytest.MonkeyPatch) -> None:
    names = {"proxy.test": {"2001:db8::1", "192.0.2.9"}, "extra.test": {"198.51.100.7"}}
    monkeypatch.setattr(addresses, "resolve", lambda host: set(names.get(host, set())))

    def no_route(host: str, port: int) -> str:
        raise OSError("Network is unreachable")

    monkeypatch.setattr(addresses, "local_address_towards", no_route)
    path = find_path("proxy.test", 5060, ["extra.test"])
    assert path.proxy_ip == "192.0.2.9"
    assert path.proxy_ips == frozenset({"192.0.2.9"})
    assert path.local_ip is None
    assert path.error == "no route to the proxy"
    assert path.named == frozenset({"198.51.100.7"})


def test_bindings_of_the_registrars_answer() -> None:
    """RFC 3261 §10.3: the 2xx lists the bindings; ours are those naming our address:port."""
    answer = (
        "SIP/2.0 200 OK\r\n"
        "Contact: <sip:+31201234567@10.99.0.2:62641>;expires=3600\r\n"
        "m: <sip:+31201234567@10.99.0.9:5060>;expires=30, <sip:x@10.99.0.2:62641;ob>\r\n"
        "Contact: <sip:+31201234567@10.99.0.2>;expires=10\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    listed = contact_bindings(answer)
    assert bindings_at(listed, "10.99.0.2", 62641) == [
        "sip:+31201234567@10.99.0.2:62641",
        "sip:x@10.99.0.2:62641;ob",
    ]
    assert bindings_at(listed, "10.99.0.2", 5060) == ["sip:+31201234567@10.99.0.2"]
    assert bindings_at(listed, "10.99.0.3", 62641) == []


def test_the_route_is_checked_once_per_keep_alive_period() -> None:
    """K10: the keep-alive interval, its default when keep-alives are off."""
    base = {
        "number": TEST_ACCOUNT.number,
        "username": TEST_ACCOUNT.username,
        "password": TEST_ACCOUNT.password,
    }
    assert watch_interval(LineSettings(**base, keepalive_interval=7)) == 7.0
    assert watch_interval(LineSettings(**base, keepalive_interval=0)) == 15.0
