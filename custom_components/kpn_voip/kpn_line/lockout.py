"""The K8 lockout rule, named once: which credentials failed, until when, how long is left.

KPN blocks an account for about 15 minutes after wrong credentials, and every
further attempt in that time can extend the block (K8).  Both sides keep
failed credentials: the engine in memory (a `start` with them is refused),
Home Assistant on disk (no restart sends them again).  Both tag them with
`credential_fingerprint`, never with the password itself (K9).  Pure: no I/O.
"""

from __future__ import annotations

from typing import Final

from .profile import K8_LOCKOUT_SECONDS

try:
    # CPython's built-in HMAC: the hmac module would load OpenSSL's libcrypto
    # (megabytes of resident memory) into the engine process for one digest.
    from _hmac import compute_digest as _hmac_digest  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover  before CPython 3.14, or another implementation
    from hmac import digest as _hmac_digest

FINGERPRINT_HEX_DIGITS: Final = 32  # 128 bits: tells passwords apart, reveals nothing
_SECONDS_PER_MINUTE: Final = 60


def credential_fingerprint(username: str, password: str) -> str:
    """A one-way tag of a password, salted with its user name (K8, K9).

    HMAC-SHA256 keyed with the user name over the password (RFC 2104), the
    first FINGERPRINT_HEX_DIGITS hex digits.  Home Assistant stores it with a
    failure record, so the format must not change without a storage migration.
    """
    digest = _hmac_digest(username.encode(), password.encode(), "sha256")
    return bytes(digest).hex()[:FINGERPRINT_HEX_DIGITS]


def lockout_until(failed_at: float) -> float:
    """Epoch seconds after which credentials that failed at `failed_at` may be sent again (K8)."""
    return failed_at + K8_LOCKOUT_SECONDS


def minutes_left(until: float, now: float) -> int:
    """Whole minutes until `until` (epoch seconds), at least 1: for "try again in N minutes"."""
    return max(1, round((until - now) / _SECONDS_PER_MINUTE))
