"""The config flow's one login test: its result at once or progress while it waits,
and unknown outcomes.

A login that answers within LOGIN_ANSWER_WAIT goes straight to its result.
K8 / issue 9 item 5: once the credentials are out, the login test waits for
their outcome (up to Timer F, 32 s): the flow shows progress (step `login`)
instead of a form that times out, and credentials whose outcome never came
(the engine died or hung after sending them) are not sent again before the K8
window has passed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from unittest.mock import AsyncMock

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_PASSWORD
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import (
    EVENT_DATA_ENTRY_FLOW_PROGRESSED,
    FlowResultType,
    UnknownFlow,
)
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.kpn_voip.config_flow import LOGIN_ANSWER_WAIT, PROGRESS_END_GRACE
from custom_components.kpn_voip.const import DOMAIN, LOCKOUT_STORAGE_KEY
from custom_components.kpn_voip.kpn_line.client import EngineDiedError
from custom_components.kpn_voip.kpn_line.profile import K8_LOCKOUT_SECONDS
from custom_components.kpn_voip.kpn_line.protocol import RegistrationEvent, RegState

from .conftest import INTEGRATION, PASSWORD, USERNAME, WRONG_PASSWORD, configure, registration
from .test_config_flow import USER_INPUT

pytestmark = pytest.mark.usefixtures("mock_setup_entry")

_SHOWN = ("type", "step_id", "progress_action", "description_placeholders", "errors", "title")


def _shown(result: Any) -> dict[str, Any]:
    """What the user sees of a flow result (no flow id, no schema objects)."""
    return {key: result[key] for key in _SHOWN if key in result}


async def _start(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    return str(result["flow_id"])


def _progress_ends(hass: HomeAssistant) -> list[float]:
    """The loop times at which a flow announces a progress step's end to the frontend."""
    ends: list[float] = []

    @callback
    def _ended(_event: Event) -> None:
        ends.append(hass.loop.time())

    hass.bus.async_listen(EVENT_DATA_ENTRY_FLOW_PROGRESSED, _ended)
    return ends


@pytest.mark.parametrize("answer_after", [0.0, LOGIN_ANSWER_WAIT / 2], ids=["at_once", "soon"])
async def test_fast_login_goes_straight_to_the_entry(
    hass: HomeAssistant, mock_probe_login: AsyncMock, answer_after: float
) -> None:
    """A login that answers within LOGIN_ANSWER_WAIT shows no progress step: the form's
    submit answers with the entry (the frontend's spinner waits on nothing it could miss)."""

    async def login(*_args: Any, **_kwargs: Any) -> RegistrationEvent:
        await asyncio.sleep(answer_after)
        return registration(RegState.REGISTERED, 200)

    mock_probe_login.side_effect = login
    ends = _progress_ends(hass)
    flow_id = await _start(hass)
    started = hass.loop.time()
    result = await hass.config_entries.flow.async_configure(flow_id, USER_INPUT)
    took = hass.loop.time() - started
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert answer_after <= took < LOGIN_ANSWER_WAIT
    assert ends == []
    mock_probe_login.assert_awaited_once()


@pytest.mark.parametrize("source", ["user", "reauth"])
async def test_fast_wrong_password_goes_straight_to_the_error(
    hass: HomeAssistant,
    mock_probe_login: AsyncMock,
    mock_config_entry: MockConfigEntry,
    source: str,
) -> None:
    """KPN refuses the password at once: the submit answers with the form and the
    translated invalid_auth, no progress step; the password was sent once and the same
    one submitted again is refused without a second REGISTER (K8)."""
    mock_probe_login.return_value = registration(RegState.AUTH_FAILED, 403)
    ends = _progress_ends(hass)
    if source == "user":
        flow_id, wrong = await _start(hass), {**USER_INPUT, CONF_PASSWORD: WRONG_PASSWORD}
        form_step = "user"
    else:
        mock_config_entry.add_to_hass(hass)
        flow_id = (await mock_config_entry.start_reauth_flow(hass))["flow_id"]
        wrong, form_step = {CONF_PASSWORD: WRONG_PASSWORD}, "reauth_locked"
    result = await hass.config_entries.flow.async_configure(flow_id, wrong)
    assert (result["type"], result["step_id"]) == (FlowResultType.FORM, form_step)
    assert result["errors"] == {"base": "invalid_auth"}
    for language in ("strings.json", "translations/en.json", "translations/nl.json"):
        texts = json.loads((INTEGRATION / language).read_text(encoding="utf-8"))
        assert texts["config"]["error"]["invalid_auth"]
    result = await hass.config_entries.flow.async_configure(flow_id, wrong)
    assert result["errors"] == {"base": "recently_failed"}
    assert ends == []
    mock_probe_login.assert_awaited_once()


async def test_slow_login_shows_progress_and_its_end_comes_after_the_grace(
    hass: HomeAssistant, mock_probe_login: AsyncMock
) -> None:
    """A login slower than LOGIN_ANSWER_WAIT shows progress; one that answers just after it
    has been shown ends the progress no sooner than PROGRESS_END_GRACE after it was shown
    (the frontend listens for the end only once it has drawn the step), then the entry."""
    answered: list[float] = []

    async def login(*_args: Any, **_kwargs: Any) -> RegistrationEvent:
        await asyncio.sleep(LOGIN_ANSWER_WAIT + 0.1)
        answered.append(hass.loop.time())
        return registration(RegState.REGISTERED, 200)

    mock_probe_login.side_effect = login
    ends = _progress_ends(hass)
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, USER_INPUT)
    shown = hass.loop.time()
    assert (result["type"], result["step_id"]) == (FlowResultType.SHOW_PROGRESS, "login")
    await hass.async_block_till_done()
    assert len(answered) == 1
    assert answered[0] - shown < PROGRESS_END_GRACE / 2  # answered right after the show
    assert len(ends) == 1
    assert ends[0] - shown >= PROGRESS_END_GRACE
    result = await hass.config_entries.flow.async_configure(flow_id)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    mock_probe_login.assert_awaited_once()


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
