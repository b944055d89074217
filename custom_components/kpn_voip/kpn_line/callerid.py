"""Caller ID of an incoming call (K16), from the raw INVITE.

pjsua2 gives From as `CallInfo.remoteUri`, but P-Asserted-Identity and
Privacy only in `OnIncomingCallParam.rdata.wholeMsg`, so this parses the raw
message text.  It runs inside a pjsua2 callback, where an exception would
silently skip the rest of the callback: it never raises, whatever arrives.

Rules (K16), from RFC 3323 (privacy) and RFC 3325 (asserted identity):

* Privacy decides, From does not.  A ``Privacy`` header with ``id`` (RFC 3325
  §9.3: the asserted identity must not be passed on), ``header`` or ``user``
  (RFC 3323 §4.2: the caller asks for its identifying headers / its user-level
  identity to be withheld) makes the call anonymous: no number, no name, even
  if a P-Asserted-Identity slipped through (the caller asked for it).
  ``none``, ``session`` and ``critical`` alone hide nothing.
* Without such a Privacy value, a P-Asserted-Identity is the identity the
  network verified and may present (RFC 3325 §9.1), so it is shown, also
  when From is anonymous (``"Anonymous" <sip:anonymous@anonymous.invalid>``,
  user ``anonymous`` / ``restricted`` / ...): an anonymous From is the
  calling user agent's own, user-provided privacy (RFC 3323 §4.1), which
  covers only the From header it wrote.  Withholding the asserted identity
  takes ``Privacy: id`` (RFC 3325 §9.3), which is also what the IMS
  originating identity restriction (3GPP TS 24.607, OIR) inserts.
* The number comes from P-Asserted-Identity (several headers, or several
  comma-separated values; RFC 3325 allows one sip:/sips: and one tel: URI):
  an identity presented with a ``+number`` wins, then a ``tel:`` URI, then
  the first one; a From that is not anonymous is the fallback.
* The name is the display name of the chosen identity, else any asserted
  one's, else From's (never an anonymous From's).
* No number and no other identity at all (no From, a From without user
  part, an anonymous From and no usable asserted number) counts as
  anonymous.
"""

from __future__ import annotations

from collections.abc import Callable
import re
from typing import Final, NamedTuple
from urllib.parse import unquote

from .numbers import ANONYMOUS_WORDS, normalize_presented_number, to_national
from .profile import K26_HIDE_CALLER_ID_PREFIX
from .protocol import CallerId

MAX_HEAD_CHARS: Final = 65536  # far above any INVITE's header; bounds the work
MAX_NAME_CHARS: Final = 128
ANONYMOUS_HOST: Final = "anonymous.invalid"  # RFC 3323
PRIVACY_HIDING: Final = frozenset({"id", "header", "user"})  # RFC 3323 / 3325

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_HEADER = re.compile(r"([A-Za-z0-9!%*_+`'~.-]+)[ \t]*:(.*)", re.DOTALL)
_COMPACT_NAMES: Final = {"f": "from"}  # RFC 3261 compact form
_PAI = "p-asserted-identity"
_FROM = "from"
_PRIVACY = "privacy"
_WANTED: Final = frozenset({_PAI, _FROM, _PRIVACY, *_COMPACT_NAMES})
_PRIVACY_TOKEN_SEPARATORS = re.compile(r"[;,\s]+")
# The fast path (issue 11: the parse runs on the cold CPU of an incoming call): the
# headers parse_caller_id reads, in one scan of a header whose lines all end in CRLF
# and none of them is folded (_fast_headers), and the usual name-addr of a number
# (_fast_identity).  Anything else goes through _headers / _identity, and
# tests/kpn_line/test_callerid_fast.py proves both give the same on every variant.
_FAST_HEADER = re.compile(
    r"\r\n(p-asserted-identity|from|f|privacy)[ \t]*:([^\r]*)", re.IGNORECASE | re.ASCII
)
_FAST_ADDRESS = re.compile(
    r'(?:"([^"\\]*)"[^<]*|([^"<]*))'  # a display name: quoted without escapes, or a token
    # URI parameters hold no control character or line separator: a URI with one is no
    # number (numbers.has_line_break_or_control), which only the full parser decides.
    r"<((?:(sips?):(\+?[0-9]+)@([A-Za-z0-9.:\[\]_-]*)|(tel):(\+?[0-9]+))"
    r"(?:;[^<>\x00-\x1f\x7f-\x9f\u2028\u2029]*)?)>",
    re.IGNORECASE | re.ASCII,
)
_E164_SHORTEST: Final = 5  # "+" and four digits (numbers.E164_MIN_DIGITS)
_E164_LONGEST: Final = 16  # "+" and fifteen digits (numbers.E164_MAX_DIGITS)


class _Identity(NamedTuple):
    name: str | None
    scheme: str
    user: str | None  # None: no user part
    host: str
    number: str | None

    @property
    def explicitly_anonymous(self) -> bool:
        user = (self.user or "").strip().lower()
        return user in ANONYMOUS_WORDS or self.host.lower() == ANONYMOUS_HOST

    @property
    def named(self) -> bool:
        """A user part that names somebody without a number ("alice"), not anonymous."""
        user = self.user or ""
        return any(c.isalpha() for c in user) and not self.explicitly_anonymous


def _headers(whole_msg: str) -> list[tuple[str, str]]:
    """(lower-case name, value) of the headers parse_caller_id reads (From, its compact
    form f, P-Asserted-Identity, Privacy), in order, with folded lines joined.

    Other headers are skipped before any regular expression runs on them (an
    incoming call waits for this, issue 11), their folded lines with them.
    """
    lines = _LINE_BREAK.split(whole_msg[:MAX_HEAD_CHARS].lstrip("\r\n"))
    headers: list[tuple[str, str]] = []
    keep = False  # whether the header a folded line continues is one of ours
    for line in lines[1:]:  # the first line is the request line
        if not line:
            break  # end of the header, the body follows
        if line[0] in " \t":
            if keep:
                name, value = headers[-1]
                headers[-1] = (name, f"{value} {line.strip()}")
            continue
        keep = line.partition(":")[0].rstrip(" \t").lower() in _WANTED
        match = _HEADER.fullmatch(line) if keep else None
        if match is None:
            keep = False
            continue
        name = match.group(1).lower()
        headers.append((_COMPACT_NAMES.get(name, name), match.group(2).strip()))
    return headers


def _fast_headers(whole_msg: str) -> list[tuple[str, str]] | None:
    """What _headers gives, in one scan, for a header whose lines all end in CRLF (RFC 3261
    §7) and none of which is folded; None for any other message (then _headers reads it)."""
    head = whole_msg[:MAX_HEAD_CHARS]
    end = head.find("\r\n\r\n")
    if end < 0 or head[0] in "\r\n":
        return None  # _headers skips line breaks before the request line
    block = head[:end]
    crlf = block.count("\r\n")
    if block.count("\r") != crlf or block.count("\n") != crlf:
        return None  # a bare CR or LF ends a line for _headers
    if "\r\n " in block or "\r\n\t" in block:
        return None  # a folded line
    return [
        (_COMPACT_NAMES.get(name := raw.lower(), name), value.strip())
        for raw, value in _FAST_HEADER.findall(block)
    ]


def split_header_values(value: str) -> list[str]:
    """A header value split at commas outside quotes and angle brackets (RFC 3261 §7.3.1:
    From/P-Asserted-Identity here, Contact in registration.py), each stripped."""
    if "," not in value:  # one value (the usual case): nothing to split
        return [value.strip()] if value.strip() else []
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    angle = 0
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char == "<":
            angle += 1
        elif not quoted and char == ">" and angle:
            angle -= 1
        elif char == "," and not quoted and not angle:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _quoted(text: str) -> tuple[str, str]:
    """The unescaped content of the quoted string at the start of text, and what follows."""
    out: list[str] = []
    index = 1
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            out.append(text[index + 1])
            index += 2
            continue
        if char == '"':
            return "".join(out), text[index + 1 :]
        out.append(char)
        index += 1
    return "".join(out), ""  # unterminated: take what there is


def _clean_name(name: str | None) -> str | None:
    if name is None:
        return None
    if not name.isprintable():
        name = "".join(c if c.isprintable() else " " for c in name)
    name = " ".join(name.split())
    name = name[:MAX_NAME_CHARS]
    if not name or name.lower() in ANONYMOUS_WORDS:
        return None
    return name


def _identity(value: str) -> _Identity:
    """Parse one name-addr or addr-spec."""
    name: str | None = None
    rest = value.strip()
    if rest.startswith('"'):
        name, rest = _quoted(rest)
    if "<" in rest:
        before, _, after = rest.partition("<")
        if name is None:
            name = before
        uri = after.partition(">")[0]
    else:
        # addr-spec: parameters after ";" belong to the header (";tag=...").
        uri = rest if rest.lower().startswith(("sip:", "sips:")) else rest.partition(";")[0]
    uri = uri.strip()
    scheme, _, body = uri.partition(":")
    scheme = scheme.lower()
    user: str | None
    if scheme == "tel":
        user, host = body.partition(";")[0], ""
    elif "@" in body:
        user_part, _, host_part = body.partition("@")
        user = unquote(user_part.partition(";")[0].partition(":")[0])
        host = host_part.partition(";")[0].partition(">")[0]
    else:
        user, host = None, body.partition(";")[0]
    number = normalize_presented_number(uri) if user else None
    return _Identity(_clean_name(name), scheme, user or None, host, number)


def _fast_identity(value: str) -> _Identity | None:
    """What _identity gives for the usual name-addr of a number (an optional display name,
    then ``<sip:+31...@host;...>`` or ``<tel:+31...;...>``); None for anything else."""
    match = _FAST_ADDRESS.match(value.strip())
    if match is None:
        return None
    quoted, token, uri, sip, sip_user, host, tel, tel_user = match.groups()
    user: str = sip_user or tel_user
    if (
        user[0] == "+"
        and _E164_SHORTEST <= len(user) <= _E164_LONGEST
        and user[1] != "0"
        and not user.startswith("+310")
    ):
        number: str | None = user  # what normalize_presented_number keeps as it is
    else:
        number = normalize_presented_number(uri.strip())
    scheme = (sip or tel).lower()
    return _Identity(
        _clean_name(token if quoted is None else quoted), scheme, user, host or "", number
    )


def _any_identity(value: str) -> _Identity:
    return _fast_identity(value) or _identity(value)


def _score(identity: _Identity) -> tuple[bool, bool]:
    presented_e164 = (identity.user or "").lstrip().startswith("+")
    return presented_e164, identity.scheme == "tel"


def parse_caller_id(whole_msg: str) -> CallerId:
    """The caller ID of a raw INVITE (K16); never raises."""
    headers = _fast_headers(whole_msg)
    if headers is None:
        headers = _headers(whole_msg)
    return _caller_id(headers, _any_identity)


def _caller_id(headers: list[tuple[str, str]], identity: Callable[[str], _Identity]) -> CallerId:
    """The caller ID (K16) of an INVITE's headers (`_headers`), each address parsed by
    `identity`."""
    privacy: set[str] = set()
    asserted: list[_Identity] = []
    sender: _Identity | None = None
    for header, value in headers:
        if header == _PAI:
            asserted.extend(identity(part) for part in split_header_values(value))
        elif header == _FROM and sender is None:
            sender = identity(value)
        elif header == _PRIVACY:
            privacy.update(
                token.lower() for token in _PRIVACY_TOKEN_SEPARATORS.split(value) if token
            )

    if privacy & PRIVACY_HIDING:
        # RFC 3325 §9.3 / RFC 3323 §4.2: the caller asked for its identity to be withheld.
        return CallerId(number=None, national=None, name=None, anonymous=True)
    if sender is not None and sender.explicitly_anonymous:
        # RFC 3323 §4.1: user-provided privacy covers From only, not the asserted identity.
        sender = None

    with_number = [identity for identity in asserted if identity.number]
    chosen: _Identity | None = None
    if len(with_number) == 1:
        chosen = with_number[0]
    elif with_number:
        chosen = max(with_number, key=_score)  # max keeps the first of equals
    elif sender is not None and sender.number:
        chosen = sender
    # The name: the chosen identity's, else any asserted one's, From's last.  KPN's
    # network asserts the identity in P-Asserted-Identity; From is the caller's own say (K16).
    candidates = [i for i in (chosen, *asserted, sender) if i is not None]
    name = next((i.name for i in candidates if i.name), None)
    if chosen is None or chosen.number is None:
        # A SIP address without a number ("sip:alice@example.com") is still
        # somebody; nothing at all, "sip:host", or a number we cannot use is not.
        known = any(i.named for i in candidates)
        return CallerId(
            number=None, national=None, name=name if known else None, anonymous=not known
        )
    return CallerId(
        number=chosen.number,
        national=to_national(chosen.number),
        name=name,
        anonymous=False,
    )


def callee_id(dialled: str) -> CallerId:
    """The other party of an outgoing call, in the same forms as a caller (K16).

    ``dialled`` is a dial string (numbers.dial_string: K25, K26).  The *31*
    prefix (K26) hides our number, it is not part of theirs; the rest is
    normalised like a presented number: ``"*31*0612345678"`` -> number
    ``+31612345678``, national ``0612345678``; a short number (``112``) stays
    as it is in both.
    """
    number = dialled.removeprefix(K26_HIDE_CALLER_ID_PREFIX)
    number = normalize_presented_number(number) or number
    return CallerId(number=number, national=to_national(number), name=None, anonymous=False)
