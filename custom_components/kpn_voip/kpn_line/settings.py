"""The settings of one KPN line (K1-K6, K10, K21) and their validation.

`LineSettings` is what the integration stores and what the engine's `start`
command carries (`to_wire` / `from_wire`).  Every way to build one validates
it, and no error message, repr or str ever shows the password (K9).  Every
error is an InvalidFieldError that carries the field's name and a code to
translate; its message names the field, never its value: user name and
number are redacted in diagnostics too (K9).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
import ipaddress
import re
from typing import Any, Final, Self

from .errors import InvalidFieldError
from .numbers import InvalidNumberError, normalize_own_number
from .profile import (
    K1_DOMAIN,
    K2_PROXY_HOST,
    K2_PROXY_PORT,
    K5_PASSWORD_MIN_LENGTH,
    K6_DISPLAY_NAME_MAX_LENGTH,
    K9_REDACTED,
    K10_KEEPALIVE_SECONDS,
    K21_REGISTER_EXPIRES,
)

# Error codes (InvalidFieldError.code); HA translates them.
INVALID_USERNAME: Final = "invalid_username"
WRONG_DOMAIN: Final = "wrong_domain"
USERNAME_ERROR_CODES: Final = (INVALID_USERNAME, WRONG_DOMAIN)
INVALID_DISPLAY_NAME: Final = "invalid_display_name"  # too long, or a character refused
INVALID_VALUE: Final = "invalid_value"  # any other field LineSettings refuses

PORT_MAX: Final = 65535
KEEPALIVE_MAX: Final = 3600
REGISTER_EXPIRES_MIN: Final = 60
REGISTER_EXPIRES_MAX: Final = 86400
USERNAME_MAX_LENGTH: Final = 128
HOST_MAX_LENGTH: Final = 253

# RFC 3261 user part: unreserved, escaped and user-unreserved characters.
_USER = re.compile(r"[A-Za-z0-9\-_.!~*'()%&=+$,;?/]+")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_SIP_SCHEME = "sip:"


class InvalidUsernameError(InvalidFieldError):
    """A SIP user name that cannot be used; ``code`` says why (USERNAME_ERROR_CODES)."""

    def __init__(self, code: str, message: str) -> None:
        """Store the code; the message never contains the input (K9)."""
        super().__init__("username", code, message)


class InvalidSettingError(InvalidFieldError):
    """Any other field LineSettings refuses; ``code`` is INVALID_VALUE.

    str() is ``"<field>: <why>"``, e.g. ``"proxy_port: must be between 1 and 65535"``.
    """

    def __init__(self, field: str, why: str) -> None:
        """Name the field and say why; never the value (K9)."""
        super().__init__(field, INVALID_VALUE, f"{field}: {why}")


def normalize_username(text: str, domain: str = K1_DOMAIN) -> str:
    """The full SIP user name (K4): ``"12345678"`` -> ``"12345678@ims.imscore.net"``.

    The full form is accepted too (``sip:`` in front is dropped, the domain is
    compared without regard to case); a user name at another domain is
    refused, since KPN's registrar knows only its own (K1).
    """
    text = text.strip()
    if text[: len(_SIP_SCHEME)].lower() == _SIP_SCHEME:
        text = text[len(_SIP_SCHEME) :]
    user, at, user_domain = text.partition("@")
    if at and user_domain.lower().rstrip(".") != domain.lower():
        raise InvalidUsernameError(
            WRONG_DOMAIN, f"The user name must end in @{domain}, or leave out the part from @."
        )
    if not user or len(user) > USERNAME_MAX_LENGTH or not _USER.fullmatch(user):
        raise InvalidUsernameError(
            INVALID_USERNAME,
            "Enter the SIP user name from KPN's servicetool, like 12345678@" + domain + ".",
        )
    return f"{user}@{domain.lower()}"


def _is_host(text: str) -> bool:
    if not text or len(text) > HOST_MAX_LENGTH:
        return False
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        # A name's last label is never all digits (RFC 1123 §2.1, RFC 3696 §2):
        # a would-be address such as 300.1.1.1 is neither an address nor a name.
        return (
            bare == text
            and _HOSTNAME.fullmatch(text) is not None
            and not text.rstrip(".").rpartition(".")[2].isdigit()
        )
    return True


def source_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """An `allowed_sources` entry as a network; None if it is no IP address or network.

    An address is a network of one (`192.0.2.7` is 192.0.2.7/32); a network is
    in CIDR form, host bits allowed (`10.0.0.1/8` is 10.0.0.0/8), as the engine
    takes it (addresses.AllowedSources).
    """
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _is_source(text: str) -> bool:
    return source_network(text) is not None or _is_host(text)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    # bool is an int in Python, but True is no port.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidSettingError(name, "must be a whole number")
    if not low <= value <= high:
        raise InvalidSettingError(name, f"must be between {low} and {high}")


def _check_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidSettingError(name, "must be text")
    return value


@dataclass(frozen=True, kw_only=True)
class LineSettings:
    """One KPN line.  Building one validates and normalises every field."""

    number: str
    username: str
    password: str = field(repr=False)  # K9
    display_name: str = ""
    domain: str = K1_DOMAIN
    proxy_host: str = K2_PROXY_HOST
    proxy_port: int = K2_PROXY_PORT
    local_port: int = 0  # 0: any free port
    keepalive_interval: int = K10_KEEPALIVE_SECONDS  # 0: no CRLF keep-alive (K10)
    register_expires: int = K21_REGISTER_EXPIRES
    allowed_sources: tuple[str, ...] = ()  # extra INVITE sources besides the proxy

    def __post_init__(self) -> None:
        """Validate every field; normalise number and user name (K3, K4).

        Raises InvalidFieldError for the first field it refuses (field, code).
        """
        domain = _check_str("domain", self.domain).strip().lower().rstrip(".")
        if not _HOSTNAME.fullmatch(domain) or len(domain) > HOST_MAX_LENGTH:
            raise InvalidSettingError("domain", "not a valid domain name")
        object.__setattr__(self, "domain", domain)
        try:
            number = normalize_own_number(_check_str("number", self.number))
        except InvalidNumberError as err:
            raise InvalidNumberError(err.code, f"number: {err.message}") from None
        object.__setattr__(self, "number", number)
        try:
            username = normalize_username(_check_str("username", self.username), domain)
        except InvalidUsernameError as err:
            raise InvalidUsernameError(err.code, f"username: {err.message}") from None
        object.__setattr__(self, "username", username)
        if len(_check_str("password", self.password)) < K5_PASSWORD_MIN_LENGTH:
            raise InvalidSettingError("password", "must not be empty")
        name = _check_str("display_name", self.display_name)
        # It goes into the From header: no line breaks (header injection), and
        # no quote or backslash, so it can be quoted without escaping.  Its own
        # code: "This value is not valid." did not say what to change.
        if len(name) > K6_DISPLAY_NAME_MAX_LENGTH:
            raise InvalidFieldError(
                "display_name",
                INVALID_DISPLAY_NAME,
                f"display_name: must be at most {K6_DISPLAY_NAME_MAX_LENGTH} characters",
            )
        if any(not c.isprintable() or c in '"\\' for c in name):
            raise InvalidFieldError(
                "display_name",
                INVALID_DISPLAY_NAME,
                "display_name: must not contain control characters, quotes or \\",
            )
        if not _is_host(_check_str("proxy_host", self.proxy_host)):
            raise InvalidSettingError("proxy_host", "not a host name or IP address")
        _check_int("proxy_port", self.proxy_port, 1, PORT_MAX)
        _check_int("local_port", self.local_port, 0, PORT_MAX)
        _check_int("keepalive_interval", self.keepalive_interval, 0, KEEPALIVE_MAX)
        _check_int(
            "register_expires", self.register_expires, REGISTER_EXPIRES_MIN, REGISTER_EXPIRES_MAX
        )
        sources: object = self.allowed_sources  # a list when it comes from JSON
        if isinstance(sources, str) or not isinstance(sources, (tuple, list)):
            raise InvalidSettingError("allowed_sources", "must be a list of addresses")
        for source in sources:
            if not isinstance(source, str) or not _is_source(source):
                raise InvalidSettingError(
                    "allowed_sources", "not an IP address, network or host name"
                )
        object.__setattr__(self, "allowed_sources", tuple(sources))

    @classmethod
    def from_user_input(
        cls,
        *,
        number: str,
        username: str,
        password: str,
        display_name: str = "",
        **overrides: Any,
    ) -> Self:
        """Settings from what a user typed (config flow, CLI).

        Raises InvalidFieldError (InvalidNumberError, InvalidUsernameError or
        InvalidSettingError) with the ``field`` and a ``code``.  The password is
        taken exactly as typed.
        """
        return cls(
            number=number,
            username=username,
            password=password,
            display_name=display_name.strip(),
            **overrides,
        )

    def to_wire(self) -> dict[str, Any]:
        """The ``settings`` object of the engine's ``start`` command (JSON types only)."""
        wire = {f.name: getattr(self, f.name) for f in fields(self)}
        wire["allowed_sources"] = list(self.allowed_sources)
        return wire

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Self:
        """The inverse of `to_wire`; InvalidFieldError naming the field on bad data."""
        if not isinstance(data, dict):
            raise InvalidSettingError("settings", "must be an object")
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise InvalidSettingError("settings", f"unknown field {str(key)[:40]!r}")
        for key in ("number", "username", "password"):
            if key not in data:
                raise InvalidSettingError(key, "missing")
        return cls(**data)

    @property
    def aor(self) -> str:
        """The line's address of record: ``sip:+31201234567@ims.imscore.net``."""
        return f"{_SIP_SCHEME}{self.number}@{self.domain}"

    def redacted(self) -> dict[str, Any]:
        """`to_wire` with number, user name and password hidden, for diagnostics (K9)."""
        wire = self.to_wire()
        for key in ("number", "username", "password"):
            wire[key] = K9_REDACTED
        return wire
