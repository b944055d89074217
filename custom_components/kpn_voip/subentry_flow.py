"""The call targets of a line: config subentries, one notify entity each (notify.py)."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigSubentryFlow, SubentryFlowResult
import probatio

from .const import CONF_NUMBER
from .kpn_line.numbers import NUMBER_TOO_LONG, InvalidNumberError, dial_string

CONF_NAME = "name"


class CallTargetSubentryFlow(ConfigSubentryFlow):
    """Add a number the line can call with a spoken message (notify.send_message)."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """A name and a number; the number is checked as the engine will dial it (K25)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                dial_string(user_input[CONF_NUMBER])
            except InvalidNumberError as err:
                errors[CONF_NUMBER] = (
                    "number_too_long" if err.code == NUMBER_TOO_LONG else "invalid_number"
                )
            else:
                return self.async_create_entry(
                    title=user_input[CONF_NAME].strip() or user_input[CONF_NUMBER],
                    data={CONF_NUMBER: user_input[CONF_NUMBER].strip()},
                )
        schema = probatio.Schema(
            {probatio.Required(CONF_NAME): str, probatio.Required(CONF_NUMBER): str}
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or {}),
            errors=errors,
        )
