"""Issue 9 item 10 on aarch64: the patched pjsua2 of the aarch64 manylinux wheel refuses
a stranger's OPTIONS too (the real engine under qemu-user, as tests/wheels/test_aarch64.py
runs it); the proxy's OPTIONS still gets 200.  Skips without the wheel or qemu."""

from __future__ import annotations

import asyncio

import pytest

from kpn_devtools.kamailio import Kamailio
from tests.wheels.conftest import wheelhouse
from tests.wheels.test_aarch64 import (
    Aarch64LineFactory,
    aarch64_line_factory,
    aarch64_site,
    qemu_python,
)

from .conftest import engine_port
from .test_engine_guard import PROXY, STRANGER, _options

__all__ = ["aarch64_line_factory", "aarch64_site", "qemu_python", "wheelhouse"]

pytestmark = pytest.mark.timeout(180)


async def test_options_from_a_stranger_are_refused_on_aarch64(
    aarch64_line_factory: Aarch64LineFactory, kamailio: Kamailio
) -> None:
    """403 to the stranger, 200 to the proxy, from the engine running the aarch64 wheel."""
    line = await aarch64_line_factory(kamailio.line_settings())
    port = engine_port(line)
    assert await asyncio.to_thread(_options, STRANGER, port) == 403
    assert await asyncio.to_thread(_options, PROXY, port) == 200
