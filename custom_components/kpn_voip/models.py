"""The state of one line as Home Assistant shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class LineStatus(StrEnum):
    """The line status sensor's states: the engine's registration states plus engine_down."""

    STARTING = "starting"
    REGISTERING = "registering"
    REGISTERED = "registered"
    AUTH_FAILED = "auth_failed"
    LOCKED_OUT = "locked_out"
    UNREACHABLE = "unreachable"
    STOPPED = "stopped"
    ENGINE_DOWN = "engine_down"


# Statuses in which the line cannot take or place calls; entering one is
# logged once, leaving it once (HA's log-when-unavailable rule).
DOWN_STATUSES = frozenset(
    {
        LineStatus.AUTH_FAILED,
        LineStatus.LOCKED_OUT,
        LineStatus.UNREACHABLE,
        LineStatus.ENGINE_DOWN,
    }
)


class CallStatus(StrEnum):
    """The call state sensor's states."""

    IDLE = "idle"
    RINGING = "ringing"
    DIALING = "dialing"
    TALKING = "talking"


@dataclass(frozen=True, slots=True)
class LastCaller:
    """Who rang the line last (K16)."""

    number: str | None  # E.164 where it could be made so
    national: str | None
    name: str | None
    anonymous: bool
    time: datetime


@dataclass(frozen=True, slots=True)
class LineState:
    """A snapshot; the coordinator replaces it on every change."""

    status: LineStatus = LineStatus.STOPPED
    call_status: CallStatus = CallStatus.IDLE
    engine_running: bool = False
    code: int | None = None  # last SIP status code of the registration
    reason: str | None = None
    active_calls: int = 0
    last_caller: LastCaller | None = None
