"""K9: nothing secret in the engine's log.

`Redactor` removes the SIP password (in every form it could be printed) and
digest responses from log text; `PjLogWriter` sends pjsip's own log through
it to stderr.  The stdio logger uses the same Redactor.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from typing import Any, Final

import pjsua2 as pj

_RESPONSE_PARAM: Final = re.compile(r'(response\s*=\s*)"[^"]*"', re.IGNORECASE)


class Redactor:
    """Removes secrets from log text (K9)."""

    def __init__(self) -> None:
        """No secret known yet."""
        self._secrets: list[str] = []

    def add(self, secret: str) -> None:
        """Never show `secret` (and its URL-escaped form) again."""
        from urllib.parse import quote

        forms = {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}
        # A new list, set at once: the reader thread redacts its refusals meanwhile.
        self._secrets = sorted({*self._secrets, *filter(None, forms)}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """`text` without any known secret and without digest responses."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "**REDACTED**")
        if "esponse" in text:
            text = _RESPONSE_PARAM.sub(r'\1"**REDACTED**"', text)
        return text


class PjLogWriter(pj.LogWriter):  # type: ignore[misc]
    """pjsip's log, through the redactor, to our logger (stderr) (K9)."""

    def __init__(self, redact: Redactor) -> None:
        """Keep the redactor."""
        super().__init__()
        self._redact = redact

    def write(self, entry: Any) -> None:
        """One pjsip log entry."""
        with contextlib.suppress(Exception):
            msg = self._redact(str(entry.msg).rstrip("\n"))
            sys.stderr.write(f"pjsip[{entry.level}] {msg}\n")
            sys.stderr.flush()
