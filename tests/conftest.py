"""Test-suite wide setup: the real-peer fixtures, and custom_components first.

phcc puts its own testing config (with its own `custom_components`) first on
sys.path when `hass` starts, so the integration is imported here, early.
"""

from __future__ import annotations

import pytest

import custom_components.kpn_voip  # noqa: F401  (imported before phcc shadows it)

pytest_plugins = ["kpn_devtools.pytest_plugin"]


@pytest.fixture(autouse=True)
def _auto_enable_custom_integrations(request: pytest.FixtureRequest) -> None:
    """Let HA load custom_components.kpn_voip in every test that uses `hass`.

    Only for tests that use `hass`: engine and peer tests must not pay for a
    Home Assistant instance.
    """
    if "hass" in request.fixturenames:
        request.getfixturevalue("enable_custom_integrations")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `slow` first, the rest in their order (a stable sort).

    scripts/test runs the suite on several workers (pytest-xdist), which take
    tests in this order: a long test handed out last would leave the other
    workers idle at the end.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
