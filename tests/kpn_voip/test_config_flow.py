"""Config, reauth, reconfigure and options flows (every path)."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from unittest.mock import AsyncMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, UnknownFlow
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kpn_voip.const import (
    CONF_ALLOWED_SOURCES,
    CONF_DISPLAY_NAME,
    CONF_ENGINE_COMMAND,
    CONF_KEEPALIVE,
    CONF_NUMBER,
    CONF_PROXY_HOST,
    CONF_PROXY_PORT,
    DOMAIN,
    LOCKOUT_STORAGE_KEY,
)
from custom_components.kpn_voip.issues import async_create_lockout_issue
from custom_components.kpn_voip.kpn_line.addresses import AllowedSources
from custom_components.kpn_voip.kpn_line.client import EngineError
from custom_components.kpn_voip.kpn_line.profile import K2_PROXY_HOST, K8_LOCKOUT_SECONDS
from custom_components.kpn_voip.kpn_line.protocol import RegState

from .conftest import (
    DISPLAY_NAME,
    INTEGRATION,
    NUMBER,
    PASSWORD,
    USERNAME,
    WRONG_PASSWORD,
    configure,
    configure_after_block,
    lockout_issue,
    registration,
)

pytestmark = pytest.mark.usefixtures("mock_setup_entry")

USER_INPUT = {
    CONF_NUMBER: "020 123 4567",
    CONF_USERNAME: "12345678",
    CONF_PASSWORD: PASSWORD,
    CONF_DISPLAY_NAME: DISPLAY_NAME,
    "advanced": {},
}


async def _start(hass: HomeAssistant) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return dict(result)


async def test_user_flow(hass: HomeAssistant, mock_probe_login: AsyncMock) -> None:
    """Number (K3) and user name (K4) are normalised; one test REGISTER."""
    result = await _start(hass)

    result = await configure(hass, result["flow_id"], USER_INPUT)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == DISPLAY_NAME
    assert result["data"] == {
        CONF_NUMBER: NUMBER,
        CONF_USERNAME: USERNAME,
        CONF_PASSWORD: PASSWORD,
        CONF_DISPLAY_NAME: DISPLAY_NAME,
    }
    assert result["options"] == {}
    assert result["result"].unique_id == NUMBER
    # K8: exactly one login attempt.
    mock_probe_login.assert_awaited_once()
    settings = mock_probe_login.await_args.args[0]
    assert (settings.number, settings.username, settings.password) == (NUMBER, USERNAME, PASSWORD)
    assert settings.proxy_host == K2_PROXY_HOST


async def test_user_flow_title_is_national_number(
    hass: HomeAssistant, mock_probe_login: AsyncMock
) -> None:
    """Without a display name the line is named by its national number."""
    result = await _start(hass)
    result = await configure(hass, result["flow_id"], {**USER_INPUT, CONF_DISPLAY_NAME: ""})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "0201234567"


async def test_user_flow_advanced_proxy(hass: HomeAssistant, mock_probe_login: AsyncMock) -> None:
    """The folded advanced section overrides the proxy; stored as options."""
    result = await _start(hass)
    result = await configure(
        hass,
        result["flow_id"],
        {**USER_INPUT, "advanced": {CONF_PROXY_HOST: " 127.0.0.1 ", CONF_PROXY_PORT: 5070}},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["options"] == {CONF_PROXY_HOST: "127.0.0.1", CONF_PROXY_PORT: 5070}
    settings = mock_probe_login.await_args.args[0]
    assert (settings.proxy_host, settings.proxy_port) == ("127.0.0.1", 5070)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        (CONF_NUMBER, "hello", "invalid_number"),
        (CONF_NUMBER, "020 123 456", "number_too_short"),
        (CONF_NUMBER, "06 1234 5678", "mobile_number"),
        (CONF_NUMBER, "+49 30 1234567", "not_dutch_number"),
        (CONF_NUMBER, "020 123 45678", "number_too_long"),
        (CONF_NUMBER, "0800 123 456", "service_number"),
        (CONF_USERNAME, "user name", "invalid_username"),
        (CONF_USERNAME, "12345678@example.com", "wrong_domain"),
        (CONF_DISPLAY_NAME, 'Say "hi"', "invalid_display_name"),
        (CONF_DISPLAY_NAME, "x" * 65, "invalid_display_name"),
    ],
)
async def test_user_flow_bad_input(
    hass: HomeAssistant, mock_probe_login: AsyncMock, field: str, value: str, error: str
) -> None:
    """Bad input is refused with a translated error, before any REGISTER; then fixed."""
    result = await _start(hass)
    result = await configure(hass, result["flow_id"], {**USER_INPUT, field: value})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: error}
    mock_probe_login.assert_not_awaited()
    # K9: the password is not handed back to the form.
    assert PASSWORD not in str(result["data_schema"].schema)

    result = await configure(hass, result["flow_id"], USER_INPUT)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_user_flow_bad_proxy(hass: HomeAssistant, mock_probe_login: AsyncMock) -> None:
    """A proxy that is no host name is refused on its field."""
    result = await _start(hass)
    result = await configure(
        hass, result["flow_id"], {**USER_INPUT, "advanced": {CONF_PROXY_HOST: "not a host!"}}
    )
    assert result["errors"] == {"base": "invalid_proxy"}
    mock_probe_login.assert_not_awaited()


@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        (registration(RegState.AUTH_FAILED, 403), "invalid_auth"),
        (registration(RegState.LOCKED_OUT, 403), "account_locked"),
        (registration(RegState.UNREACHABLE, 408), "cannot_connect"),
        (registration(RegState.STOPPED), "unknown"),
        (EngineError("internal", "pjsua2 failed"), "engine_failed"),
        (RuntimeError("boom"), "unknown"),
    ],
)
async def test_user_flow_login_errors(
    hass: HomeAssistant,
    mock_probe_login: AsyncMock,
    freezer: FrozenDateTimeFactory,
    outcome: Any,
    error: str,
) -> None:
    """Every login outcome maps to a form error; a new attempt can succeed (after an auth
    failure, once KPN's block has ended: K8)."""
    if isinstance(outcome, BaseException):
        mock_probe_login.side_effect = outcome
    else:
        mock_probe_login.return_value = outcome
    result = await _start(hass)
    result = await configure(hass, result["flow_id"], USER_INPUT)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    assert mock_probe_login.await_count == 1

    mock_probe_login.side_effect = None
    mock_probe_login.return_value = registration(RegState.REGISTERED, 200)
    # After an auth failure only another password may be sent, and only once KPN's
    # block on the account has ended (K8).
    another = {**USER_INPUT, CONF_PASSWORD: "another-password"}
    if error in ("invalid_auth", "account_locked"):
        _, result = await configure_after_block(
            hass, result["flow_id"], another, freezer, mock_probe_login
        )
    else:
        result = await configure(hass, result["flow_id"], another)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert mock_probe_login.await_count == 2


async def test_user_flow_failed_password_not_resent(
    hass: HomeAssistant,
    mock_probe_login: AsyncMock,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """K8: a refused password is not sent again within the lockout window."""
    mock_probe_login.return_value = registration(RegState.AUTH_FAILED, 403)
    result = await _start(hass)
    wrong = {**USER_INPUT, CONF_PASSWORD: WRONG_PASSWORD}
    result = await configure(hass, result["flow_id"], wrong)
    assert result["errors"] == {"base": "invalid_auth"}
    stored = hass_storage[LOCKOUT_STORAGE_KEY]["data"]
    assert set(stored) == {USERNAME}
    assert stored[USERNAME]["reason"] == "auth_failed"
    # K9: only a fingerprint is stored, never the password.
    assert WRONG_PASSWORD not in str(hass_storage[LOCKOUT_STORAGE_KEY])

    freezer.tick(K8_LOCKOUT_SECONDS - 60)
    result = await configure(hass, result["flow_id"], wrong)
    assert result["errors"] == {"base": "recently_failed"}
    assert result["description_placeholders"] == {"minutes": "1"}
    assert mock_probe_login.await_count == 1

    freezer.tick(61)
    result = await configure(hass, result["flow_id"], wrong)
    assert result["errors"] == {"base": "invalid_auth"}
    assert mock_probe_login.await_count == 2


async def test_user_flow_honours_a_record_stored_before(
    hass: HomeAssistant, mock_probe_login: AsyncMock, hass_storage: dict[str, Any]
) -> None:
    """K8: a failure stored by an earlier version still keeps its password unsent.

    The fingerprint literal is what the earlier version wrote for WRONG_PASSWORD.
    """
    hass_storage[LOCKOUT_STORAGE_KEY] = {
        "version": 1,
        "key": LOCKOUT_STORAGE_KEY,
        "data": {
            USERNAME: {
                "time": time.time() - 60,
                "reason": "auth_failed",
                "fingerprint": "df6dddbe8eef89b1cdedf2eca7166f7a",
            },
        },
    }
    result = await _start(hass)
    result = await configure(hass, result["flow_id"], {**USER_INPUT, CONF_PASSWORD: WRONG_PASSWORD})
    assert result["errors"] == {"base": "recently_failed"}
    assert result["description_placeholders"] == {"minutes": "14"}
    mock_probe_login.assert_not_awaited()


async def test_user_flow_success_clears_lockout(
    hass: HomeAssistant,
    mock_probe_login: AsyncMock,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """A password that works clears the account's failure record (sent once KPN's
    block after the failure has ended, K8)."""
    mock_probe_login.return_value = registration(RegState.AUTH_FAILED, 403)
    result = await _start(hass)
    result = await configure(hass, result["flow_id"], {**USER_INPUT, CONF_PASSWORD: WRONG_PASSWORD})
    assert hass_storage[LOCKOUT_STORAGE_KEY]["data"]
    mock_probe_login.return_value = registration(RegState.REGISTERED, 200)
    _, result = await configure_after_block(
        hass, result["flow_id"], USER_INPUT, freezer, mock_probe_login
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # No failure is left; only the fingerprint of the accepted password (lockout.py).
    assert set(hass_storage[LOCKOUT_STORAGE_KEY]["data"][USERNAME]) == {"accepted"}


async def test_user_flow_already_configured(
    hass: HomeAssistant, mock_probe_login: AsyncMock, mock_config_entry: MockConfigEntry
) -> None:
    """A second entry for the same number aborts before any REGISTER (K7)."""
    mock_config_entry.add_to_hass(hass)
    result = await _start(hass)
    result = await configure(
        hass, result["flow_id"], {**USER_INPUT, CONF_NUMBER: "+31 (0)20 123 4567"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    mock_probe_login.assert_not_awaited()


async def test_user_flow_left_open_does_not_block_the_number(
    hass: HomeAssistant, mock_probe_login: AsyncMock
) -> None:
    """A form left open after a failed login (page reloaded, tab closed: the flow stays
    in progress) does not block a new flow for the same number; it used to abort
    with "already being configured" until Home Assistant restarted."""
    mock_probe_login.return_value = registration(RegState.UNREACHABLE, 408)
    left_open = await _start(hass)
    result = await configure(hass, left_open["flow_id"], USER_INPUT)
    assert result["errors"] == {"base": "cannot_connect"}

    mock_probe_login.return_value = registration(RegState.REGISTERED, 200)
    result = await _start(hass)
    result = await configure(hass, result["flow_id"], USER_INPUT)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == NUMBER
    # HA ends the old form with the new entry: it cannot send a second REGISTER (K7).
    with pytest.raises(UnknownFlow):
        await configure(hass, left_open["flow_id"], USER_INPUT)
    assert mock_probe_login.await_count == 2


async def test_user_flow_pjsua2_missing(hass: HomeAssistant, pjsua2_present: Any) -> None:
    """Without pjsua2 the flow stops with an explanation and a repair issue."""
    pjsua2_present.return_value = False
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "pjsua2_missing"
    assert ir.async_get(hass).async_get_issue(DOMAIN, "pjsua2_missing") is not None


async def test_reauth_flow(
    hass: HomeAssistant,
    mock_probe_login: AsyncMock,
    mock_config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """A new password is tested once, stored, and clears the K8 record and issue."""
    mock_config_entry.add_to_hass(hass)
    hass_storage[LOCKOUT_STORAGE_KEY] = {
        "version": 1,
        "key": LOCKOUT_STORAGE_KEY,
        "data": {
            USERNAME: {"time": 0.0, "reason": "auth_failed", "fingerprint": "0" * 32},
        },
    }
    async_create_lockout_issue(hass, mock_config_entry, K8_LOCKOUT_SECONDS)
    assert lockout_issue(hass, mock_config_entry) is not None
    result = await mock_config_entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"]["line"] == DISPLAY_NAME

    result = await configure(hass, result["flow_id"], {CONF_PASSWORD: "new-password"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert mock_config_entry.data[CONF_PASSWORD] == "new-password"
    assert mock_config_entry.data[CONF_NUMBER] == NUMBER
    mock_probe_login.assert_awaited_once()
    assert mock_probe_login.await_args.args[0].password == "new-password"
    # No failure is left; only the fingerprint of the accepted password (lockout.py).
    assert set(hass_storage[LOCKOUT_STORAGE_KEY]["data"][USERNAME]) == {"accepted"}
    assert lockout_issue(hass, mock_config_entry) is None


async def test_reauth_flow_same_password_not_resent(
    hass: HomeAssistant,
    mock_probe_login: AsyncMock,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """K8: the password that just failed is refused without a REGISTER."""
    mock_config_entry.add_to_hass(hass)
    mock_probe_login.return_value = registration(RegState.AUTH_FAILED, 403)
    result = await mock_config_entry.start_reauth_flow(hass)
    result = await configure(hass, result["flow_id"], {CONF_PASSWORD: WRONG_PASSWORD})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await configure(hass, result["flow_id"], {CONF_PASSWORD: WRONG_PASSWORD})
    assert result["errors"] == {"base": "recently_failed"}
    assert result["description_placeholders"]["minutes"] == "15"
    assert mock_probe_login.await_count == 1

    mock_probe_login.return_value = registration(RegState.REGISTERED, 200)
    # Another password: held until KPN's block has ended, then sent once (K8).
    _, result = await configure_after_block(
        hass, result["flow_id"], {CONF_PASSWORD: "the-right-one"}, freezer, mock_probe_login
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert mock_probe_login.await_count == 2


async def test_reauth_flow_empty_password(
    hass: HomeAssistant, mock_probe_login: AsyncMock, mock_config_entry: MockConfigEntry
) -> None:
    """A password LineSettings refuses (empty) is a form error, never a REGISTER."""
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reauth_flow(hass)
    result = await configure(hass, result["flow_id"], {CONF_PASSWORD: ""})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_value"}
    mock_probe_login.assert_not_awaited()
    assert mock_config_entry.data[CONF_PASSWORD] == PASSWORD


async def test_reconfigure_flow(hass: HomeAssistant, mock_config_entry: MockConfigEntry) -> None:
    """Number and display name change without any login test."""
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"

    result = await configure(
        hass, result["flow_id"], {CONF_NUMBER: "010-765 4321", CONF_DISPLAY_NAME: ""}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert mock_config_entry.unique_id == "+31107654321"
    assert mock_config_entry.title == "0107654321"
    assert mock_config_entry.data[CONF_NUMBER] == "+31107654321"
    assert mock_config_entry.data[CONF_PASSWORD] == PASSWORD


@pytest.mark.parametrize(
    ("user_input", "errors"),
    [
        ({CONF_NUMBER: "12"}, {CONF_NUMBER: "invalid_number"}),
        (
            {CONF_NUMBER: "0201234567", CONF_DISPLAY_NAME: "a\nb"},
            {CONF_DISPLAY_NAME: "invalid_display_name"},
        ),
    ],
)
async def test_reconfigure_flow_errors(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    user_input: dict[str, str],
    errors: dict[str, str],
) -> None:
    """Bad input is refused; the form recovers."""
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    result = await configure(hass, result["flow_id"], user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    result = await configure(
        hass, result["flow_id"], {CONF_NUMBER: "0201234567", CONF_DISPLAY_NAME: "Kantoor"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert mock_config_entry.title == "Kantoor"


async def test_reconfigure_flow_number_taken(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """A number another entry has aborts already_configured."""
    mock_config_entry.add_to_hass(hass)
    MockConfigEntry(domain=DOMAIN, unique_id="+31107654321", data={}).add_to_hass(hass)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    result = await configure(hass, result["flow_id"], {CONF_NUMBER: "0107654321"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert mock_config_entry.data[CONF_NUMBER] == NUMBER


async def test_options_flow(hass: HomeAssistant, mock_config_entry: MockConfigEntry) -> None:
    """Proxy override, keep-alive and extra sources are validated and stored."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, options={CONF_ENGINE_COMMAND: ["python3", "-m", "kpn_line.engine"]}
    )
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"

    bad = {
        CONF_PROXY_HOST: "127.0.0.1",
        CONF_PROXY_PORT: 5070,
        CONF_KEEPALIVE: 20,
        CONF_ALLOWED_SOURCES: "192.0.2.0/24, not an address",
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], bad)
    assert result["type"] is FlowResultType.FORM
    # Errors that say what to enter, not "This value is not valid."
    assert result["errors"] == {CONF_ALLOWED_SOURCES: "invalid_allowed_sources"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**bad, CONF_PROXY_HOST: "not a host!", CONF_ALLOWED_SOURCES: ""}
    )
    assert result["errors"] == {CONF_PROXY_HOST: "invalid_proxy"}
    options_errors = json.loads((INTEGRATION / "strings.json").read_text())["options"]["error"]
    assert {"invalid_allowed_sources", "invalid_proxy"} <= set(options_errors)

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**bad, CONF_ALLOWED_SOURCES: "192.0.2.0/24, 198.51.100.7"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert mock_config_entry.options == {
        CONF_ENGINE_COMMAND: ["python3", "-m", "kpn_line.engine"],
        CONF_PROXY_HOST: "127.0.0.1",
        CONF_PROXY_PORT: 5070,
        CONF_KEEPALIVE: 20,
        CONF_ALLOWED_SOURCES: ["192.0.2.0/24", "198.51.100.7"],
    }

    # The form shows the stored sources as text again.
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    schema = result["data_schema"].schema
    suggested = {
        str(key): key.description["suggested_value"]
        for key in schema
        if key.description and "suggested_value" in key.description
    }
    assert suggested[CONF_ALLOWED_SOURCES] == "192.0.2.0/24, 198.51.100.7"
    assert suggested[CONF_PROXY_PORT] == 5070


_GOOD_OPTIONS = {CONF_PROXY_HOST: "127.0.0.1", CONF_PROXY_PORT: 5070, CONF_KEEPALIVE: 20}


@pytest.mark.parametrize(
    ("typed", "named"),
    [
        ("300.1.1.1", "300.1.1.1"),
        ("not-an-ip", "not-an-ip"),
        ("192.0.2.0/24, sbc.example", "sbc.example"),  # a host name: not in this field
        ("192.0.2.7, 10.0.0.256", "10.0.0.256"),
        ("10.0.0.0/33", "10.0.0.0/33"),
        ("1.2.3", "1.2.3"),
        ("[2001:db8::1]", "[2001:db8::1]"),
        ("192.0.2.7;192.0.2.8", "192.0.2.7;192.0.2.8"),
    ],
)
async def test_options_flow_names_the_bad_call_source(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, typed: str, named: str
) -> None:
    """Each extra call source must be an IP address or network (ipaddress): the first one
    that is not gets a translated error (en + nl) naming it, and nothing is stored."""
    mock_config_entry.add_to_hass(hass)
    before = dict(mock_config_entry.options)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**_GOOD_OPTIONS, CONF_ALLOWED_SOURCES: typed}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_ALLOWED_SOURCES: "invalid_allowed_sources"}
    assert result["description_placeholders"]["source"] == named
    assert dict(mock_config_entry.options) == before
    for language in ("strings.json", "translations/en.json", "translations/nl.json"):
        errors = json.loads((INTEGRATION / language).read_text())["options"]["error"]
        assert "{source}" in errors["invalid_allowed_sources"]


async def test_options_flow_takes_addresses_and_networks_as_the_engine_does(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """IPv4 and IPv6 addresses and networks (host bits allowed, as the engine takes them)
    are stored as typed; the engine reads every one as a network, none as a name to
    resolve."""
    mock_config_entry.add_to_hass(hass)
    good = ["192.0.2.7", "2001:db8::1", "192.0.2.0/24", "2001:db8::/32", "10.0.0.1/8"]
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**_GOOD_OPTIONS, CONF_ALLOWED_SOURCES: " , ".join(good) + ","}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert mock_config_entry.options[CONF_ALLOWED_SOURCES] == good
    sources = AllowedSources()
    assert sources.configure_static(good) == []  # no host names
    assert [str(net) for net in sources.nets] == [
        "192.0.2.7/32",
        "2001:db8::1/128",
        "192.0.2.0/24",
        "2001:db8::/32",
        "10.0.0.0/8",
    ]


@pytest.mark.parametrize(
    ("field", "value"), [(CONF_KEEPALIVE, 1.5), (CONF_KEEPALIVE, "20.2"), (CONF_PROXY_PORT, 5070.5)]
)
async def test_options_flow_refuses_fractions(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, field: str, value: Any
) -> None:
    """A keep-alive of 1.5 s (or a port of 5070.5) is refused with a translated error on
    the field, never stored cut down to 1; a whole number given as 20.0 is taken."""
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    good = {CONF_PROXY_HOST: "127.0.0.1", CONF_PROXY_PORT: 5070, CONF_KEEPALIVE: 20}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**good, field: value}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: "not_whole_number"}
    assert CONF_KEEPALIVE not in mock_config_entry.options
    for language in ("strings.json", "translations/nl.json"):
        errors = json.loads((INTEGRATION / language).read_text())["options"]["error"]
        assert errors["not_whole_number"]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**good, CONF_KEEPALIVE: 20.0}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert mock_config_entry.options[CONF_KEEPALIVE] == 20


@pytest.mark.parametrize(
    "language", ["strings.json", "translations/en.json", "translations/nl.json"]
)
def test_no_bare_addresses_in_markdown(language: str) -> None:
    """The frontend renders step and field descriptions as markdown: a bare
    user@domain would become a mailto link, so examples are in backticks."""
    steps = json.loads((INTEGRATION / language).read_text(encoding="utf-8"))["config"]["step"]
    texts: list[str] = []
    for step in steps.values():
        for part in (step, *step.get("sections", {}).values()):
            texts.append(part.get("description", ""))
            texts.extend(part.get("data_description", {}).values())
    assert any("`12345678@ims.imscore.net`" in text for text in texts)
    for text in texts:
        outside_code = re.sub(r"`[^`]*`", "", text)
        assert not re.search(r"\S@\S", outside_code), text
