"""The K8 lockout rule: one fingerprint, one window, one "minutes left" (pure)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
import subprocess
import sys

import pytest

from custom_components.kpn_voip.kpn_line.lockout import (
    FINGERPRINT_HEX_DIGITS,
    credential_fingerprint,
    lockout_until,
    minutes_left,
)
from custom_components.kpn_voip.kpn_line.profile import K8_LOCKOUT_SECONDS

PACKAGE_PARENT = Path(__file__).resolve().parents[2] / "custom_components" / "kpn_voip"
T0 = 1_800_000_000.0


def test_fingerprint_keeps_the_stored_format() -> None:
    """Records Home Assistant stored before this module existed still match (K8).

    The literal was computed by the integration's earlier own function:
    hmac.new(username, password, sha256).hexdigest()[:32].
    """
    assert (
        credential_fingerprint("12345678@ims.imscore.net", "wrong-password-1")
        == "df6dddbe8eef89b1cdedf2eca7166f7a"
    )


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("12345678@ims.imscore.net", "correct-horse-battery"),
        ("1@ims.imscore.net", ""),
        ("1@ims.imscore.net", " spaces and ünïcode "),
        ("u" * 200 + "@ims.imscore.net", "a key longer than SHA-256's block"),
    ],
)
def test_fingerprint_is_hmac_sha256(username: str, password: str) -> None:
    """RFC 2104 HMAC-SHA256 keyed with the user name; never the password itself (K9)."""
    expected = hmac.new(username.encode(), password.encode(), hashlib.sha256).hexdigest()
    fingerprint = credential_fingerprint(username, password)
    assert fingerprint == expected[:FINGERPRINT_HEX_DIGITS]
    assert len(fingerprint) == FINGERPRINT_HEX_DIGITS
    if password:
        assert password not in fingerprint


def test_fingerprint_tells_accounts_and_passwords_apart() -> None:
    """The same password on another account, or another password, is another tag."""
    tags = {
        credential_fingerprint("1@ims.imscore.net", "secret"),
        credential_fingerprint("2@ims.imscore.net", "secret"),
        credential_fingerprint("1@ims.imscore.net", "secret2"),
    }
    assert len(tags) == 3


def test_fingerprint_leaves_openssl_out_of_the_engine() -> None:
    """The engine process computes it without OpenSSL's libcrypto (memory).

    The probe makes hashlib and hmac unimportable (coverage may have loaded
    them already, so their absence from sys.modules would prove nothing).
    """
    probe = (
        "import sys\n"
        "for name in ('hashlib', '_hashlib', 'hmac'):\n"
        "    sys.modules[name] = None  # importing it now fails\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from kpn_line.lockout import credential_fingerprint\n"
        "print(credential_fingerprint('1@ims.imscore.net', 'x'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(PACKAGE_PARENT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == credential_fingerprint("1@ims.imscore.net", "x")


def test_lockout_until_is_the_k8_window() -> None:
    """Credentials that failed at T0 may be sent again K8_LOCKOUT_SECONDS later."""
    assert lockout_until(T0) == T0 + K8_LOCKOUT_SECONDS


@pytest.mark.parametrize(
    ("left", "minutes"),
    [
        (K8_LOCKOUT_SECONDS, 15),
        (14 * 60 + 31, 15),
        (14 * 60 + 29, 14),
        (60, 1),
        (29, 1),  # never "0 minutes"
        (0, 1),
        (-30, 1),
    ],
)
def test_minutes_left(left: float, minutes: int) -> None:
    """Rounded to whole minutes, at least 1."""
    assert minutes_left(T0 + left, T0) == minutes
