"""The state of one line as Home Assistant shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from .kpn_line.protocol import AUTH_FAILURE_STATES, CallerId, RegState


class EngineStatus(StrEnum):
    """A line status the engine cannot report itself."""

    ENGINE_DOWN = "engine_down"
    # Credentials went out and their outcome never came (the engine died or hung):
    # no new attempt with them until the K8 window has passed (issue 9 item 5).
    OUTCOME_UNKNOWN = "outcome_unknown"


# The line status sensor's states: the engine's registration states plus engine_down.
type LineStatus = RegState | EngineStatus
LINE_STATUSES: Final[tuple[LineStatus, ...]] = (*RegState, *EngineStatus)

# Statuses in which the line cannot take or place calls; entering one is
# logged once, leaving it once (HA's log-when-unavailable rule).
DOWN_STATUSES: Final[frozenset[LineStatus]] = frozenset(
    {
        *AUTH_FAILURE_STATES,
        RegState.UNREACHABLE,
        EngineStatus.ENGINE_DOWN,
        EngineStatus.OUTCOME_UNKNOWN,
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
    """Who rang the line last (K16), and when."""

    caller: CallerId
    time: datetime

    def attributes(self) -> dict[str, Any]:
        """The caller's attributes (CallerId.attributes) and `time` (ISO 8601)."""
        return self.caller.attributes() | {"time": self.time.isoformat()}


@dataclass(frozen=True, slots=True)
class LineState:
    """A snapshot; the coordinator replaces it on every change."""

    status: LineStatus = RegState.STOPPED
    call_status: CallStatus = CallStatus.IDLE
    engine_running: bool = False
    code: int | None = None  # last SIP status code of the registration
    reason: str | None = None
    active_calls: int = 0
    last_caller: LastCaller | None = None
