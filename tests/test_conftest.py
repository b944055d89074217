"""tests/conftest.py: HA finds this repository's custom_components.kpn_voip."""

from __future__ import annotations

from pathlib import Path

from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration

import custom_components.kpn_voip


async def test_hass_loads_our_custom_integration(hass: HomeAssistant) -> None:
    integration = await async_get_integration(hass, "kpn_voip")
    ours = Path(custom_components.kpn_voip.__file__).parent
    assert Path(integration.file_path) == ours
    assert not integration.is_built_in
