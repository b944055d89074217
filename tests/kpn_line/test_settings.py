"""Tests for kpn_line.settings: user name (K4), LineSettings and its wire form (K9)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from custom_components.kpn_voip.kpn_line import numbers, settings as settings_module
from custom_components.kpn_voip.kpn_line.errors import InvalidFieldError
from custom_components.kpn_voip.kpn_line.numbers import InvalidNumberError
from custom_components.kpn_voip.kpn_line.profile import (
    K1_DOMAIN,
    K2_PROXY_HOST,
    K2_PROXY_PORT,
    K6_DISPLAY_NAME_MAX_LENGTH,
    K9_REDACTED,
    K10_KEEPALIVE_SECONDS,
    K21_REGISTER_EXPIRES,
)
from custom_components.kpn_voip.kpn_line.settings import (
    InvalidUsernameError,
    LineSettings,
    normalize_username,
)

from .conftest import refused

PASSWORD = 's3cr3t-P@ss:w0rd "quoted"'  # characters that tempt escaping bugs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12345678", "12345678@ims.imscore.net"),
        ("  12345678 ", "12345678@ims.imscore.net"),
        ("12345678@ims.imscore.net", "12345678@ims.imscore.net"),
        ("12345678@IMS.IMSCORE.NET", "12345678@ims.imscore.net"),
        ("12345678@ims.imscore.net.", "12345678@ims.imscore.net"),
        ("sip:12345678@ims.imscore.net", "12345678@ims.imscore.net"),
        ("SIP:12345678", "12345678@ims.imscore.net"),
        ("+31201234567", "+31201234567@ims.imscore.net"),
        ("AbC-12_x.y", "AbC-12_x.y@ims.imscore.net"),  # the user part keeps its case
    ],
)
def test_username_is_completed(text: str, expected: str) -> None:
    """K4: the part before @ is enough; the full form is accepted as is."""
    assert normalize_username(text) == expected
    assert normalize_username(expected) == expected


def test_username_with_another_domain_argument() -> None:
    """The domain to complete with is a parameter (advanced settings)."""
    assert normalize_username("1234", "Example.NET") == "1234@example.net"
    assert normalize_username("1234@example.net", "example.net") == "1234@example.net"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", settings_module.INVALID_USERNAME),
        ("   ", settings_module.INVALID_USERNAME),
        ("@ims.imscore.net", settings_module.INVALID_USERNAME),
        ("sip:", settings_module.INVALID_USERNAME),
        ("1234 5678", settings_module.INVALID_USERNAME),
        ("1234\t5678", settings_module.INVALID_USERNAME),
        ("1234\r\nVia: x", settings_module.INVALID_USERNAME),
        ("jan<script>", settings_module.INVALID_USERNAME),
        ('"12345678"', settings_module.INVALID_USERNAME),
        ("12345678:password", settings_module.INVALID_USERNAME),
        ("jäger", settings_module.INVALID_USERNAME),
        ("x" * (settings_module.USERNAME_MAX_LENGTH + 1), settings_module.INVALID_USERNAME),
        ("12345678@kpn.com", settings_module.WRONG_DOMAIN),
        ("12345678@", settings_module.WRONG_DOMAIN),
        ("12345678@ims.imscore.net@x", settings_module.WRONG_DOMAIN),
        ("12345678@imscore.net", settings_module.WRONG_DOMAIN),
    ],
)
def test_bad_usernames_are_refused(text: str, code: str) -> None:
    """K4 / K1: anything that cannot be KPN's user name is refused with a code."""
    err = refused(
        lambda: normalize_username(text),
        InvalidUsernameError,
        code,
        settings_module.USERNAME_ERROR_CODES,
    )
    assert isinstance(err, ValueError)


def test_username_error_never_repeats_the_input() -> None:
    """K9: user names are redacted in diagnostics, so not echoed in errors either."""
    for text in ("secret user", "secretuser@evil.example"):
        with pytest.raises(InvalidUsernameError) as caught:
            normalize_username(text)
        assert "secret" not in str(caught.value)


def _settings(**overrides: Any) -> LineSettings:
    values: dict[str, Any] = {
        "number": "+31201234567",
        "username": "12345678@ims.imscore.net",
        "password": PASSWORD,
    }
    values.update(overrides)
    return LineSettings(**values)


def test_defaults_come_from_the_profile() -> None:
    """K1, K2, K10, K21 are the defaults."""
    line = _settings()
    assert line.domain == K1_DOMAIN
    assert line.proxy_host == K2_PROXY_HOST
    assert line.proxy_port == K2_PROXY_PORT
    assert line.keepalive_interval == K10_KEEPALIVE_SECONDS
    assert line.register_expires == K21_REGISTER_EXPIRES
    assert line.local_port == 0
    assert line.display_name == ""
    assert line.allowed_sources == ()


def test_aor() -> None:
    """The address of record is the E.164 number at the domain (K1, K3)."""
    assert _settings().aor == "sip:+31201234567@ims.imscore.net"


def test_from_user_input_normalises() -> None:
    """K3 and K4 as typed in the config flow; the password stays exactly as typed."""
    line = LineSettings.from_user_input(
        number="020 123 4567",
        username="12345678",
        password=" pw with spaces ",
        display_name="  Home  ",
        proxy_host="127.0.0.1",
        proxy_port=5070,
    )
    assert line.number == "+31201234567"
    assert line.username == "12345678@ims.imscore.net"
    assert line.password == " pw with spaces "
    assert line.display_name == "Home"
    assert line.proxy_host == "127.0.0.1"
    assert line.proxy_port == 5070


def test_from_user_input_completes_with_an_overridden_domain() -> None:
    """The user name is completed with the domain actually used."""
    line = LineSettings.from_user_input(
        number="0201234567", username="1234", password="x", domain="Test.Example"
    )
    assert line.username == "1234@test.example"
    assert line.domain == "test.example"
    assert line.aor == "sip:+31201234567@test.example"


def test_from_user_input_raises_coded_errors() -> None:
    """The config flow maps codes to translated messages, naming the field."""
    with pytest.raises(InvalidNumberError) as number_error:
        LineSettings.from_user_input(number="06 12345678", username="1", password="x")
    assert number_error.value.code == "mobile_number"
    assert str(number_error.value).startswith("number: ")
    with pytest.raises(InvalidUsernameError) as user_error:
        LineSettings.from_user_input(number="0201234567", username="a@b.c", password="x")
    assert user_error.value.code == "wrong_domain"
    assert str(user_error.value).startswith("username: ")
    assert (number_error.value.field, user_error.value.field) == ("number", "username")
    with pytest.raises(TypeError):
        LineSettings.from_user_input(  # type: ignore[call-arg]
            number="0201234567", username="1", password="x", no_such_option=1
        )


def test_frozen_and_replace_validates() -> None:
    """Settings cannot change in place; replace() goes through validation."""
    line = _settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        line.proxy_port = 1  # type: ignore[misc]
    assert dataclasses.replace(line, proxy_port=5080).proxy_port == 5080
    with pytest.raises(ValueError, match=r"^proxy_port: "):
        dataclasses.replace(line, proxy_port=0)


def test_password_never_in_repr_or_str() -> None:
    """K9: repr and str (what a log line or traceback shows) hide the password."""
    line = _settings(display_name="Home")
    for text in (repr(line), str(line), f"{line}", f"{line!r}", repr([line]), repr({1: line})):
        assert PASSWORD not in text
        assert "s3cr3t" not in text
        assert "password" not in text
    assert "+31201234567" in repr(line)  # the rest is still there to debug with


def test_redacted_hides_number_username_password() -> None:
    """K9: diagnostics redact user name, number and password."""
    line = _settings(display_name="Home", allowed_sources=("10.0.0.1",))
    redacted = line.redacted()
    assert redacted["password"] == K9_REDACTED
    assert redacted["username"] == K9_REDACTED
    assert redacted["number"] == K9_REDACTED
    assert redacted["display_name"] == "Home"
    assert redacted["proxy_host"] == K2_PROXY_HOST
    assert redacted["allowed_sources"] == ["10.0.0.1"]
    text = json.dumps(redacted)
    for secret in ("s3cr3t", "12345678", "201234567"):
        assert secret not in text
    assert set(redacted) == set(line.to_wire())


def test_wire_round_trip_through_json() -> None:
    """to_wire is JSON; from_wire gives the same settings back."""
    line = _settings(
        display_name="Thuis ☎",
        proxy_host="::1",
        proxy_port=5062,
        local_port=5099,
        keepalive_interval=0,
        register_expires=600,
        allowed_sources=("127.0.0.2", "10.0.0.0/8", "[::1]", "proxy.example"),
    )
    wire = line.to_wire()
    assert wire == {
        "number": "+31201234567",
        "username": "12345678@ims.imscore.net",
        "password": PASSWORD,
        "display_name": "Thuis ☎",
        "domain": "ims.imscore.net",
        "proxy_host": "::1",
        "proxy_port": 5062,
        "local_port": 5099,
        "keepalive_interval": 0,
        "register_expires": 600,
        "allowed_sources": ["127.0.0.2", "10.0.0.0/8", "[::1]", "proxy.example"],
    }
    again = LineSettings.from_wire(json.loads(json.dumps(wire)))
    assert again == line
    assert again.allowed_sources == line.allowed_sources
    assert isinstance(again.allowed_sources, tuple)


def test_from_wire_defaults_and_normalises() -> None:
    """Only number, username and password are required; they are normalised."""
    line = LineSettings.from_wire({"number": "0201234567", "username": "1", "password": "p"})
    assert line == LineSettings(number="+31201234567", username="1@ims.imscore.net", password="p")


@pytest.mark.parametrize("missing", ["number", "username", "password"])
def test_from_wire_missing_field(missing: str) -> None:
    """A missing required field is named."""
    wire = _settings().to_wire()
    del wire[missing]
    with pytest.raises(ValueError, match=f"^{missing}: missing"):
        LineSettings.from_wire(wire)


def test_from_wire_refuses_unknown_fields_and_non_objects() -> None:
    """Unknown fields are a bug on the other side: say so."""
    wire = _settings().to_wire()
    wire["stun_server"] = "x"
    with pytest.raises(ValueError, match="unknown field 'stun_server'"):
        LineSettings.from_wire(wire)
    for bad in ([], "settings", None, 5):
        with pytest.raises(ValueError, match=r"^settings: must be an object"):
            LineSettings.from_wire(bad)  # type: ignore[arg-type]


BAD_FIELDS: list[tuple[str, object]] = [
    ("number", 31201234567),
    ("number", None),
    ("number", "12"),
    ("username", 12345678),
    ("username", "a b"),
    ("password", ""),
    ("password", None),
    ("password", b"bytes"),
    ("display_name", None),
    ("display_name", "x" * (K6_DISPLAY_NAME_MAX_LENGTH + 1)),
    ("display_name", "Home\r\nVia: evil"),
    ("display_name", 'Say "hi"'),
    ("display_name", "back\\slash"),
    ("display_name", "tab\there"),
    ("domain", ""),
    ("domain", "bad domain"),
    ("domain", "-bad.example"),
    ("domain", 5),
    ("domain", "x" * 254),
    ("proxy_host", ""),
    ("proxy_host", "proxy one"),
    ("proxy_host", "host:5060"),
    ("proxy_host", "[not-ip]"),
    ("proxy_host", "a..b"),
    ("proxy_host", "300.1.1.1"),  # no address, and no name ends in a number (RFC 1123)
    ("proxy_host", "x" * 254),
    ("proxy_host", None),
    ("proxy_port", 0),
    ("proxy_port", 65536),
    ("proxy_port", -1),
    ("proxy_port", "5060"),
    ("proxy_port", 5060.0),
    ("proxy_port", True),
    ("proxy_port", None),
    ("local_port", -1),
    ("local_port", 65536),
    ("local_port", "0"),
    ("local_port", False),
    ("keepalive_interval", -1),
    ("keepalive_interval", 3601),
    ("keepalive_interval", 1.5),
    ("register_expires", 59),
    ("register_expires", 86401),
    ("register_expires", "3600"),
    ("allowed_sources", "127.0.0.1"),  # a string is not a list of strings
    ("allowed_sources", None),
    ("allowed_sources", {"127.0.0.1"}),
    ("allowed_sources", ["127.0.0.1", 5]),
    ("allowed_sources", ["not an address"]),
    ("allowed_sources", ["10.0.0.0/33"]),
    ("allowed_sources", ["300.1.1.1"]),
    ("allowed_sources", ["192.0.2.0/24", "10.0.0.256"]),
    ("allowed_sources", [""]),
]


@pytest.mark.parametrize(("name", "value"), BAD_FIELDS)
def test_bad_field_is_named_never_echoed(name: str, value: object) -> None:
    """ValueError names the field; neither the value nor the password shows.

    Among them: an empty password (K5) and a display name above K6's length."""
    wire = _settings().to_wire()
    wire[name] = value
    with pytest.raises(ValueError, match=f"^{name}: ") as caught:
        LineSettings.from_wire(wire)
    message = str(caught.value)
    assert "s3cr3t" not in message
    if isinstance(value, str) and len(value) > 3:
        assert value not in message
    with pytest.raises(ValueError, match=f"^{name}: "):
        _settings(**{name: value})


@pytest.mark.parametrize(("name", "value"), BAD_FIELDS)
def test_bad_field_error_carries_field_and_code(name: str, value: object) -> None:
    """The error says which field and why as data: the config flow reads no message."""
    with pytest.raises(InvalidFieldError) as caught:
        _settings(**{name: value})
    assert caught.value.field == name
    assert str(caught.value) == caught.value.message
    if name in ("number", "username"):
        codes = {*numbers.ERROR_CODES, *settings_module.USERNAME_ERROR_CODES}
        assert caught.value.code in {*codes, settings_module.INVALID_VALUE}
    elif name == "display_name" and isinstance(value, str):
        # Its own code: the form says what to change (length, characters).
        assert caught.value.code == settings_module.INVALID_DISPLAY_NAME
    else:
        assert caught.value.code == settings_module.INVALID_VALUE


def test_from_wire_errors_carry_their_field() -> None:
    """A missing field is that field; an unknown one or a non-object is "settings"."""
    wire = _settings().to_wire()
    del wire["password"]
    with pytest.raises(InvalidFieldError) as caught:
        LineSettings.from_wire(wire)
    assert (caught.value.field, caught.value.code) == ("password", settings_module.INVALID_VALUE)
    with pytest.raises(InvalidFieldError) as caught:
        LineSettings.from_wire({**_settings().to_wire(), "stun_server": "x"})
    assert caught.value.field == "settings"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("proxy_port", 1),
        ("proxy_port", 65535),
        ("local_port", 0),
        ("local_port", 65535),
        ("keepalive_interval", 0),
        ("keepalive_interval", 3600),
        ("register_expires", 60),
        ("register_expires", 86400),
        ("proxy_host", "127.0.0.1"),
        ("proxy_host", "voip1-ext.kpn.net."),
        ("proxy_host", "[2001:db8::1]"),
        ("proxy_host", "2001:db8::1"),
        ("proxy_host", "localhost"),
        ("display_name", "x" * K6_DISPLAY_NAME_MAX_LENGTH),
        ("display_name", "Familie de Vries-Ün"),
        ("allowed_sources", []),
        ("allowed_sources", ("192.0.2.0/24", "2001:db8::/32", "sbc.example")),
    ],
)
def test_edge_values_are_accepted(name: str, value: object) -> None:
    """The limits themselves are valid."""
    line = _settings(**{name: value})
    assert LineSettings.from_wire(line.to_wire()) == line


def test_password_is_not_in_any_error_even_when_everything_is_wrong() -> None:
    """K9: a failing validation never shows the password, nor do the locals of
    the settings module's frames that a traceback with locals would print."""
    for name, value in BAD_FIELDS:
        with pytest.raises(ValueError) as caught:
            _settings(**{name: value})
        assert "s3cr3t" not in str(caught.value)
        assert "s3cr3t" not in repr(caught.value)
        assert caught.value.__cause__ is None
        frames = [
            entry.frame
            for entry in caught.traceback
            if Path(entry.frame.code.path).name == "settings.py"
        ]
        assert frames
        for frame in frames:
            for local in frame.f_locals.values():
                assert "s3cr3t" not in repr(local)
