"""The kpn_voip.dial and kpn_voip.hangup actions."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.setup import async_setup_component
import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kpn_voip.const import DOMAIN
from custom_components.kpn_voip.kpn_line.client import EngineError
from custom_components.kpn_voip.kpn_line.protocol import RegState

from .conftest import PASSWORD, FakeEngineFactory, registration


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def test_services_registered_without_entries(hass: HomeAssistant) -> None:
    """The actions exist as soon as the integration is set up (action-setup)."""
    assert await async_setup_component(hass, DOMAIN, {})
    assert hass.services.has_service(DOMAIN, "dial")
    assert hass.services.has_service(DOMAIN, "hangup")
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "dial", {"number": "112"}, blocking=True)
    assert err.value.translation_key == "service_found_no_config_entry_for_domain"


async def test_dial(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """K25: the number goes to the engine as given; the call id comes back."""
    await _setup(hass, mock_config_entry)
    response = await hass.services.async_call(
        DOMAIN,
        "dial",
        {"number": "020-123 45 67", "hangup_after": 30},
        blocking=True,
        return_response=True,
    )
    assert response == {"call_id": "out1"}
    assert fake_engine.last.dialled == [("020-123 45 67", False, 30.0)]


async def test_dial_hide_caller_id_with_target(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """K26: hide_caller_id is passed on; the line can be named."""
    await _setup(hass, mock_config_entry)
    await hass.services.async_call(
        DOMAIN,
        "dial",
        {
            "number": "0612345678",
            "hide_caller_id": True,
            "config_entry_id": mock_config_entry.entry_id,
        },
        blocking=True,
    )
    assert fake_engine.last.dialled == [("0612345678", True, None)]


@pytest.mark.parametrize("number", ["", "call me", "+31 6 12-34-56-78 ext 5", "1" * 40])
async def test_dial_invalid_number(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    number: str,
) -> None:
    """A number that is no dial string is refused before the engine sees it."""
    await _setup(hass, mock_config_entry)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "dial", {"number": number}, blocking=True)
    assert err.value.translation_key == "invalid_dial_number"
    assert fake_engine.last.dialled == []


@pytest.mark.parametrize("hangup_after", [0, -5, "soon"])
async def test_dial_invalid_hangup_after(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    hangup_after: object,
) -> None:
    """hangup_after must be a positive number of seconds."""
    await _setup(hass, mock_config_entry)
    with pytest.raises(probatio.Invalid):
        await hass.services.async_call(
            DOMAIN, "dial", {"number": "112", "hangup_after": hangup_after}, blocking=True
        )
    assert fake_engine.last.dialled == []


async def test_dial_not_registered(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """A line that is not registered refuses with a translated error."""
    await _setup(hass, mock_config_entry)
    fake_engine.last.emit(registration(RegState.UNREACHABLE, 408))
    await hass.async_block_till_done()
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(DOMAIN, "dial", {"number": "112"}, blocking=True)
    assert not isinstance(err.value, ServiceValidationError)
    assert err.value.translation_key == "not_registered"
    assert err.value.translation_placeholders == {"line": "Thuis", "status": "unreachable"}
    assert fake_engine.last.dialled == []


async def test_dial_engine_down(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """With the engine dead, dial and hangup say so."""
    await _setup(hass, mock_config_entry)
    fake_engine.last.die()
    await hass.async_block_till_done()
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(DOMAIN, "dial", {"number": "112"}, blocking=True)
    assert err.value.translation_key == "not_registered"
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(DOMAIN, "hangup", {}, blocking=True)
    assert err.value.translation_key == "engine_not_running"


@pytest.mark.parametrize(
    ("code", "error_type", "key"),
    [
        ("invalid_number", ServiceValidationError, "invalid_dial_number"),
        ("not_registered", HomeAssistantError, "not_registered"),
        ("locked_out", HomeAssistantError, "not_registered"),
        ("internal", HomeAssistantError, "engine_error"),
        ("timeout", HomeAssistantError, "engine_error"),
    ],
)
async def test_dial_engine_errors(
    hass: HomeAssistant,
    fake_engine: FakeEngineFactory,
    mock_config_entry: MockConfigEntry,
    code: str,
    error_type: type[Exception],
    key: str,
) -> None:
    """Engine errors become translated Home Assistant errors, never secrets."""
    await _setup(hass, mock_config_entry)
    fake_engine.dial_error = EngineError(code, "something went wrong")
    with pytest.raises(error_type) as err:
        await hass.services.async_call(DOMAIN, "dial", {"number": "112"}, blocking=True)
    assert err.value.translation_key == key
    assert PASSWORD not in str(err.value)


async def test_hangup(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """Hang up one call or every call."""
    await _setup(hass, mock_config_entry)
    response = await hass.services.async_call(
        DOMAIN, "hangup", {"call_id": "out1"}, blocking=True, return_response=True
    )
    assert response == {"ended": 1}
    await hass.services.async_call(DOMAIN, "hangup", {}, blocking=True)
    assert fake_engine.last.hangups == ["out1", None]

    fake_engine.hangup_error = EngineError("no_such_call", "no call out9")
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "hangup", {"call_id": "out9"}, blocking=True)
    assert err.value.translation_key == "no_such_call"


async def test_several_lines_need_a_target(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """With two lines the action must name one; then it uses that one."""
    await _setup(hass, mock_config_entry)
    first = fake_engine.last
    second_entry = MockConfigEntry(
        domain=DOMAIN,
        title="Kantoor",
        unique_id="+31107654321",
        data={
            "number": "+31107654321",
            "username": "87654321@ims.imscore.net",
            "password": "another-password",
            "display_name": "Kantoor",
        },
    )
    await _setup(hass, second_entry)
    second = fake_engine.last
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "dial", {"number": "112"}, blocking=True)
    assert err.value.translation_key == "service_found_multiple_config_entry_for_domain"
    await hass.services.async_call(
        DOMAIN,
        "dial",
        {"number": "112", "config_entry_id": second_entry.entry_id},
        blocking=True,
    )
    assert (first.dialled, second.dialled) == ([], [("112", False, None)])


async def test_target_must_be_loaded(
    hass: HomeAssistant, fake_engine: FakeEngineFactory, mock_config_entry: MockConfigEntry
) -> None:
    """A line that is not loaded (or not ours) is refused."""
    await _setup(hass, mock_config_entry)
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN, "dial", {"number": "112", "config_entry_id": "nope"}, blocking=True
        )
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN,
            "dial",
            {"number": "112", "config_entry_id": mock_config_entry.entry_id},
            blocking=True,
        )
