"""The capture and netns fixtures see what the kernel really sends (K22)."""

from __future__ import annotations

from collections.abc import Callable
import socket
import struct
import sys
import time

import pytest

from kpn_devtools.capture import Capture, read_pcap
from kpn_devtools.netns import Netns
from kpn_devtools.ports import free_udp_port

pytestmark = pytest.mark.peers

EF_TOS = 46 << 2

SENDER = """
import socket, sys
port, tos, prio, count = (int(a) for a in sys.argv[1:5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
if prio >= 0:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY, prio)
for i in range(count):
    s.sendto(b"probe %d" % i, ("127.0.0.1", port))
"""


def test_capture_sees_tos_ports_and_payload(
    capture: Callable[..., Capture], socket_enabled: None
) -> None:
    port = free_udp_port()
    cap = capture(bpf=f"udp port {port}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, EF_TOS)
        sender.bind(("127.0.0.1", 0))
        sport = sender.getsockname()[1]
        sender.sendto(b"OPTIONS sip:x SIP/2.0\r\n\r\n", ("127.0.0.1", port))
        sender.sendto(b"plain", ("127.0.0.1", port))
    packets = cap.wait_for(lambda p: len(p) >= 2)
    assert [(p.src, p.sport, p.dst, p.dport) for p in packets] == [
        ("127.0.0.1", sport, "127.0.0.1", port)
    ] * 2
    assert {p.tos for p in packets} == {EF_TOS}
    assert packets[0].dscp == 46
    assert [p.payload for p in packets] == [b"OPTIONS sip:x SIP/2.0\r\n\r\n", b"plain"]
    assert [text.split("\r\n")[0] for _, text in cap.sip()] == ["OPTIONS sip:x SIP/2.0"]


def test_capture_sees_a_packet_at_once(
    capture: Callable[..., Capture], socket_enabled: None
) -> None:
    """--immediate-mode: no ~1 s delay, so packets() right after traffic has it."""
    port = free_udp_port()
    cap = capture(bpf=f"udp port {port}")
    delays = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for i in range(3):
            sent = time.monotonic()
            sender.sendto(b"now %d" % i, ("127.0.0.1", port))
            cap.wait_for(lambda p, n=i + 1: len(p) >= n, timeout=2.0)
            delays.append(time.monotonic() - sent)
    # Buffered libpcap delivers after its ~1 s block timeout (or 2 s when idle).
    assert max(delays) < 0.4, delays


def _pcap(linktype: int, frames: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for i, frame in enumerate(frames):
        out += struct.pack("<IIII", 100 + i, 5, len(frame), len(frame)) + frame
    return out


def _ipv4_udp(tos: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", 5060, 16384, 8 + len(payload), 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, tos, 20 + len(udp), 0, 0, 64, 17, 0,
        bytes([127, 0, 0, 1]), bytes([127, 0, 0, 2]),
    )  # fmt: skip
    return header + udp


@pytest.mark.parametrize(
    ("linktype", "link_header"),
    [
        (1, b"\0" * 12 + b"\x08\x00"),  # Ethernet (Linux lo)
        (113, b"\0" * 14 + b"\x08\x00"),  # Linux cooked v1 (-i any)
        (276, b"\x08\x00" + b"\0" * 18),  # Linux cooked v2
        (0, struct.pack("<I", 2)),  # BSD loopback
        (101, b""),  # raw IP
    ],
)
def test_pcap_reader_link_types(linktype: int, link_header: bytes) -> None:
    frame = link_header + _ipv4_udp(0xB8, b"hello")
    packets = read_pcap(_pcap(linktype, [frame, frame[:-3]]))
    assert len(packets) == 2
    first = packets[0]
    assert (first.src, first.sport, first.dst, first.dport) == (
        "127.0.0.1",
        5060,
        "127.0.0.2",
        16384,
    )
    assert (first.tos, first.payload, first.time) == (0xB8, b"hello", 100.000005)


def test_pcap_reader_stops_at_a_torn_record_and_reads_vlan_pcp() -> None:
    tagged = b"\0" * 12 + b"\x81\x00" + struct.pack("!H", (5 << 13) | 6) + b"\x08\x00"
    data = _pcap(1, [tagged + _ipv4_udp(0, b"x")])
    assert [p.vlan_pcp for p in read_pcap(data)] == [5]
    assert read_pcap(data[:-2]) == []


def _send_in(netns: Netns, port: int, *, tos: int, prio: int, count: int) -> None:
    netns.run([sys.executable, "-c", SENDER, str(port), str(tos), str(prio), str(count)])


@pytest.mark.netns
def test_netns_counts_only_priority_5(netns: Netns) -> None:
    netns.add_priority_counter(5)
    assert netns.priority_counts() == (0, 0)
    # DSCP 46 alone gives the kernel's own priority (not 5): must not count.
    _send_in(netns, 9, tos=EF_TOS, prio=-1, count=3)
    _send_in(netns, 9, tos=0, prio=6, count=2)
    assert netns.priority_counts() == (0, 5)
    _send_in(netns, 9, tos=EF_TOS, prio=5, count=4)
    assert netns.priority_counts() == (4, 5)
    assert netns.priority_packets() == 4


@pytest.mark.netns
def test_netns_capture_inside_namespace(netns: Netns, capture: Callable[..., Capture]) -> None:
    cap = capture(netns=netns.name, bpf="udp port 9")
    _send_in(netns, 9, tos=EF_TOS, prio=5, count=1)
    packets = cap.wait_for(lambda p: len(p) >= 1)
    assert [(p.dport, p.tos, p.payload) for p in packets] == [(9, EF_TOS, b"probe 0")]
