"""A scripted stand-in for `python -m kpn_line.engine`: the protocol, no SIP.

Used by test_engine_process.py to drive the REAL EngineClient.  argv[1]:
  exit      -- exit with code 3 before the hello (the engine cannot start);
  register  -- hello, answer every command, report `registered` after `start`,
               exit after `stop` (or when stdin closes);
  late_403  -- like register, but after `start` report the credentials sent
               (outcome unknown), and 1 s later `auth_failed` 403 (K8).
"""

from __future__ import annotations

import json
import sys
import time

from kpn_line.protocol import Message, RegistrationEvent, RegState, Reply, encode, hello


def _send(message: Message) -> None:
    sys.stdout.buffer.write(encode(message))
    sys.stdout.buffer.flush()


def main() -> int:
    """Play the engine as argv[1] says."""
    if sys.argv[1] == "exit":
        return 3
    _send(hello())
    for raw in sys.stdin.buffer:
        command = json.loads(raw)
        _send(Reply(id=command["id"], ok=True))
        if command["type"] == "start" and sys.argv[1] == "late_403":
            _send(
                RegistrationEvent(
                    state=RegState.REGISTERING, credentials_sent=True, time=time.time()
                )
            )
            time.sleep(1.0)
            _send(
                RegistrationEvent(
                    state=RegState.AUTH_FAILED, code=403, reason="Forbidden", time=time.time()
                )
            )
        elif command["type"] == "start":
            registered = RegistrationEvent(
                state=RegState.REGISTERED, code=200, reason="OK", expires=3600, time=time.time()
            )
            _send(registered)
        elif command["type"] == "stop":
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
