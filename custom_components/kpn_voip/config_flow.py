"""Config, reauth, reconfigure and options flows for a KPN line.

Every login test is exactly one REGISTER (`probe_login`), and a password that
just failed is never sent again within K8_LOCKOUT_SECONDS: KPN blocks the
account for about 15 minutes after wrong credentials (K8).  The login test
waits for the outcome of the credentials it sent (up to Timer F, 32 s, plus
the time to send them); a login that has not answered within
LOGIN_ANSWER_WAIT shows progress meanwhile (step `login`) instead of a form
that times out.  Credentials whose outcome never came (the
engine died or hung) are kept as such and not sent again before the K8
window has passed (issue 9 item 5, lockout.py).

KPN blocks the whole account, not one password: while an earlier failure
still blocks it (K8), a new password is not sent at once either - it would
most likely be refused and could extend the block.  The flow says until when
the block lasts (step `reauth_locked`), holds the new password and sends it
once, when the block has ended (progress `lockout_wait`); closing the flow
meanwhile cancels it and nothing is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path
import time
from typing import Any, Final, override

from homeassistant.components.file_upload import process_uploaded_file
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import UnknownFlow, section
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.selector import (
    BooleanSelector,
    FileSelector,
    FileSelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio

from .calls import read_phone_book
from .const import (
    CONF_ALLOW,
    CONF_ALLOWED_SOURCES,
    CONF_BLOCK,
    CONF_BLOCK_ANONYMOUS,
    CONF_DISPLAY_NAME,
    CONF_KEEPALIVE,
    CONF_NUMBER,
    CONF_PHONE_BOOK,
    CONF_PHONE_BOOK_UPLOAD,
    CONF_PROXY_HOST,
    CONF_PROXY_PORT,
    DOMAIN,
    LOGGER,
    PHONE_BOOK_UPLOAD_PATH,
    PROBE_TIMEOUT,
    SECTION_CALLS,
    SETTINGS_OPTIONS,
    SUBENTRY_CALL_TARGET,
)
from .helpers import settings_from_entry
from .issues import async_check_pjsua2, async_delete_lockout_issue, local_time
from .kpn_line.client import EngineError, probe_login
from .kpn_line.errors import InvalidFieldError
from .kpn_line.lockout import minutes_left
from .kpn_line.numbers import to_national
from .kpn_line.policy import InvalidEntryError, parse_entries
from .kpn_line.profile import K2_PROXY_HOST, K2_PROXY_PORT
from .kpn_line.protocol import CREDENTIALS_OUTCOME_WAIT, RegState
from .kpn_line.settings import INVALID_VALUE, LineSettings, source_network
from .lockout import LockoutGuard, LockoutRecord, async_get_lockout_guard
from .phonebook import PHONE_BOOK_NOT_FOUND, PhoneBookError
from .subentry_flow import CallTargetSubentryFlow

_TEXT = TextSelector(TextSelectorConfig(type=TextSelectorType.TEXT))
_TEL = TextSelector(TextSelectorConfig(type=TextSelectorType.TEL, autocomplete="tel"))
_USERNAME = TextSelector(TextSelectorConfig(type=TextSelectorType.TEXT, autocomplete="username"))
_PASSWORD = TextSelector(
    TextSelectorConfig(type=TextSelectorType.PASSWORD, autocomplete="current-password")
)
_PORT = NumberSelector(NumberSelectorConfig(min=1, max=65535, step=1, mode=NumberSelectorMode.BOX))
_KEEPALIVE = NumberSelector(
    NumberSelectorConfig(
        min=0, max=3600, step=1, unit_of_measurement="s", mode=NumberSelectorMode.BOX
    )
)
# Whole-number fields: the selector's step keeps the form from offering 1.5, but
# a posted 1.5 passes it; refused with an error, never stored as 1.
_WHOLE_NUMBER_FIELDS = (CONF_PROXY_PORT, CONF_KEEPALIVE)
_LIST = TextSelector(TextSelectorConfig(type=TextSelectorType.TEXT, multiline=True))
_VCARD = FileSelector(FileSelectorConfig(accept=".vcf,text/vcard,text/x-vcard"))
SECTION_ADVANCED = "advanced"
# How long a login test can take at most: its own timeout, then (once the
# credentials are out) the wait for their outcome (K8, Timer F).
_LOGIN_WAIT = PROBE_TIMEOUT + CREDENTIALS_OUTCOME_WAIT
LOGIN_ANSWER_WAIT: Final = 1.0
"""Seconds the flow waits for the login test's answer before it shows progress.

Home Assistant's frontend subscribes to the end of a progress step only after
it has drawn the step, and never asks for the flow again: a login that ends
before that subscription leaves the dialog spinning.  A registrar that answers
at all usually does so well within this time: the flow then goes straight to
the result (the entry, or the form with the error), with no progress step.
"""
PROGRESS_END_GRACE: Final = 2.0
"""Seconds a progress step lasts at least once shown (step `login`).

A login that answers just after LOGIN_ANSWER_WAIT would end the progress while
the frontend has not yet subscribed to its end (see above): its end is
announced no sooner than this after the step was shown.
"""
# The fields of the user step that show their own error; the rest go on top.
_USER_FIELDS = (CONF_NUMBER, CONF_USERNAME, CONF_DISPLAY_NAME)
_PROXY_FIELDS = (CONF_PROXY_HOST, CONF_PROXY_PORT)
_RECONFIGURED = (CONF_NUMBER, CONF_DISPLAY_NAME)


def _title(number: str, display_name: str) -> str:
    return display_name or to_national(number)


# Fields whose generic "invalid_value" gets a message that says what to enter.
_FIELD_ERRORS = {CONF_PROXY_HOST: "invalid_proxy"}


def _form_error(err: InvalidFieldError, form_fields: Collection[str]) -> dict[str, str]:
    """The translated error for a refused field: on it if the form shows it, else on top."""
    code = _FIELD_ERRORS.get(err.field, err.code) if err.code == INVALID_VALUE else err.code
    return {err.field if err.field in form_fields else "base": code}


def _reconfigured(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The reconfigure form's fields (the display name may be left out)."""
    return {
        CONF_NUMBER: user_input[CONF_NUMBER],
        CONF_DISPLAY_NAME: user_input.get(CONF_DISPLAY_NAME, ""),
    }


def _changed_settings(
    entry: ConfigEntry,
    changes: Mapping[str, Any],
    errors: dict[str, str],
    form_fields: Collection[str],
) -> LineSettings | None:
    """The entry's settings with `changes`; None with the refused field's error in `errors`."""
    try:
        return LineSettings.from_user_input(**{**settings_from_entry(entry).to_wire(), **changes})
    except InvalidFieldError as err:
        errors.update(_form_error(err, form_fields))
        return None


def _show_form(
    flow: ConfigFlow | OptionsFlow,
    *,
    step_id: str,
    fields: dict[Any, Any],
    suggested: Mapping[str, Any],
    errors: dict[str, str],
    placeholders: Mapping[str, str] | None = None,
) -> ConfigFlowResult:
    """A form with `fields`, filled in with `suggested` (never a password, K9)."""
    return flow.async_show_form(
        step_id=step_id,
        data_schema=flow.add_suggested_values_to_schema(
            probatio.Schema(fields),
            {key: value for key, value in suggested.items() if key != CONF_PASSWORD},
        ),
        errors=errors,
        description_placeholders=placeholders,
    )


def _blocked(guard: LockoutGuard, settings: LineSettings, errors: dict[str, str]) -> dict[str, str]:
    """K8: refuse credentials that may not be sent now; fills `errors`, returns placeholders.

    A password that failed within the lockout window, or whose earlier sending
    had no outcome (issue 9 item 5), is not sent again.
    """
    record = guard.failed_recently(settings.username, settings.password)
    if record is not None:
        errors["base"] = "recently_failed"
        return {"minutes": str(minutes_left(record.until, time.time()))}
    pending = guard.unknown_outcome(settings.username, settings.password)
    if pending is not None:
        errors["base"] = "outcome_unknown"
        return {"minutes": str(minutes_left(pending.until, time.time()))}
    return {}


type _LoginOutcome = tuple[dict[str, str], dict[str, str]]
"""A login test's (errors, description placeholders); no errors if it registered."""


async def _async_login(guard: LockoutGuard, settings: LineSettings) -> _LoginOutcome:
    """One test REGISTER; (errors, description placeholders), no errors if it registered.

    K8: a failure is recorded so that nothing sends the password again by itself;
    credentials that went out without an outcome stay recorded as such.
    """
    errors: dict[str, str] = {}
    username, password = settings.username, settings.password
    sent: list[bool] = []

    def _sent() -> None:
        sent.append(True)
        guard.note_credentials_sent(username, password)

    try:
        outcome = await probe_login(settings, timeout=PROBE_TIMEOUT, on_credentials_sent=_sent)
    except EngineError as err:
        LOGGER.warning("The line engine could not test the login: %s", err.code)
        if sent and (placeholders := _blocked(guard, settings, errors)):
            return errors, placeholders  # died after sending them: the outcome is unknown
        errors["base"] = "engine_failed"
        return errors, {}
    except Exception:  # noqa: BLE001  any failure is a form error, never a crash
        LOGGER.exception("Unexpected error while testing the login")
        errors["base"] = "unknown"
        return errors, {}
    match outcome.state:
        case RegState.REGISTERED:
            guard.note_accepted(username, password)
            await guard.async_clear(username)
        case RegState.AUTH_FAILED:
            await guard.async_record(username, password, outcome.state.value)
            errors["base"] = "invalid_auth"
        case RegState.LOCKED_OUT:
            await guard.async_record(username, password, outcome.state.value)
            errors["base"] = "account_locked"
        case RegState.UNREACHABLE if outcome.credentials_sent:
            # The engine hung after sending them: their outcome is unknown.
            placeholders = _blocked(guard, settings, errors)
            return errors, placeholders
        case RegState.UNREACHABLE:
            guard.note_ended(username)
            errors["base"] = "cannot_connect"
        case _:
            errors["base"] = "unknown"
    return errors, {}


def _block_placeholders(record: LockoutRecord) -> dict[str, str]:
    """How long KPN still blocks the account (K8): `until` (local HH:MM), `block_minutes`."""
    return {
        "until": local_time(record.until),
        "block_minutes": str(minutes_left(record.until, time.time())),
    }


async def _async_block_end(hass: HomeAssistant, guard: LockoutGuard, username: str) -> None:
    """Return once no failure blocks the account any more (K8); at once if none does.

    Waits on Home Assistant's clock (async_call_later); a failure recorded
    meanwhile extends the wait.  Cancelled with the flow: nothing is sent then.
    """
    while (record := guard.active(username)) is not None:
        ended: asyncio.Future[None] = hass.loop.create_future()

        @callback
        def _ended(_now: datetime, ended: asyncio.Future[None] = ended) -> None:
            if not ended.done():
                ended.set_result(None)

        unsub = async_call_later(hass, max(1.0, record.until - time.time()), _ended)
        try:
            await ended
        finally:
            unsub()


async def _async_login_after_block(
    hass: HomeAssistant, guard: LockoutGuard, settings: LineSettings
) -> _LoginOutcome:
    """K8: the one test REGISTER (`_async_login`), held until KPN's block has ended."""
    await _async_block_end(hass, guard, settings.username)
    return await _async_login(guard, settings)


async def _async_shown_outcome(login: asyncio.Task[_LoginOutcome]) -> _LoginOutcome:
    """`login`'s outcome, no sooner than PROGRESS_END_GRACE after this started.

    The progress step's task: started as the step is shown, so that its end
    cannot come before the frontend listens for it.  Cancelled (the flow was
    closed), it cancels `login` as well.
    """
    loop = asyncio.get_running_loop()
    shown_at = loop.time()
    outcome = await login
    if (left := shown_at + PROGRESS_END_GRACE - loop.time()) > 0:
        await asyncio.sleep(left)
    return outcome


class KpnVoipConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up a KPN line."""

    VERSION = 1

    def __init__(self) -> None:
        """No login test yet."""
        self._typed: Mapping[str, Any] = {}  # the account form as typed
        self._login_settings: LineSettings | None = None
        # The login test's task, or the progress step's (_async_shown_outcome).
        self._login_task: asyncio.Task[_LoginOutcome] | None = None
        # The K8 block the login test waits for before it sends anything, if any.
        self._held_by: LockoutRecord | None = None
        self._guard: LockoutGuard | None = None
        # What login_done last showed when it was a form again (see there).
        self._login_form: ConfigFlowResult | None = None

    @staticmethod
    @callback
    @override
    def async_get_options_flow(config_entry: ConfigEntry) -> KpnVoipOptionsFlow:
        """The advanced options."""
        return KpnVoipOptionsFlow()

    @classmethod
    @callback
    @override
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Call targets: numbers notify.send_message calls (notify.py, issue 11)."""
        return {SUBENTRY_CALL_TARGET: CallTargetSubentryFlow}

    @override
    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the account data from KPN's servicetool (K3-K6)."""
        if not await async_check_pjsua2(self.hass):
            return self.async_abort(reason="pjsua2_missing")
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            settings = self._validate(user_input, errors)
            if settings is not None:
                # Not raise_on_progress: a form left open (a reloaded page, a
                # closed tab) must not block this number until HA restarts.
                await self.async_set_unique_id(settings.number, raise_on_progress=False)
                # Before any REGISTER: a second login would take the line
                # from the running entry (K7).
                self._abort_if_unique_id_configured()
                guard = await async_get_lockout_guard(self.hass)
                placeholders = _blocked(guard, settings, errors)
                if not errors:
                    self._typed = user_input
                    return await self._async_start_login(guard, settings)
        return self._user_form(user_input or {}, errors, placeholders)

    def _create_entry(self, settings: LineSettings) -> ConfigFlowResult:
        """The entry of a line whose login test registered."""
        options: dict[str, Any] = {}
        if settings.proxy_host != K2_PROXY_HOST:
            options[CONF_PROXY_HOST] = settings.proxy_host
        if settings.proxy_port != K2_PROXY_PORT:
            options[CONF_PROXY_PORT] = settings.proxy_port
        return self.async_create_entry(
            title=_title(settings.number, settings.display_name),
            data={
                CONF_NUMBER: settings.number,
                CONF_USERNAME: settings.username,
                CONF_PASSWORD: settings.password,
                CONF_DISPLAY_NAME: settings.display_name,
            },
            options=options,
        )

    def _user_form(
        self, typed: Mapping[str, Any], errors: dict[str, str], placeholders: dict[str, str]
    ) -> ConfigFlowResult:
        """The account form, filled in with what was typed (never the password, K9)."""
        return _show_form(
            self,
            step_id="user",
            fields={
                probatio.Required(CONF_NUMBER): _TEL,
                probatio.Required(CONF_USERNAME): _USERNAME,
                probatio.Required(CONF_PASSWORD): _PASSWORD,
                probatio.Optional(CONF_DISPLAY_NAME): _TEXT,
                # Whether KPN's proxy name resolves everywhere is an open
                # fact: an override, folded away.
                probatio.Required(SECTION_ADVANCED): section(
                    probatio.Schema(
                        {
                            probatio.Required(CONF_PROXY_HOST, default=K2_PROXY_HOST): _TEXT,
                            probatio.Required(CONF_PROXY_PORT, default=K2_PROXY_PORT): _PORT,
                        }
                    ),
                    {"collapsed": SECTION_CALLS not in errors},
                ),
            },
            suggested=typed,  # keep what was typed
            errors=errors,
            placeholders=placeholders,
        )

    async def _async_start_login(
        self, guard: LockoutGuard, settings: LineSettings
    ) -> ConfigFlowResult:
        """Start the one login test (K8): its result, or its progress if it is slow.

        An answer within LOGIN_ANSWER_WAIT goes straight to the result (the
        entry, or the form with the error); a slower one shows progress (step
        `login`).  While KPN still blocks the account after an earlier failure,
        the test waits for the block's end before it sends the credentials (K8):
        progress at once.
        """
        self._guard = guard
        self._login_settings = settings
        self._login_form = None
        self._held_by = guard.active(settings.username)
        login = _async_login_after_block(self.hass, guard, settings)
        if self._held_by is not None:
            # A background task: Home Assistant's stop cancels a held password
            # instead of waiting for the block's end; nothing is sent then.
            task = self.hass.async_create_background_task(
                login, f"{DOMAIN} login test after the K8 block"
            )
            progress = self.hass.async_create_background_task(
                _async_shown_outcome(task), f"{DOMAIN} login test progress"
            )
        else:
            task = self.hass.async_create_task(login, f"{DOMAIN} login test")
            await asyncio.wait((task,), timeout=LOGIN_ANSWER_WAIT)  # never cancels it
            if task.done():
                self._login_task = task
                return await self.async_step_login_done()
            progress = self.hass.async_create_task(
                _async_shown_outcome(task), f"{DOMAIN} login test progress"
            )
        self._login_task = progress
        return await self.async_step_login()

    async def async_step_login(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Progress while the one login attempt waits for its outcome.

        K8: once the credentials are out, their outcome is waited for (up to
        Timer F, 32 s), not cut short by a form that times out.  Home
        Assistant calls this step again when the progress task ends (its
        `progress_task`, added even if already done): that announces the end.
        """
        task = self._login_task
        assert task is not None  # only reached through _async_start_login
        if not task.done():
            action, placeholders = "login", {"seconds": str(round(_LOGIN_WAIT))}
            if (held_by := self._held_by) is not None:
                action, placeholders = "lockout_wait", placeholders | _block_placeholders(held_by)
            return self.async_show_progress(
                step_id="login",
                progress_action=action,
                progress_task=task,
                description_placeholders=placeholders,
            )
        return self.async_show_progress_done(next_step_id="login_done")

    async def async_step_login_done(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The login test's outcome: the entry (or its new password), or the form again.

        Reached from the progress step, or straight from the form when the login
        answered within LOGIN_ANSWER_WAIT.
        """
        task, settings = self._login_task, self._login_settings
        if task is None:
            # Two configure calls can reach this step at once: Home Assistant's own,
            # made when the login task ends, and a client's (the frontend's GET of the
            # flow, a poll).  The first one took the outcome: if that was the form
            # again, show it again; if it made or updated the entry, the flow is over
            # (the flow manager ignores UnknownFlow from its own call).
            if self._login_form is not None:
                return self._login_form
            raise UnknownFlow
        assert settings is not None
        self._login_task = self._held_by = None
        errors, placeholders = task.result()
        if self.source == SOURCE_REAUTH:
            entry = self._get_reauth_entry()
            if errors:
                assert self._guard is not None  # set with the login task
                self._login_form = self._reauth_form(entry, self._guard, errors, placeholders)
                return self._login_form
            async_delete_lockout_issue(self.hass, entry)
            return self.async_update_reload_and_abort(
                entry, data_updates={CONF_PASSWORD: settings.password}
            )
        if errors:
            self._login_form = self._user_form(self._typed, errors, placeholders)
            return self._login_form
        return self._create_entry(settings)

    @staticmethod
    def _validate(user_input: dict[str, Any], errors: dict[str, str]) -> LineSettings | None:
        """The settings typed in, number (K3) and user name (K4) normalised; None with `errors`."""
        advanced = user_input.get(SECTION_ADVANCED, {})
        try:
            return LineSettings.from_user_input(
                number=user_input[CONF_NUMBER],
                username=user_input[CONF_USERNAME],
                password=user_input[CONF_PASSWORD],
                display_name=user_input.get(CONF_DISPLAY_NAME, ""),
                proxy_host=str(advanced.get(CONF_PROXY_HOST) or K2_PROXY_HOST).strip(),
                proxy_port=int(advanced.get(CONF_PROXY_PORT, K2_PROXY_PORT)),
            )
        except InvalidFieldError as err:
            if err.field in _PROXY_FIELDS:
                # The proxy fields sit in a folded section: the error goes on top.
                errors["base"] = "invalid_proxy"
            else:
                errors.update(_form_error(err, _USER_FIELDS))
            return None

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """KPN refused the stored password (K8): ask for the new one.

        Started only for a refusal of the stored password itself (auth_failed), not
        for a block met without it being judged (coordinator._k8_wait).
        """
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """One login with the new password; the old one is never retried.

        While KPN still blocks the account (K8) the form is `reauth_locked`: it
        says until when, and the new password is held until then.
        """
        entry = self._get_reauth_entry()
        guard = await async_get_lockout_guard(self.hass)
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if (
            user_input is not None
            # Only the password is on the form: any error goes on top.
            and (settings := _changed_settings(entry, user_input, errors, ())) is not None
        ):
            placeholders = _blocked(guard, settings, errors)
            if not errors:
                return await self._async_start_login(guard, settings)
        return self._reauth_form(entry, guard, errors, placeholders)

    async def async_step_reauth_locked(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The new password, asked while KPN blocks the account (K8): as reauth_confirm."""
        return await self.async_step_reauth_confirm(user_input)

    def _reauth_form(
        self,
        entry: ConfigEntry,
        guard: LockoutGuard,
        errors: dict[str, str],
        placeholders: dict[str, str],
    ) -> ConfigFlowResult:
        """The new-password form; while KPN blocks the account, it says until when (K8)."""
        step_id, placeholders = "reauth_confirm", {"line": entry.title} | placeholders
        if (record := guard.active(entry.data[CONF_USERNAME])) is not None:
            step_id, placeholders = "reauth_locked", placeholders | _block_placeholders(record)
        return _show_form(
            self,
            step_id=step_id,
            fields={probatio.Required(CONF_PASSWORD): _PASSWORD},
            suggested={},
            errors=errors,
            placeholders=placeholders,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the number or the display name; no login test, no password."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None and (
            settings := _changed_settings(entry, _reconfigured(user_input), errors, _RECONFIGURED)
        ):
            number, display_name = settings.number, settings.display_name
            if any(
                other.unique_id == number and other.entry_id != entry.entry_id
                for other in self._async_current_entries(include_ignore=False)
            ):
                return self.async_abort(reason="already_configured")
            return self.async_update_reload_and_abort(
                entry,
                unique_id=number,
                title=_title(number, display_name),
                data_updates={CONF_NUMBER: number, CONF_DISPLAY_NAME: display_name},
            )
        return _show_form(
            self,
            step_id="reconfigure",
            fields={
                probatio.Required(CONF_NUMBER): _TEL,
                probatio.Optional(CONF_DISPLAY_NAME): _TEXT,
            },
            suggested=user_input
            or {
                CONF_NUMBER: to_national(entry.data[CONF_NUMBER]),
                CONF_DISPLAY_NAME: entry.data.get(CONF_DISPLAY_NAME, ""),
            },
            errors=errors,
        )


class KpnVoipOptionsFlow(OptionsFlowWithReload):
    """Advanced options (proxy override, keep-alive, extra INVITE sources) and the calls
    section: phone book, block and allow lists (docs/calls.md)."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form with every option; the entry reloads on save."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            for key in _WHOLE_NUMBER_FIELDS:
                if float(user_input[key]) != int(user_input[key]):
                    errors[key] = "not_whole_number"
            sources = [
                source.strip()
                for source in str(user_input.get(CONF_ALLOWED_SOURCES, "")).split(",")
                if source.strip()
            ]
            options: dict[str, Any] = {
                CONF_PROXY_HOST: str(user_input[CONF_PROXY_HOST]).strip(),
                CONF_PROXY_PORT: int(user_input[CONF_PROXY_PORT]),
                CONF_KEEPALIVE: int(user_input[CONF_KEEPALIVE]),
                CONF_ALLOWED_SOURCES: sources,
            }
            _changed_settings(self.config_entry, options, errors, SETTINGS_OPTIONS)
            # The field takes IP addresses and networks (its description says so), not
            # the host names the engine would also resolve: the first other entry is named.
            if bad := next((s for s in sources if source_network(s) is None), None):
                errors[CONF_ALLOWED_SOURCES] = "invalid_allowed_sources"
                placeholders["source"] = bad
            if SECTION_CALLS in user_input:
                options |= await self._async_call_options(
                    user_input[SECTION_CALLS], errors, placeholders
                )
            if not errors:
                return self.async_create_entry(data={**self.config_entry.options, **options})
        # The options are named as the settings they override: the form shows
        # what the line uses now (the profile's values where nothing is set).
        current = {**settings_from_entry(self.config_entry).to_wire(), **(user_input or {})}
        if not isinstance(sources := current[CONF_ALLOWED_SOURCES], str):
            current[CONF_ALLOWED_SOURCES] = ", ".join(sources)
        stored = self.config_entry.options
        calls = {
            CONF_PHONE_BOOK: stored.get(CONF_PHONE_BOOK, ""),
            CONF_BLOCK: ", ".join(stored.get(CONF_BLOCK, ())),
            CONF_ALLOW: ", ".join(stored.get(CONF_ALLOW, ())),
            CONF_BLOCK_ANONYMOUS: stored.get(CONF_BLOCK_ANONYMOUS, False),
        } | {
            key: value
            for key, value in (user_input or {}).get(SECTION_CALLS, {}).items()
            if key != CONF_PHONE_BOOK_UPLOAD
        }
        return _show_form(
            self,
            step_id="init",
            fields={
                probatio.Required(CONF_PROXY_HOST): _TEXT,
                probatio.Required(CONF_PROXY_PORT): _PORT,
                probatio.Required(CONF_KEEPALIVE): _KEEPALIVE,
                probatio.Optional(CONF_ALLOWED_SOURCES): _TEXT,
                # Optional: a form posted without the folded section keeps the calls' options.
                probatio.Optional(SECTION_CALLS): section(
                    probatio.Schema(
                        {
                            probatio.Optional(CONF_PHONE_BOOK_UPLOAD): _VCARD,
                            probatio.Optional(CONF_PHONE_BOOK): _TEXT,
                            probatio.Optional(CONF_BLOCK): _LIST,
                            probatio.Optional(CONF_ALLOW): _LIST,
                            probatio.Optional(CONF_BLOCK_ANONYMOUS, default=False): (
                                BooleanSelector()
                            ),
                        }
                    ),
                    {"collapsed": SECTION_CALLS not in errors},
                ),
            },
            suggested={key: current[key] for key in SETTINGS_OPTIONS} | {SECTION_CALLS: calls},
            errors=errors,
            placeholders=placeholders,
        )

    async def _async_call_options(
        self, calls: Mapping[str, Any], errors: dict[str, str], placeholders: dict[str, str]
    ) -> dict[str, Any]:
        """The calls section as options; a refused field's error goes on the section.

        Home Assistant's frontend shows no error of a field inside a section (the
        section's form gets none), only one keyed by the section's own name, above it:
        so the first refused field's error is `errors["calls"]`, its code naming the
        field (`block_invalid_list_entry`, `allow_too_many_list_entries`, or a phone
        book code), and the form shows the section unfolded (docs/calls.md).
        """
        options: dict[str, Any] = {CONF_BLOCK_ANONYMOUS: bool(calls.get(CONF_BLOCK_ANONYMOUS))}
        for key in (CONF_BLOCK, CONF_ALLOW):
            try:
                options[key] = list(parse_entries(str(calls.get(key) or "")))
            except InvalidEntryError as err:
                if SECTION_CALLS not in errors:
                    errors[SECTION_CALLS] = f"{key}_{err.code}"
                    placeholders["position"] = str(err.position)
        try:
            if upload := calls.get(CONF_PHONE_BOOK_UPLOAD):
                options[CONF_PHONE_BOOK] = await self.hass.async_add_executor_job(
                    self._keep_upload, upload
                )
            elif name := str(calls.get(CONF_PHONE_BOOK) or "").strip():
                await self.hass.async_add_executor_job(self._check_phone_book, name)
                options[CONF_PHONE_BOOK] = name
            else:
                options[CONF_PHONE_BOOK] = None  # no phone book
        except PhoneBookError as err:
            errors.setdefault(SECTION_CALLS, err.code)
        return options

    def _check_phone_book(self, name: str) -> None:
        """A readable vCard file inside the config folder (blocking)."""
        config_dir = Path(self.hass.config.config_dir).resolve()
        path = Path(self.hass.config.path(name)).resolve()
        if not path.is_relative_to(config_dir) or not path.is_file():
            raise PhoneBookError(PHONE_BOOK_NOT_FOUND, "no such file in the config folder")
        read_phone_book(path)

    def _keep_upload(self, file_id: str) -> str:
        """Check an uploaded vCard file and keep it in the config folder (blocking)."""
        try:
            with process_uploaded_file(self.hass, file_id) as uploaded:
                read_phone_book(uploaded)
                data = uploaded.read_bytes()
        except ValueError as err:  # PhoneBookError is one; the upload may be gone
            if isinstance(err, PhoneBookError):
                raise
            raise PhoneBookError(PHONE_BOOK_NOT_FOUND, "the upload is gone") from err
        name = PHONE_BOOK_UPLOAD_PATH.format(entry_id=self.config_entry.entry_id)
        target = Path(self.hass.config.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return name
