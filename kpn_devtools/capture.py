"""Packet capture with tcpdump (-w pcap) and a small pure-Python pcap reader.

Used to check what really goes on the wire: IP TOS / DSCP (K22), ports
(K18, K19), SIP text.  Handles the link types Linux gives: Ethernet (lo),
Linux cooked v1/v2 (any), BSD loopback and raw IP.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
import ipaddress
import os
from pathlib import Path
import shutil
import signal
import struct
import subprocess
import tempfile
import time

from .poll import wait_until
from .ports import orphan_guard

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LOOP = 108
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_ETH_VLAN = (0x8100, 0x88A8)


@dataclass(frozen=True)
class Packet:
    """One UDP (or other IP) packet: addresses, ports, TOS byte, payload."""

    time: float
    src: str
    sport: int
    dst: str
    dport: int
    tos: int
    payload: bytes
    proto: int = 17
    vlan_pcp: int | None = None

    @property
    def dscp(self) -> int:
        """DSCP = upper six bits of the TOS byte (K22: 46)."""
        return self.tos >> 2


def _ip_packet(data: bytes, ts: float, vlan_pcp: int | None) -> Packet | None:
    if not data:
        return None
    version = data[0] >> 4
    if version == 4:
        if len(data) < 20:
            return None
        ihl = (data[0] & 0x0F) * 4
        tos = data[1]
        total = struct.unpack("!H", data[2:4])[0]
        proto = data[9]
        src = str(ipaddress.IPv4Address(data[12:16]))
        dst = str(ipaddress.IPv4Address(data[16:20]))
        body = data[ihl : total or len(data)]
    elif version == 6:
        if len(data) < 40:
            return None
        tos = ((data[0] & 0x0F) << 4) | (data[1] >> 4)
        plen = struct.unpack("!H", data[4:6])[0]
        proto = data[6]
        src = str(ipaddress.IPv6Address(data[8:24]))
        dst = str(ipaddress.IPv6Address(data[24:40]))
        body = data[40 : 40 + plen]
    else:
        return None
    sport = dport = 0
    payload = body
    if proto in (6, 17) and len(body) >= 4:
        sport, dport = struct.unpack("!HH", body[:4])
        if proto == 17:
            payload = body[8:]
        else:
            offset = (body[12] >> 4) * 4 if len(body) > 12 else len(body)
            payload = body[offset:]
    return Packet(ts, src, sport, dst, dport, tos, bytes(payload), proto, vlan_pcp)


def _link_payload(linktype: int, frame: bytes) -> tuple[bytes | None, int | None]:
    """Strip the link header: (IP packet or None, 802.1p PCP if tagged)."""
    pcp = None
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            return None, None
        ethertype = struct.unpack("!H", frame[12:14])[0]
        offset = 14
        while ethertype in _ETH_VLAN and len(frame) >= offset + 4:
            tci = struct.unpack("!H", frame[offset : offset + 2])[0]
            pcp = tci >> 13
            ethertype = struct.unpack("!H", frame[offset + 2 : offset + 4])[0]
            offset += 4
        if ethertype not in (_ETH_IPV4, _ETH_IPV6):
            return None, pcp
        return frame[offset:], pcp
    if linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < 16:
            return None, None
        proto = struct.unpack("!H", frame[14:16])[0]
        return (frame[16:] if proto in (_ETH_IPV4, _ETH_IPV6) else None), None
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20:
            return None, None
        proto = struct.unpack("!H", frame[0:2])[0]
        return (frame[20:] if proto in (_ETH_IPV4, _ETH_IPV6) else None), None
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        return frame[4:], None
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, 12, 14):
        return frame, None
    return None, None


def read_pcap(data: bytes) -> list[Packet]:
    """Parse a classic pcap file (either byte order, µs or ns); stop at a torn record."""
    if len(data) < 24:
        return []
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError("not a pcap file (pcapng is not supported: use tcpdump -w)")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    packets = []
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[pos : pos + 16])
        pos += 16
        if pos + incl > len(data):
            break  # tcpdump is still writing this record
        frame = data[pos : pos + incl]
        pos += incl
        ts = sec + frac / (1e9 if nano else 1e6)
        ip, pcp = _link_payload(linktype, frame)
        if ip is None:
            continue
        packet = _ip_packet(ip, ts, pcp)
        if packet is not None:
            packets.append(packet)
    return packets


class Capture:
    """tcpdump -w on `iface` (in `netns` if given) as a context manager.

    with Capture(bpf="udp port 5060") as cap: ...; cap.packets()
    packets() may be called while capturing: tcpdump runs with --immediate-mode
    and -U, so a packet is in the file within milliseconds of being sent.
    """

    def __init__(
        self,
        iface: str = "lo",
        bpf: str = "udp",
        netns: str | None = None,
        *,
        snaplen: int = 0,
    ) -> None:
        self.iface = iface
        self.bpf = bpf
        self.netns = netns
        self.snaplen = snaplen
        self._dir = Path(tempfile.mkdtemp(prefix="kpn-cap-"))
        self.path = self._dir / "capture.pcap"
        self._stderr = self._dir / "tcpdump.err"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 5.0) -> None:
        """Start tcpdump and wait until it is listening."""
        tcpdump = shutil.which("tcpdump")
        if tcpdump is None:
            raise RuntimeError("tcpdump not found: run inside the environment (scripts/run)")
        prefix: Sequence[str] = ("nsenter", f"--net=/run/netns/{self.netns}") if self.netns else ()
        # --immediate-mode: libpcap hands each packet over at once (without it
        # the kernel ring buffer is read ~1 s late); -U: write each packet to
        # the file at once; -Z root: keep the rights to our file;
        # -n: no name lookups (no traffic of our own).
        cmd = [
            *orphan_guard(),
            *prefix,
            tcpdump,
            "-i",
            self.iface,
            "-n",
            "--immediate-mode",
            "-U",
            "-Z",
            "root",
            "-s",
            str(self.snaplen),
            "-w",
            str(self.path),
            self.bpf,
        ]
        with self._stderr.open("wb") as err:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"tcpdump exited: {self._stderr.read_text(errors='replace')}")
            if "listening on" in self._stderr.read_text(errors="replace"):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("tcpdump did not start listening")

    def stop(self) -> None:
        """Stop tcpdump (SIGINT, so the file is complete); idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGINT)
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                proc.wait()

    def cleanup(self) -> None:
        """Stop and delete the capture file."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Capture:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # Keep the file: packets() is usually called after the with block.
        self.stop()

    def __del__(self) -> None:
        if self._proc is not None:
            self.stop()

    def packets(self) -> list[Packet]:
        """Every captured IP packet so far."""
        try:
            return read_pcap(self.path.read_bytes())
        except FileNotFoundError:
            return []

    def sip(self) -> list[tuple[Packet, str]]:
        """Packets whose payload is a SIP message, with the message text."""
        out = []
        for packet in self.packets():
            text = packet.payload.decode("utf-8", errors="replace")
            first = text.split("\r\n", 1)[0]
            if first.startswith("SIP/2.0 ") or first.endswith(" SIP/2.0"):
                out.append((packet, text))
        return out

    def wait_for(
        self,
        predicate: Callable[[list[Packet]], bool],
        timeout: float = 5.0,
        *,
        settle: float = 0.0,
    ) -> list[Packet]:
        """Poll packets() until predicate(packets) is true; return them.

        `settle` s after that, the packets are read once more (late ones join).
        """
        seen: list[Packet] = []

        def probe() -> list[Packet] | None:
            seen[:] = self.packets()
            return seen if predicate(seen) else None

        packets = wait_until(
            probe, timeout, lambda: f"capture: condition not met ({len(seen)} packets)"
        )
        if settle:
            time.sleep(settle)
            packets = self.packets()
        return packets
