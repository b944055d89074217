"""tests/conftest.py: HA finds this repository's custom_components.kpn_voip; slow tests go first."""

from __future__ import annotations

from pathlib import Path

from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration
import pytest

import custom_components.kpn_voip


async def test_hass_loads_our_custom_integration(hass: HomeAssistant) -> None:
    integration = await async_get_integration(hass, "kpn_voip")
    ours = Path(custom_components.kpn_voip.__file__).parent
    assert Path(integration.file_path) == ours
    assert not integration.is_built_in


class _Item:
    """What the ordering hook reads of a pytest item: its `slow` marker."""

    def __init__(self, name: str, *, slow: bool) -> None:
        self.name = name
        self.slow = slow

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name == "slow" and self.slow else None


def test_slow_tests_first_the_rest_in_order() -> None:
    """scripts/test's workers take tests in collection order: the `slow` ones go first."""
    from tests.conftest import pytest_collection_modifyitems

    items = [
        _Item("a", slow=False),
        _Item("b", slow=True),
        _Item("c", slow=False),
        _Item("d", slow=True),
    ]
    pytest_collection_modifyitems(items)  # type: ignore[arg-type]
    assert [item.name for item in items] == ["b", "d", "a", "c"]


def test_this_session_runs_the_slow_tests_first(request: pytest.FixtureRequest) -> None:
    """In the session itself (every worker collects the same order)."""
    slow = [item.get_closest_marker("slow") is not None for item in request.session.items]
    assert slow == sorted(slow, reverse=True)
