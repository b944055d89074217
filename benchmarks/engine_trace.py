"""The line engine with time stamps on the incoming-call path (`benchmarks/run --ha --trace`).

Runs `kpn_line.engine.main()` unchanged, with a few of its functions wrapped
to take `time.time_ns()` (CLOCK_REALTIME, like the capture's packet times):
the INVITE reaching Python (onRxRequest), pjsua2's onIncomingCall reaching
Python, the source address read, the INVITE's text read (the caller ID's parse
starting), the caller ID parsed, the call policy decided,
the call's record made, the `ringing` event built, encoded and written to the
pipe (the call object and the 180 come after it, engine.on_incoming_call).  The
stamps are kept in memory and written, one JSON object per call, to the file
named by $KPN_BENCH_TRACE when the engine exits.  A benchmark tool only: the
engine itself has no tracing.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from typing import Any

from kpn_line import engine, stdio
from kpn_line.protocol import CallEvent, CallState

_current: dict[str, int] = {}
_records: list[dict[str, Any]] = []


def _wrap_incoming(original: Any) -> Any:
    def on_incoming_call(self: Any, account: Any, prm: Any) -> None:
        _current["onIncomingCall in Python"] = time.time_ns()
        original(self, account, prm)

    return on_incoming_call


def _wrap_rx_request(original: Any) -> Any:
    def on_rx_request(self: Any, prm: Any) -> None:
        if str(prm.method) == "INVITE":
            _current.clear()
            _current["onRxRequest (INVITE) in Python"] = time.time_ns()
        original(self, prm)

    return on_rx_request


def _wrap_stamp(original: Any, label: str) -> Any:
    def stamped(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        _current[label] = time.time_ns()
        return result

    return stamped


def _wrap_start(original: Any, label: str) -> Any:
    def stamped(*args: Any, **kwargs: Any) -> Any:
        _current[label] = time.time_ns()
        return original(*args, **kwargs)

    return stamped


def _ringing(message: Any) -> bool:
    return isinstance(message, CallEvent) and message.state == CallState.RINGING


def _wrap_encode(original: Any) -> Any:
    def encode(message: Any) -> bytes:
        if _ringing(message):
            _current["event built"] = int(message.time * 1e9)
        data: bytes = original(message)
        if _ringing(message):
            _current["JSON encoded"] = time.time_ns()
        return data

    return encode


def _wrap_write(original: Any) -> Any:
    def write(self: Any, message: Any) -> None:
        original(self, message)
        if _ringing(message):
            _current["written to the pipe"] = time.time_ns()
            _records.append({"call_id": message.call_id, **_current})

    return write


def _save() -> None:
    path = os.environ.get("KPN_BENCH_TRACE")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            for record in _records:
                out.write(json.dumps(record) + "\n")


engine.Engine.on_incoming_call = _wrap_incoming(engine.Engine.on_incoming_call)
engine.Engine.on_rx_request = _wrap_rx_request(engine.Engine.on_rx_request)
engine.source_host = _wrap_stamp(engine.source_host, "source address read")
engine.parse_caller_id = _wrap_stamp(
    _wrap_start(engine.parse_caller_id, "message read (caller ID parse starts)"), "caller ID parsed"
)
engine.Engine._refusal = _wrap_stamp(engine.Engine._refusal, "call policy decided")
engine.CallTable.new_record = _wrap_stamp(engine.CallTable.new_record, "call record made")
stdio.encode = _wrap_encode(stdio.encode)
stdio.Output.write = _wrap_write(stdio.Output.write)
atexit.register(_save)

if __name__ == "__main__":
    sys.exit(engine.main())
