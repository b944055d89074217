"""The call targets of a line: config subentries, one notify entity each (notify.py)."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigSubentryFlow, SubentryFlowResult
import probatio

from .const import CONF_NUMBER, SUBENTRY_CALL_TARGET
from .kpn_line.numbers import NUMBER_TOO_LONG, InvalidNumberError, dial_string

CONF_NAME = "name"


class CallTargetSubentryFlow(ConfigSubentryFlow):
    """Add a number the line can call with a spoken message (notify.send_message)."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """A name and a number; the number is checked as the engine will dial it (K25).

        A number another target of the line already calls (as dialled: `06 1234 5678`
        is `0612345678`) or a name another target has is refused (`number_taken`,
        `name_taken`): two notify entities for one phone, or two alike names, only
        confuse.  An empty name takes the number.
        """
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            title = user_input[CONF_NAME].strip() or user_input[CONF_NUMBER].strip()
            try:
                dialled = dial_string(user_input[CONF_NUMBER])
            except InvalidNumberError as err:
                errors[CONF_NUMBER] = (
                    "number_too_long" if err.code == NUMBER_TOO_LONG else "invalid_number"
                )
            else:
                for other in self._get_entry().subentries.values():
                    if other.subentry_type != SUBENTRY_CALL_TARGET:
                        continue
                    if _dialled(other.data.get(CONF_NUMBER)) == dialled:
                        errors[CONF_NUMBER] = "number_taken"
                    elif other.title.casefold() == title.casefold():
                        errors[CONF_NAME] = "name_taken"
                    else:
                        continue
                    placeholders["target"] = other.title
                    break
                else:
                    return self.async_create_entry(
                        title=title, data={CONF_NUMBER: user_input[CONF_NUMBER].strip()}
                    )
        schema = probatio.Schema(
            {probatio.Required(CONF_NAME): str, probatio.Required(CONF_NUMBER): str}
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or {}),
            errors=errors,
            description_placeholders=placeholders,
        )


def _dialled(number: object) -> str | None:
    """What the engine dials for a stored target's number; None if it cannot (K25)."""
    try:
        return dial_string(str(number))
    except InvalidNumberError:
        return None
