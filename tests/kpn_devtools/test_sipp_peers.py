"""The misbehaving registrars and the raw sender of the sipp fixture work."""

from __future__ import annotations

import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import time

import pytest

from kpn_devtools import python_path
from kpn_devtools.kamailio import Kamailio
from kpn_devtools.sipp import Sipp, parse_message_log

pytestmark = pytest.mark.peers


def _register(cseq: int, expires: int = 3600, call_id: str = "reg-1") -> bytes:
    return (
        "REGISTER sip:ims.imscore.net SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bK-{call_id}-{cseq}\r\n"
        "From: <sip:+31201234567@ims.imscore.net>;tag=t1\r\n"
        "To: <sip:+31201234567@ims.imscore.net>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
        "Contact: <sip:+31201234567@127.0.0.1:9>\r\n"
        f"Expires: {expires}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def _status(reply: bytes | None) -> int:
    assert reply is not None, "no reply"
    return int(reply.split(b" ", 2)[1])


def _ask(sipp: Sipp, port: int, data: bytes, wait: float = 2.0) -> bytes | None:
    return sipp.send_raw("127.0.0.1", port, data, wait_reply=wait)


def test_registrar_always_401_challenges_every_time(sipp: Sipp) -> None:
    reg = sipp.registrar("always_401")
    first = _ask(sipp, reg.port, _register(1))
    second = _ask(sipp, reg.port, _register(2))
    assert (_status(first), _status(second)) == (401, 401)
    nonces = [re.search(rb'nonce="([^"]+)"', r).group(1) for r in (first, second) if r]
    assert nonces[0] != nonces[1]  # a fresh challenge each time
    assert b'realm="ims.imscore.net"' in first  # type: ignore[operator]
    msgs = reg.wait_for(lambda m: [x.code or x.method for x in m] == ["REGISTER", 401] * 2)
    assert msgs[1].header("WWW-Authenticate")[0].startswith("Digest realm=")


def test_registrar_503_then_200(sipp: Sipp) -> None:
    reg = sipp.registrar("503_then_200")
    assert _status(_ask(sipp, reg.port, _register(1))) == 503
    ok = _ask(sipp, reg.port, _register(2))
    assert _status(ok) == 200
    assert b"Expires: 3600" in ok  # type: ignore[operator]


def test_registrar_423_then_200_with_the_asked_expires(sipp: Sipp) -> None:
    reg = sipp.registrar("423_then_200", min_expires=7200)
    too_brief = _ask(sipp, reg.port, _register(1))
    assert _status(too_brief) == 423
    assert b"Min-Expires: 7200" in too_brief  # type: ignore[operator]
    ok = _ask(sipp, reg.port, _register(2, expires=7200))
    assert _status(ok) == 200
    assert b"Expires: 7200" in ok  # type: ignore[operator]


def test_registrar_silent_never_answers_but_records(sipp: Sipp) -> None:
    reg = sipp.registrar("silent")
    assert _ask(sipp, reg.port, _register(1), wait=0.7) is None
    msgs = reg.wait_for(lambda m: any(x.method == "REGISTER" for x in m))
    assert msgs[0].header("Call-ID") == ["reg-1"]


def test_uas_rejects_with_the_code_asked(kamailio_factory, sipp: Sipp) -> None:
    callee = sipp.uas(reject_code=486)
    kam: Kamailio = kamailio_factory(forward_to=callee.address)
    call = sipp.call_out(kam, "0201111111")
    call.wait(20)
    assert call.final_code() == 486


def test_message_log_parser() -> None:
    log = (
        "----------------------------------------------- 2026-11-25 22:00:00.000000\n"
        "UDP message sent (10 bytes):\n\nOPTIONS sip:a SIP/2.0\nCSeq: 1 OPTIONS\n\n"
        "----------------------------------------------- 2026-11-25 22:00:00.100000\n"
        "UDP message received [20] bytes :\n\nSIP/2.0 200 OK\nCSeq: 1 OPTIONS\n\n"
    )
    sent, got = parse_message_log(log)
    assert (sent.direction, sent.method, sent.code) == ("sent", "OPTIONS", None)
    assert (got.direction, got.method, got.code, got.cseq_method) == (
        "received",
        None,
        200,
        "OPTIONS",
    )


ORPHAN = """
import sys, time
from kpn_devtools.kamailio import Kamailio
k = Kamailio(lockout_seconds=0)
k.start()
print(k._proc.pid, k.rundir, flush=True)
time.sleep(60)
"""


def test_peers_die_with_a_killed_test_process(socket_enabled: None) -> None:
    """A pytest killed by SIGKILL must not leave Kamailio running, nor (from the next
    stand-in on) its run folder in the temp dir (kpn_devtools/rundir.py)."""
    env = dict(os.environ, PYTHONPATH=python_path(os.environ.get("PYTHONPATH")))
    proc = subprocess.Popen(
        [sys.executable, "-c", ORPHAN], stdout=subprocess.PIPE, text=True, cwd=os.getcwd(), env=env
    )
    try:
        assert proc.stdout is not None
        pid, rundir = proc.stdout.readline().split(maxsplit=1)
        kam_pid, orphan_dir = int(pid), Path(rundir.strip())
        os.kill(kam_pid, 0)  # running
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(kam_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.killpg(kam_pid, signal.SIGKILL)
        pytest.fail("Kamailio outlived the process that started it")
    deadline = time.monotonic() + 5
    while orphan_dir.exists() and time.monotonic() < deadline:
        # Kamailio's children hold the folder's lock until the last one has ended.
        Kamailio(lockout_seconds=0).cleanup()  # the next stand-in sweeps it
        time.sleep(0.05)
    assert not orphan_dir.exists()
