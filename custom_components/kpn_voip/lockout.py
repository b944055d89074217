"""The K8 lockout guard, persisted in Home Assistant's storage.

KPN blocks an account for about 15 minutes after wrong credentials, and every
further attempt in that time can extend the block (K8).  An auth failure is
therefore written to disk with its time, so that neither an engine restart
nor a Home Assistant restart within K8_LOCKOUT_SECONDS sends credentials for
that account again.  Records are keyed by the SIP user name (the account KPN
blocks) and hold a salted fingerprint of the failed password, never the
password itself (K9), so a flow can tell "the same password again" from "a
new password" without storing the secret a second time.  Every password
that failed within the window is remembered, not only the last one (A
fails, B fails: A is still refused).

Credentials sent whose outcome is unknown are a state of their own (issue 9
item 5): an engine that dies (or hangs) after sending them and before the
registrar's answer leaves no outcome, and a retried setup must not send them
again until the K8 window from the moment they went out has passed - the
registrar may have refused them and KPN's block may be running.  The rule has
one exception: credentials the registrar has accepted before (the newest
accepted ones per user name are remembered) do not block, because an unknown
outcome of a password known to be right is no wrong-password attempt.  A line
whose engine crashed mid-refresh therefore comes back at once; should the
password have been changed at KPN meanwhile, the one attempt that follows
gets its 401/403, which is recorded as a failure like any other.

Stored per user name: the newest failure as ``time`` / ``reason`` /
``fingerprint`` and the earlier ones still inside the window under
``earlier`` (a list of the same three fields; absent in older files);
``pending``: ``time`` / ``fingerprint`` of credentials whose outcome is
unknown; ``accepted``: the fingerprint of the newest credentials the registrar
accepted.  Every field may be absent.
"""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Any, TypedDict

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store
from homeassistant.util.hass_dict import HassKey

from .const import LOCKOUT_STORAGE_KEY, LOCKOUT_STORAGE_VERSION
from .kpn_line.lockout import credential_fingerprint, lockout_until
from .kpn_line.protocol import RegState

_DATA_KEY: HassKey[LockoutGuard] = HassKey(LOCKOUT_STORAGE_KEY)


class _StoredFailure(TypedDict):
    time: float
    reason: str
    fingerprint: str


class _StoredPending(TypedDict):
    time: float
    fingerprint: str


class _StoredRecord(TypedDict, total=False):
    time: float
    reason: str
    fingerprint: str
    earlier: list[_StoredFailure]
    pending: _StoredPending
    accepted: str


@dataclass(frozen=True, slots=True)
class LockoutRecord:
    """One persisted auth failure."""

    time: float
    reason: str  # a RegState of AUTH_FAILURE_STATES: "auth_failed" or "locked_out"
    fingerprint: str

    @property
    def until(self) -> float:
        """Epoch seconds when credentials may be sent again."""
        return lockout_until(self.time)


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """Credentials that went out at `time` (epoch seconds); their outcome is unknown."""

    time: float
    fingerprint: str

    @property
    def until(self) -> float:
        """Epoch seconds when these credentials may be sent again (K8 window)."""
        return lockout_until(self.time)


class LockoutGuard:
    """All persisted auth failures of this Home Assistant instance."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Initialise; call async_load before use."""
        self._store: Store[dict[str, _StoredRecord]] = Store(
            hass, LOCKOUT_STORAGE_VERSION, LOCKOUT_STORAGE_KEY, private=True
        )
        self._hass = hass
        # Per user name, oldest first; the last one is the newest failure.
        self._records: dict[str, list[LockoutRecord]] = {}
        self._pending: dict[str, PendingRecord] = {}  # per user name
        self._accepted: dict[str, str] = {}  # per user name: a fingerprint

    async def async_load(self) -> None:
        """Read the records from disk."""
        data: dict[str, Any] = await self._store.async_load() or {}
        for username, raw in data.items():
            if not isinstance(raw, dict):
                continue
            earlier = raw.get("earlier")
            failures = [*earlier, raw] if isinstance(earlier, list) else [raw]
            records = [r for r in map(_from_storage, failures) if r is not None]
            if records:
                self._records[username] = sorted(records, key=lambda r: r.time)
            if (pending := _pending_from_storage(raw.get("pending"))) is not None:
                self._pending[username] = pending
            if isinstance(accepted := raw.get("accepted"), str):
                self._accepted[username] = accepted

    def active(self, username: str, *, now: float | None = None) -> LockoutRecord | None:
        """The newest record that still blocks this account, if any."""
        records = self._records.get(username)
        if not records:
            return None
        if (time.time() if now is None else now) >= records[-1].until:
            return None
        return records[-1]

    def failed_recently(
        self, username: str, password: str, *, now: float | None = None
    ) -> LockoutRecord | None:
        """The newest record of `password` failing inside the K8 window, if any.

        Every password that failed in the window counts, not only the last one.
        """
        now = time.time() if now is None else now
        fingerprint = credential_fingerprint(username, password)
        for record in reversed(self._records.get(username, [])):
            if record.fingerprint == fingerprint and now < record.until:
                return record
        return None

    def refused(
        self, username: str, password: str, *, now: float | None = None
    ) -> LockoutRecord | None:
        """The newest record of the registrar refusing `password` itself (reason
        auth_failed: it answered the credentials with 401/403/407) inside the K8
        window, if any.

        Only this asks the user for a new password.  A block the line met without
        its credentials being judged (reason locked_out: a 403 before they were
        sent, e.g. after another device's wrong password) or another password's
        failure is no refusal of `password`: the line waits for the block's end
        and then logs in once by itself (K8, coordinator.py).
        """
        record = self.failed_recently(username, password, now=now)
        if record is None or record.reason != RegState.AUTH_FAILED:
            return None
        return record

    def unknown_outcome(
        self, username: str, password: str, *, now: float | None = None
    ) -> PendingRecord | None:
        """Credentials that went out without a known outcome and still block, if any.

        They block until the K8 window from their sending has passed, unless the
        registrar accepted the same credentials before (see the module docstring).
        """
        pending = self._pending.get(username)
        fingerprint = credential_fingerprint(username, password)
        if pending is None or pending.fingerprint != fingerprint:
            return None
        if self._accepted.get(username) == fingerprint:
            return None
        if (time.time() if now is None else now) >= pending.until:
            return None
        return pending

    @callback
    def note_credentials_sent(
        self, username: str, password: str, *, now: float | None = None
    ) -> None:
        """The credentials went out; their outcome is unknown until noted (issue 9 item 5).

        In memory at once (no attempt in this process can slip in), on disk
        right after (a Home Assistant restart keeps it).
        """
        self._pending[username] = PendingRecord(
            time=time.time() if now is None else now,
            fingerprint=credential_fingerprint(username, password),
        )
        self._schedule_save()

    @callback
    def note_accepted(self, username: str, password: str) -> None:
        """The registrar accepted the credentials: their attempt has ended."""
        fingerprint = credential_fingerprint(username, password)
        if self._accepted.get(username) == fingerprint and username not in self._pending:
            return  # a refresh: nothing new to write
        self._accepted[username] = fingerprint
        self._pending.pop(username, None)
        self._schedule_save()

    @callback
    def note_ended(self, username: str) -> None:
        """The attempt ended without a verdict on the credentials (no answer, 5xx)."""
        if self._pending.pop(username, None) is not None:
            self._schedule_save()

    async def async_record(
        self, username: str, password: str, reason: str, *, now: float | None = None
    ) -> LockoutRecord:
        """Persist an auth failure; written before anything else happens."""
        record = LockoutRecord(
            time=time.time() if now is None else now,
            reason=reason,
            fingerprint=credential_fingerprint(username, password),
        )
        kept = [
            old
            for old in self._records.get(username, [])
            if old.until > record.time and old.fingerprint != record.fingerprint
        ]
        self._records[username] = [*kept, record]
        self._pending.pop(username, None)  # the outcome is known: refused
        if self._accepted.get(username) == record.fingerprint:
            del self._accepted[username]  # changed at KPN meanwhile
        await self._async_save()
        return record

    async def async_clear(self, username: str) -> None:
        """Forget an account's failures (new password accepted, K8)."""
        if self._records.pop(username, None) is not None:
            await self._async_save()

    @callback
    def _schedule_save(self) -> None:
        self._hass.async_create_task(self._async_save(), "kpn_voip lockout save", eager_start=True)

    async def _async_save(self) -> None:
        # Saved at once, not delayed: a crash right after an auth failure must
        # not lose the record (K8).
        data: dict[str, _StoredRecord] = {}
        for username in {*self._records, *self._pending, *self._accepted}:
            stored: _StoredRecord = {}
            if records := self._records.get(username):
                newest = records[-1]
                stored["time"] = newest.time
                stored["reason"] = newest.reason
                stored["fingerprint"] = newest.fingerprint
                if len(records) > 1:
                    stored["earlier"] = [
                        {"time": r.time, "reason": r.reason, "fingerprint": r.fingerprint}
                        for r in records[:-1]
                    ]
            if (pending := self._pending.get(username)) is not None:
                stored["pending"] = {"time": pending.time, "fingerprint": pending.fingerprint}
            if (accepted := self._accepted.get(username)) is not None:
                stored["accepted"] = accepted
            data[username] = stored
        await self._store.async_save(data)


def _from_storage(raw: Any) -> LockoutRecord | None:
    """One stored failure, or None for a damaged one (dropped, not fatal)."""
    try:
        return LockoutRecord(
            time=float(raw["time"]), reason=str(raw["reason"]), fingerprint=str(raw["fingerprint"])
        )
    except (KeyError, TypeError, ValueError):
        return None


def _pending_from_storage(raw: Any) -> PendingRecord | None:
    """A stored unknown outcome, or None (absent or damaged)."""
    try:
        return PendingRecord(time=float(raw["time"]), fingerprint=str(raw["fingerprint"]))
    except (KeyError, TypeError, ValueError):
        return None


async def async_get_lockout_guard(hass: HomeAssistant) -> LockoutGuard:
    """The instance-wide guard, loaded on first use."""
    if (guard := hass.data.get(_DATA_KEY)) is None:
        guard = LockoutGuard(hass)
        await guard.async_load()
        # Two entries may load at once: the first one to finish wins.
        guard = hass.data.setdefault(_DATA_KEY, guard)
    return guard
