"""The config flow's one login test: progress while it waits, and unknown outcomes.

K8 / issue 9 item 5: once the credentials are out, the login test waits for
their outcome (up to Timer F, 32 s): the flow shows progress (step `login`)
instead of a form that times out, and credentials whose outcome never came
(the engine died or hung after sending them) are not sent again before the K8
window has passed.
"""

from __future__ import annotations

import asyncio
from typing import Any
from unittest.mock import AsyncMock

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, UnknownFlow
import pytest
from syrupy.assertion import SnapshotAssertion

from custom_components.kpn_voip.const import DOMAIN, LOCKOUT_STORAGE_KEY
from custom_components.kpn_voip.kpn_line.client import EngineDiedError
from custom_components.kpn_voip.kpn_line.profile import K8_LOCKOUT_SECONDS
from custom_components.kpn_voip.kpn_line.protocol import RegistrationEvent, RegState

from .conftest import PASSWORD, USERNAME, WRONG_PASSWORD, configure, registration
from .test_config_flow import USER_INPUT

pytestmark = pytest.mark.usefixtures("mock_setup_entry")

_SHOWN = ("type", "step_id", "progress_action", "description_placeholders", "errors", "title")


def _shown(result: Any) -> dict[str, Any]:
    """What the user sees of a flow result (no flow id, no schema objects)."""
    return {key: result[key] for key in _SHOWN if key in result}


async def _start(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    return str(result["flow_id"])


async def test_login_shows_progress_until_its_outcome(
    hass: HomeAssistant, mock_probe_login: AsyncMock, snapshot: SnapshotAssertion
) -> None:
    """The flow shows progress while the login waits for KPN's answer (however long, up to
    the announced 51 s), then the entry: no form that gives up before the outcome."""
    answer = asyncio.Event()

    async def slow_login(*_args: Any, **_kwargs: Any) -> RegistrationEvent:
        await answer.wait()
        return registration(RegState.REGISTERED, 200)

    mock_probe_login.side_effect = slow_login
    flow_id = await _start(hass)
    seen = [_shown(await hass.config_entries.flow.async_configure(flow_id, USER_INPUT))]
    await asyncio.sleep(0.1)
    in_progress = hass.config_entries.flow.async_get(flow_id)
    assert in_progress["step_id"] == "login"  # still waiting: no form, no timeout
    answer.set()
    await hass.async_block_till_done()
    seen.append(_shown(await hass.config_entries.flow.async_configure(flow_id)))
    assert [s["type"] for s in seen] == [FlowResultType.SHOW_PROGRESS, FlowResultType.CREATE_ENTRY]
    assert seen[0]["description_placeholders"] == {"seconds": "51"}
    assert seen == snapshot
    mock_probe_login.assert_awaited_once()


@pytest.mark.parametrize("accepted", [True, False], ids=["entry", "form_again"])
async def test_two_configure_calls_when_the_login_ends(
    hass: HomeAssistant, mock_probe_login: AsyncMock, mock_setup_entry: AsyncMock, accepted: bool
) -> None:
    """Home Assistant configures the flow itself when the login task ends; a client (the
    frontend's GET of the flow, a poll) can do so at the same moment.  Both reach the
    outcome step: one entry (or one form), the other call sees the same form or that
    the flow is over; no error, and the login ran once (K8)."""
    answer = asyncio.Event()

    async def slow_login(*_args: Any, **_kwargs: Any) -> RegistrationEvent:
        await answer.wait()
        if accepted:
            return registration(RegState.REGISTERED, 200)
        return registration(RegState.AUTH_FAILED, 403)

    async def setup_entry(*_args: Any) -> bool:
        await asyncio.sleep(0.01)  # a real setup takes a while (the engine starts)
        return True

    mock_probe_login.side_effect = slow_login
    mock_setup_entry.side_effect = setup_entry
    flow_id = await _start(hass)
    first = await hass.config_entries.flow.async_configure(flow_id, USER_INPUT)
    assert first["type"] is FlowResultType.SHOW_PROGRESS
    answer.set()
    await hass.async_block_till_done()  # HA's own configure: the flow is at progress_done
    assert hass.config_entries.flow.async_get(flow_id)["step_id"] == "login_done"
    results = await asyncio.gather(
        hass.config_entries.flow.async_configure(flow_id),
        hass.config_entries.flow.async_configure(flow_id),
        return_exceptions=True,
    )
    await hass.async_block_till_done()
    shown = [r for r in results if not isinstance(r, UnknownFlow)]
    assert all(isinstance(r, (UnknownFlow, dict)) for r in results), results
    if accepted:
        assert [r["type"] for r in shown] == [FlowResultType.CREATE_ENTRY]
        assert len(hass.config_entries.async_entries(DOMAIN)) == 1
    else:
        # the form again, with the error where it is the outcome step's answer (a call
        # that came after the form was shown asks the form step itself: no error)
        assert [r["type"] for r in shown] == [FlowResultType.FORM] * len(shown)
        assert {"base": "invalid_auth"} in [r["errors"] for r in shown]
        assert hass.config_entries.async_entries(DOMAIN) == []
    mock_probe_login.assert_awaited_once()


@pytest.mark.parametrize(
    "outcome",
    [
        EngineDiedError("the engine process ended"),
        RegistrationEvent(
            state=RegState.UNREACHABLE, reason="no answer in time", credentials_sent=True
        ),
    ],
    ids=["engine_died", "engine_hung"],
)
async def test_login_with_unknown_outcome_is_not_repeated(
    hass: HomeAssistant,
    mock_probe_login: AsyncMock,
    hass_storage: dict[str, Any],
    freezer: Any,
    outcome: Any,
) -> None:
    """The engine sends the credentials, then dies (or hangs) before KPN answers: the form
    says so (outcome_unknown, 15 minutes), the same password is not sent again inside the
    K8 window (it is on disk, never in clear, K9), another one may be; after the window
    the first one may go again."""

    async def login(*_args: Any, on_credentials_sent: Any, **_kwargs: Any) -> Any:
        on_credentials_sent()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    mock_probe_login.side_effect = login
    flow_id = await _start(hass)
    wrong = {**USER_INPUT, CONF_PASSWORD: WRONG_PASSWORD}
    result = await configure(hass, flow_id, wrong)
    assert result["errors"] == {"base": "outcome_unknown"}
    assert result["description_placeholders"] == {"minutes": "15"}
    assert "pending" in hass_storage[LOCKOUT_STORAGE_KEY]["data"][USERNAME]
    assert WRONG_PASSWORD not in str(hass_storage[LOCKOUT_STORAGE_KEY])

    freezer.tick(K8_LOCKOUT_SECONDS - 90)
    result = await configure(hass, flow_id, wrong)
    assert result["type"] is FlowResultType.FORM  # refused before any progress
    assert result["errors"] == {"base": "outcome_unknown"}
    assert result["description_placeholders"] == {"minutes": "2"}
    assert mock_probe_login.await_count == 1

    mock_probe_login.side_effect = None
    mock_probe_login.return_value = registration(RegState.REGISTERED, 200)
    freezer.tick(90)
    result = await configure(hass, flow_id, {**USER_INPUT, CONF_PASSWORD: PASSWORD})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert mock_probe_login.await_count == 2


async def test_engine_death_before_sending_is_no_unknown_outcome(
    hass: HomeAssistant, mock_probe_login: AsyncMock
) -> None:
    """An engine that dies before the credentials went out leaves nothing to wait for."""
    mock_probe_login.side_effect = EngineDiedError("the engine process ended")
    flow_id = await _start(hass)
    result = await configure(hass, flow_id, USER_INPUT)
    assert result["errors"] == {"base": "engine_failed"}
    mock_probe_login.side_effect = None
    result = await configure(hass, flow_id, USER_INPUT)
    assert result["type"] is FlowResultType.CREATE_ENTRY
