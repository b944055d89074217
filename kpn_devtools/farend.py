"""A second pjsua2 phone as the far end of a call: a real RTP peer for the sound tests.

The line's engine is one pjsua2; this is another, in a process of its own
(`python -m kpn_devtools.farend ...`), scripted by its command line:

* `--call URI --proxy HOST:PORT`: call the line through the stand-in
  (an INVITE to the proxy, no registration); without `--call` it waits for
  one INVITE (the line dialling out, forwarded by the stand-in) and answers
  it after `--answer-after` seconds;
* once the call's audio is up it sends RTP (silence, as a phone does: K20);
  `--record WAV` records what it receives, `--play WAV` plays a file to the
  line (once), `--dtmf DIGITS` sends them as RFC 2833 events (K15) `--dtmf-at`
  seconds later (pjsua2's Call.dialDtmf; one every `--dtmf-gap` seconds if
  given), with or without `--play`;
* `--hangup-after S` ends the call S seconds after it was answered.

It writes one JSON object per line on stdout: `{"event": "ready", "port": N}`,
`{"event": "state", "state": "confirmed"}`, `{"event": "media", "rtp_port": N,
"remote_rtp_port": N}` (its RTP port and the line's),
`{"event": "dtmf", "digit": "1", "method": "rfc2833"}` (or "sip_info"),
`{"event": "ended", "code": 200}`, then it exits.  G.711 A-law only, 8 kHz,
20 ms, no VAD, the null audio device (like the line).  `FarEnd` runs it for
a test and reads those lines.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
import contextlib
import json
import os
from pathlib import Path
import queue
import subprocess
import sys
import threading
import time
from typing import Any

from .poll import async_wait_until, wait_until
from .ports import orphan_guard

HOST = "127.0.0.1"
FAREND_NUMBER = "+31612345678"  # who the far end says it is (a mobile number)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kpn_devtools.farend")
    parser.add_argument("--port", type=int, default=0, help="local SIP port (0: any)")
    parser.add_argument("--call", help="URI to call (else: answer one incoming call)")
    parser.add_argument("--proxy", help="HOST:PORT of the proxy for --call")
    parser.add_argument("--answer-after", type=float, default=0.3)
    parser.add_argument("--play", help="WAV file to play once the audio is up")
    parser.add_argument("--record", help="WAV file to record what is received")
    parser.add_argument("--dtmf", default="", help="digits to send (RFC 2833)")
    parser.add_argument("--dtmf-at", type=float, default=0.5, help="seconds after media up")
    parser.add_argument(
        "--dtmf-gap", type=float, default=0.0, help="seconds between digits (0: all at once)"
    )
    parser.add_argument("--hangup-after", type=float, help="seconds after answer")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--log-level", type=int, default=1)
    return parser.parse_args(argv)


def _emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the far end as its command line says (see the module docstring)."""
    args = _parse(argv)
    import pjsua2 as pj

    state: dict[str, Any] = {"call": None, "media_at": None, "answered_at": None, "done": False}
    keep: list[Any] = []  # pjsua2 objects that must outlive their callbacks

    class FarCall(pj.Call):  # type: ignore[misc]
        def onCallState(self, prm: Any) -> None:  # noqa: N802
            info = self.getInfo()
            if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
                state["answered_at"] = time.monotonic()
                _emit(event="state", state="confirmed")
            elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                _emit(event="ended", code=int(info.lastStatusCode))
                state["done"] = True

        def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
            if state["media_at"] is not None:
                return
            info = self.getInfo()
            for index, media in enumerate(info.media):
                if (
                    media.type == pj.PJMEDIA_TYPE_AUDIO
                    and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE
                ):
                    audio = self.getAudioMedia(index)
                    state["media_at"] = time.monotonic()
                    # Sound goes out from now on, as from any phone: the null sound
                    # device's silence (a --play file is mixed on top).  Without a
                    # source pjmedia's stream sends no RTP at all, and its RFC 2833
                    # digits (--dtmf) ride in that stream: they went only with --play.
                    ep.audDevManager().getCaptureDevMedia().startTransmit(audio)
                    if args.record:
                        recorder = pj.AudioMediaRecorder()
                        recorder.createRecorder(args.record)
                        audio.startTransmit(recorder)
                        keep.append(recorder)
                    if args.play:
                        player = pj.AudioMediaPlayer()
                        player.createPlayer(args.play, pj.PJMEDIA_FILE_NO_LOOP)
                        player.startTransmit(audio)
                        keep.append(player)
                    local = str(self.getMedTransportInfo(index).localRtpName)
                    remote = str(self.getStreamInfo(index).remoteRtpAddress)
                    _emit(
                        event="media",
                        rtp_port=int(local.rsplit(":", 1)[1]),
                        remote_rtp_port=int(remote.rsplit(":", 1)[1]),
                    )
                    return

        def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
            method = "rfc2833" if prm.method == pj.PJSUA_DTMF_METHOD_RFC2833 else "sip_info"
            _emit(event="dtmf", digit=str(prm.digit), method=method)

    class FarAccount(pj.Account):  # type: ignore[misc]
        def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
            call = FarCall(self, prm.callId)
            state["call"] = call
            op = pj.CallOpParam(True)
            op.statusCode = 180
            call.answer(op)
            state["answer_at"] = time.monotonic() + args.answer_after

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.userAgent = "kpn_devtools-farend"
    cfg.logConfig.level = args.log_level
    cfg.logConfig.consoleLevel = args.log_level
    med = cfg.medConfig
    med.clockRate = med.sndClockRate = 8000
    med.ptime = med.audioFramePtime = 20
    med.noVad = True
    med.ecTailLen = 0
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()
    for codec in ep.codecEnum2():
        ep.codecSetPriority(codec.codecId, 255 if codec.codecId.startswith("PCMA/") else 0)
    tc = pj.TransportConfig()
    tc.port = args.port
    tc.boundAddress = HOST
    tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
    ep.libStart()
    port = int(str(ep.transportGetInfo(tid).localName).rsplit(":", 1)[1])
    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{FAREND_NUMBER}@{HOST}:{port}"
    if args.proxy:
        acfg.sipConfig.proxies.append(f"sip:{args.proxy};lr")
    acfg.natConfig.iceEnabled = False
    acfg.mediaConfig.transportConfig.boundAddress = HOST
    acfg.mediaConfig.transportConfig.port = 40000
    acc = FarAccount()
    acc.create(acfg)
    _emit(event="ready", port=port)
    if args.call:
        call = FarCall(acc)
        op = pj.CallOpParam(True)
        op.opt.audioCount = 1
        op.opt.videoCount = 0
        op.opt.textCount = 0
        call.makeCall(args.call, op)
        state["call"] = call
    deadline = time.monotonic() + args.timeout
    dtmf_sent = 0  # digits of --dtmf sent so far
    while not state["done"] and time.monotonic() < deadline:
        ep.libHandleEvents(10)
        now = time.monotonic()
        call = state["call"]
        if call is None:
            continue
        answer_at = state.pop("answer_at", None)
        if answer_at is not None:
            if now < answer_at:
                state["answer_at"] = answer_at
            else:
                op = pj.CallOpParam(True)
                op.statusCode = 200
                op.opt.textCount = 0
                call.answer(op)
        media_at = state["media_at"]
        if (
            dtmf_sent < len(args.dtmf)
            and media_at is not None
            and now >= media_at + args.dtmf_at + dtmf_sent * args.dtmf_gap
        ):
            # RFC 2833 telephone-events: all digits at once, or one per --dtmf-gap
            digits = args.dtmf[dtmf_sent:] if args.dtmf_gap <= 0 else args.dtmf[dtmf_sent]
            dtmf_sent += len(digits)
            call.dialDtmf(digits)
        answered_at = state["answered_at"]
        if (
            args.hangup_after is not None
            and answered_at is not None
            and now >= answered_at + args.hangup_after
        ):
            state["hangup_after_done"] = True
            args.hangup_after = None
            call.hangup(pj.CallOpParam(True))
    if not state["done"] and state["call"] is not None:
        with contextlib.suppress(Exception):
            state["call"].hangup(pj.CallOpParam(True))
        end = time.monotonic() + 1
        while not state["done"] and time.monotonic() < end:
            ep.libHandleEvents(10)
    keep.clear()  # recorders write their WAV header when destroyed
    state["call"] = None
    del acc
    import gc

    gc.collect()
    ep.libDestroy()
    _emit(event="exit")
    return 0


class FarEnd:
    """A running far end (see the module docstring) and the events it wrote.

    `options`: the command-line options as keywords (`call=`, `proxy=`,
    `play=`, `record=`, `dtmf=`, `dtmf_at=`, `hangup_after=`, ...).
    """

    def __init__(self, **options: Any) -> None:
        """Start it; wait for `ready` to learn its port."""
        args = [*orphan_guard(), sys.executable, "-m", "kpn_devtools.farend"]
        for key, value in options.items():
            if value is not None:
                args += [f"--{key.replace('_', '-')}", str(value)]
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        # A peer, not code under test: no coverage tracing (coverage's patch=subprocess
        # would slow its Python loop, which reads the RTP, into jitter-buffer gaps).
        env.pop("COVERAGE_PROCESS_CONFIG", None)
        self.events: list[dict[str, Any]] = []
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True, name="farend")
        self._reader.start()
        ready = self.wait_event(lambda e: e["event"] == "ready", 20.0)
        self.port: int = int(ready["port"])

    @property
    def address(self) -> tuple[str, int]:
        """Where its SIP listens (for the stand-in's forward_to)."""
        return (HOST, self.port)

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))

    def _find(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        return next((e for e in list(self.events) if predicate(e)), None)

    def wait_event(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first event matching `predicate` (TimeoutError after `timeout` s)."""
        return wait_until(
            lambda: self._find(predicate), timeout, lambda: f"far end events: {self.events}"
        )

    async def async_wait_event(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """wait_event() for async tests."""
        return await async_wait_until(
            lambda: self._find(predicate), timeout, lambda: f"far end events: {self.events}"
        )

    def digits(self) -> list[tuple[str, str]]:
        """(digit, method) of every DTMF digit it received, in order."""
        return [(e["digit"], e["method"]) for e in self.events if e["event"] == "dtmf"]

    async def async_wait_exit(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Until it has written its files and exited."""
        await async_wait_until(
            lambda: self._proc.poll() is not None, timeout, lambda: "far end still running"
        )

    def stop(self) -> None:
        """End it (a clean exit first, then a kill)."""
        with contextlib.suppress(ProcessLookupError):
            self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


if __name__ == "__main__":
    sys.exit(main())
