"""One pjsua2 probe for the environment and the wheel tests.

`PROBE` is a Python program (run with `python -c`) that starts pjsua2 the way
the engine does (no worker threads, null sound device), binds a UDP SIP
transport on 127.0.0.1 and prints one line `RESULT{json}`; `probe_result`
reads that line back.  It runs in a child process: pjlib writes its start-up
lines to the C stdout, which pytest's capture would otherwise print at exit.
"""

from __future__ import annotations

import json
from typing import Any

PROBE = """
import json
import pjsua2 as pj
ep = pj.Endpoint()
ep.libCreate()
cfg = pj.EpConfig()
cfg.uaConfig.threadCnt = 0
cfg.uaConfig.mainThreadOnly = True
cfg.logConfig.level = 0
cfg.logConfig.consoleLevel = 0
ep.libInit(cfg)
ep.audDevManager().setNullDev()
tcfg = pj.TransportConfig()
tcfg.boundAddress = "127.0.0.1"
tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
port = ep.transportGetInfo(tid).localName
ep.libStart()
v = ep.libVersion()
codecs = sorted({"/".join(c.codecId.split("/")[:2]) for c in ep.codecEnum2()})
ep.libDestroy()
print("RESULT" + json.dumps({"version": [v.major, v.minor], "codecs": codecs, "udp": port}))
"""


def probe_result(stdout: str) -> dict[str, Any]:
    """The probe's result from its stdout.

    Shape: {"version": [major, minor], "codecs": ["PCMA/8000", ...], "udp": "ip:port"}.

    Raises ValueError (or IndexError) when the output has no RESULT line.
    """
    result: dict[str, Any] = json.loads(stdout.split("RESULT", 1)[1].splitlines()[0])
    return result
