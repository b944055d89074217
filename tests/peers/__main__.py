"""`python -m tests.peers standin|call ...`: used by scripts/standin and scripts/call."""

from __future__ import annotations

import sys

from .kamailio import main as standin_main
from .sipp import main as call_main

COMMANDS = {"standin": standin_main, "call": call_main}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print("usage: python -m tests.peers {standin|call} [options]", file=sys.stderr)
        sys.exit(2)
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
