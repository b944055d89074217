"""Errors about one input field: which field, and a code Home Assistant translates.

Raised by the number checks (`numbers`) and by `LineSettings` (`settings`),
caught by whoever shows them: the config flow puts `code` on the form field
named `field`, the command-line tool prints the message.  A message names
the field at most, never its value: a password pasted into the wrong field
must not reach a log (K9).
"""

from __future__ import annotations


class InvalidFieldError(ValueError):
    """One field that cannot be used.

    `field`: the field's name (a LineSettings field name, "settings" for the
    whole object); `code`: a stable error code, translated by Home Assistant
    (en + nl); `message`: English for logs and the command-line tool, the same
    as str().  A ValueError, so callers that only know that still catch it.
    """

    def __init__(self, field: str, code: str, message: str) -> None:
        """Store field, code and message; the message never contains the input (K9)."""
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message
