"""The RFC 3326 `Reason` header of a BYE or CANCEL: why a call ended.

`Reason: SIP ;cause=200 ;text="Call completed elsewhere"` (a forked call answered
by another device), `Reason: Q.850;cause=16;text="Normal call clearing"`.

* In: pure functions on the message text pjsip received (`parse_reason`); anything
  malformed gives None, never an error (the header comes from the network).
* Out: the causes the line puts in its own BYE, CANCEL or final response when it
  ends a call itself (`reason_value`; RFC 6432 allows Q.850 in a response): Q.850
  cause values (ITU-T Q.850; SIP counterparts as in RFC 3398), and SIP 488 for a
  call without media.
"""

from __future__ import annotations

import re
from typing import Final

from .protocol import EndReason

_HEADER: Final = re.compile(r"^reason[ \t]*:(.*)$", re.IGNORECASE)
# one reason-value: protocol *(SEMI param); a param value is a token or a quoted-string
_PARAM: Final = re.compile(
    r'\s*;\s*([A-Za-z0-9.!%*_+`\'~-]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^;,\s]+))?\s*'
)
_VALUE: Final = re.compile(
    r"\s*([A-Za-z0-9.!%*_+`\'~-]+)((?:\s*;\s*[A-Za-z0-9.!%*_+`\'~-]+"
    r'(?:\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^;,\s]+))?)*)\s*(?:,|$)'
)
MAX_TEXT: Final = 200  # characters of `text` kept (it ends up in an HA event)

# Why the line ends a call itself (Q.850 cause values, ITU-T Q.850 Table 1).
NORMAL_CLEARING: Final = EndReason("Q.850", 16, "Normal call clearing")  # hang-up, max length
NO_USER_RESPONDING: Final = EndReason("Q.850", 18, "No user responding")  # never alerted
NO_ANSWER: Final = EndReason("Q.850", 19, "No answer from user (user alerted)")  # ring limit
CALL_REJECTED: Final = EndReason("Q.850", 21, "Call rejected")  # a ringing call declined
TEMPORARY_FAILURE: Final = EndReason("Q.850", 41, "Temporary failure")  # answering failed
# A call whose audio failed: what pjsua's own BYE says for an answer without a common
# codec (SIP 488, RFC 3261 §21.4.26), so both kinds of media failure read the same.
NO_MEDIA_SESSION: Final = EndReason("SIP", 488, "Unable to create media session")


def _header_values(message: str) -> list[str]:
    """The values of every Reason header line in the head of `message` (folded lines joined)."""
    head = re.split(r"\r?\n\r?\n", message, maxsplit=1)[0]
    unfolded = re.sub(r"\r?\n[ \t]+", " ", head)
    values = []
    for line in unfolded.splitlines()[1:]:  # the first line is the request line
        if match := _HEADER.match(line):
            values.append(match.group(1))
    return values


def parse_reason_value(value: str) -> list[EndReason]:
    """Every reason-value of one `Reason` header value (RFC 3326 §2, comma separated).

    Garbage ends the parse: the values read so far are returned.
    """
    reasons: list[EndReason] = []
    pos = 0
    value = value.strip()
    while pos < len(value):
        match = _VALUE.match(value, pos)
        if match is None:
            break
        pos = match.end()
        params: dict[str, str] = {}
        for param in _PARAM.finditer(match.group(2)):
            params.setdefault(param.group(1).lower(), param.group(2) or "")
        protocol = match.group(1)
        if protocol.upper() in ("SIP", "Q.850"):
            protocol = protocol.upper()
        raw_cause = params.get("cause", "")
        cause = int(raw_cause) if raw_cause.isdigit() and len(raw_cause) <= 5 else None
        text = params.get("text")
        if text is not None:
            if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
                text = re.sub(r"\\(.)", r"\1", text[1:-1])
            text = "".join(ch for ch in text if ch.isprintable())[:MAX_TEXT] or None
        reasons.append(EndReason(protocol=protocol, cause=cause, text=text))
    return reasons


def parse_reason(message: str) -> EndReason | None:
    """The far end's reason in a received BYE/CANCEL (`message`: the whole SIP text).

    RFC 3326 allows one reason-value per protocol; the SIP one is preferred (it says
    "answered elsewhere"), else the first (often Q.850 from a PSTN gateway).  None
    when there is no Reason header or none of it parses.
    """
    reasons = [r for value in _header_values(message) for r in parse_reason_value(value)]
    for reason in reasons:
        if reason.protocol == "SIP":
            return reason
    return reasons[0] if reasons else None


def reason_value(reason: EndReason) -> str:
    """`reason` as the value of an RFC 3326 Reason header.

    `Q.850;cause=16;text="Normal call clearing"`; `cause` and `text` are left out when
    None; a quote or backslash in the text is escaped (RFC 3261 quoted-string).
    """
    value = reason.protocol
    if reason.cause is not None:
        value += f";cause={reason.cause}"
    if reason.text is not None:
        text = reason.text.replace("\\", "\\\\").replace('"', '\\"')
        value += f';text="{text}"'
    return value
