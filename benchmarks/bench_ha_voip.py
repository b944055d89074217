"""Side by side: Home Assistant's own `voip` integration in the same in-process HA.

Called from bench_ha.py (`benchmarks/run --ha`, unless `--no-voip`): one voip
call after each of ours (interleaved, `VoipRun`), so both see the same machine
at the same moment, in the same Home Assistant.  Its SIP
stack (voip-utils) runs inside HA's loop.  Its requirements are installed for
this run only (`pip install --no-deps --target` into the run's temporary
folder, put first on sys.path); the project's environment is not changed.

The entry is made through voip's real config flow, its SIP port moved to a
free port on 127.0.0.1 through its options flow.  SIPp's built-in `uac`
scenario sends INVITEs straight to that port, one call at a time; tcpdump
records the port, so the INVITE's time is the kernel's time stamp on `lo`
(CLOCK_REALTIME, as bench_ha), per Call-ID.

Home Assistant 2026.10 has no "call in progress" binary sensor any more, and
an INVITE changes no entity state unless an Assist pipeline with speech to text
and text to speech is set up.  So the figures are: INVITE -> voip's code has
the call in HA's loop (`is_valid_call`, stamped first thing, the point where a
sensor could be written), and INVITE -> voip's 200 OK on the wire.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import importlib
from pathlib import Path
import shutil
import subprocess
import sys
import time
from typing import Any

from homeassistant.core import HomeAssistant

from benchmarks.stats import sip_first_line
from kpn_devtools.capture import Capture
from kpn_devtools.ports import free_udp_port

REQUIREMENTS = ("voip-utils==0.5.0", "opuslib-next==1.1.6")  # HA 2026.10's voip manifest
_HA_DEPS = "voip-deps"


@dataclass
class VoipFigures:
    """ms per call (warm-up left out), or why there are none."""

    in_loop: list[float] = field(default_factory=list)  # INVITE -> is_valid_call in HA's loop
    answered: list[float] = field(default_factory=list)  # INVITE -> its first response leaves
    response: str = ""  # that response's status line
    failed: str = ""  # why HA's voip could not be measured
    in_loop_by_call: dict[int, float] = field(default_factory=dict)  # call index -> in_loop


def install_requirements(workdir: Path) -> None:
    """voip's requirements into the run's folder, first on sys.path (CalledProcessError)."""
    target = workdir / _HA_DEPS
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"),
            *("--no-deps", "--target", str(target), *REQUIREMENTS),
        ],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()


async def set_up(hass: HomeAssistant, port: int) -> Any:
    """voip's entry through its config flow; its options flow moves it to `port`."""
    flow = await hass.config_entries.flow.async_init("voip", context={"source": "user"})
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], {})
    if result.get("type") != "create_entry":
        raise RuntimeError(f"voip's config flow: {result}")
    entry = result["result"]
    await hass.async_block_till_done()
    options = await hass.config_entries.options.async_init(entry.entry_id)
    await hass.config_entries.options.async_configure(options["flow_id"], {"sip_port": port})
    await hass.async_block_till_done()  # the update listener reloads it on the new port
    return entry


def hook(stamps: dict[str, float]) -> None:
    """Stamp time.time() first thing when voip's protocol gets a call (per Call-ID)."""
    from homeassistant.components.voip.voip import HassVoipDatagramProtocol  # after install

    original = HassVoipDatagramProtocol.is_valid_call

    def is_valid_call(self: Any, call_info: Any) -> bool:
        now = time.time()
        stamps.setdefault(str(call_info.headers.get("call-id")), now)
        return bool(original(self, call_info))

    HassVoipDatagramProtocol.is_valid_call = is_valid_call  # type: ignore[method-assign]


def run_sipp(workdir: Path, port: int, calls: int, sipp_port: int) -> None:
    """SIPp's uac scenario to 127.0.0.1:`port`, `calls` calls one at a time."""
    subprocess.run(
        [
            *("sipp", "-sn", "uac", f"127.0.0.1:{port}", "-i", "127.0.0.1", "-p", str(sipp_port)),
            *("-m", str(calls), "-l", "1", "-r", "5", "-d", "100", "-nostdin"),
            *("-timeout", str(calls + 30), "-timeout_error", "-trace_err"),
        ],
        cwd=workdir,
        check=False,
        capture_output=True,
        timeout=calls + 60,
    )


def _call_id(payload: bytes) -> str | None:
    for line in payload.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"call-id", b"i"):
            return value.strip().decode()
    return None


class VoipRun:
    """HA's voip in `hass`, called one call at a time between ours (interleaved).

    `start()` installs its requirements, makes its entry and starts the capture;
    each `call()` is one SIPp call (INVITE, 200, ACK, 100 ms, BYE) to its port;
    `finish()` stops the capture, unloads the entry and returns the figures, each
    list in call order with the first two (warm-up: the first makes voip's device)
    left out.  `failed` says why there are none.
    """

    def __init__(self, hass: HomeAssistant, workdir: Path) -> None:
        """Nothing runs yet: `start()`."""
        self._hass = hass
        self._workdir = workdir
        self._port = 0
        self._sipp_port = 0
        self._entry: Any = None
        self._cap: Capture | None = None
        self._stamps: dict[str, float] = {}
        self.failed = ""

    async def start(self) -> bool:
        """Set voip up; False (and `failed` says why) when it cannot be measured."""
        loop = asyncio.get_running_loop()
        if shutil.which("sipp") is None:
            self.failed = "sipp not found"
            return False
        try:
            await loop.run_in_executor(None, install_requirements, self._workdir)
        except subprocess.CalledProcessError as err:
            self.failed = f"pip could not install {REQUIREMENTS}: {err.stderr.decode()[-300:]}"
            return False
        self._port = free_udp_port()
        self._sipp_port = free_udp_port()
        try:
            self._entry = await set_up(self._hass, self._port)
        except Exception as err:  # reported, the rest of the run goes on
            self.failed = f"HA's voip did not set up: {err!r}"
            return False
        hook(self._stamps)
        self._cap = Capture(bpf=f"udp and port {self._port}")
        await loop.run_in_executor(None, self._cap.start)
        return True

    async def call(self, calls: int = 1) -> None:
        """`calls` SIPp calls to voip's port, one at a time (blocks in the executor)."""
        await asyncio.get_running_loop().run_in_executor(
            None, run_sipp, self._workdir, self._port, calls, self._sipp_port
        )

    async def finish(self) -> VoipFigures:
        """Stop the capture, unload voip's entry; the figures in ms (warm-up left out)."""
        loop = asyncio.get_running_loop()
        figures = VoipFigures(failed=self.failed)
        if self._cap is None:
            return figures
        try:
            await asyncio.sleep(0.5)
            await loop.run_in_executor(None, self._cap.stop)
            packets = await loop.run_in_executor(None, self._cap.packets)
        finally:
            await loop.run_in_executor(None, self._cap.cleanup)
            await self._hass.config_entries.async_unload(self._entry.entry_id)
        sent: dict[str, float] = {}
        answered: dict[str, tuple[float, str]] = {}
        order: list[str] = []
        for packet in packets:
            call_id = _call_id(packet.payload)
            if call_id is None:
                continue
            first = sip_first_line(packet)
            if first.startswith("INVITE ") and packet.dport == self._port and call_id not in sent:
                sent[call_id] = packet.time
                order.append(call_id)
            elif (
                first.startswith("SIP/2.0 ")
                and packet.sport == self._port
                and "INVITE" in str(packet.payload.split(b"CSeq:", 1)[-1][:30])
            ):
                answered.setdefault(call_id, (packet.time, first))
        for index, call_id in enumerate(order[2:], start=2):  # two warm-up calls
            if call_id in self._stamps:
                figures.in_loop.append((self._stamps[call_id] - sent[call_id]) * 1000)
                figures.in_loop_by_call[index] = figures.in_loop[-1]
            if call_id in answered:
                figures.answered.append((answered[call_id][0] - sent[call_id]) * 1000)
                figures.response = answered[call_id][1]
        if not order:
            figures.failed = "no INVITE captured (SIPp did not run?)"
        return figures
