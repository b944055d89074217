"""The real-peer fixtures, as a pytest plugin (tests/conftest.py registers it).

kamailio_factory / kamailio (the KPN stand-in), sipp (a SIPp factory), capture
(tcpdump), netns (a network namespace, root only).  Every fixture stops what it
started, whatever the test did; peers also die with a killed test process
(ports.orphan_guard).  The peer fixtures ask for pytest-socket's
`socket_enabled`, since they talk to their peers over sockets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import os
from pathlib import Path
import shutil
import tempfile
from typing import Any

import pytest

from .capture import Capture
from .kamailio import Kamailio
from .netns import Netns
from .sipp import Sipp


@pytest.fixture
def kamailio_factory(socket_enabled: None) -> Iterator[Callable[..., Kamailio]]:
    """Start stand-ins with options (see Kamailio); all stopped afterwards."""
    started: list[Kamailio] = []

    def factory(**options: Any) -> Kamailio:
        kam = Kamailio(**options)
        started.append(kam)
        kam.start()
        return kam

    try:
        yield factory
    finally:
        for kam in started:
            kam.cleanup()


@pytest.fixture
def kamailio(kamailio_factory: Callable[..., Kamailio]) -> Kamailio:
    """A started stand-in with TEST_ACCOUNT, lockout on (K8, 900 s)."""
    return kamailio_factory()


@pytest.fixture
def sipp(socket_enabled: None) -> Iterator[Sipp]:
    """Factory for SIPp peers; every SIPp is killed at teardown."""
    workdir = Path(tempfile.mkdtemp(prefix="kpn-sipp-"))
    factory = Sipp(workdir)
    try:
        yield factory
    finally:
        factory.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def capture() -> Iterator[Callable[..., Capture]]:
    """Factory: capture(iface="lo", bpf="udp", netns=None) -> a started Capture.

    Every capture is stopped and its file deleted at teardown.
    """
    started: list[Capture] = []

    def factory(iface: str = "lo", bpf: str = "udp", netns: str | None = None) -> Capture:
        cap = Capture(iface, bpf, netns)
        started.append(cap)
        cap.start()
        return cap

    try:
        yield factory
    finally:
        for cap in started:
            cap.cleanup()


@pytest.fixture
def netns() -> Iterator[Netns]:
    """A fresh network namespace with lo up; removed afterwards (needs root)."""
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nsenter") is None:
        pytest.skip("network namespaces need root, iproute2 and nsenter")
    ns = Netns()
    try:
        ns.create()
        yield ns
    finally:
        ns.delete()
