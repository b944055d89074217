"""K22 on the wire: DSCP 46 (TOS 0xB8) and SO_PRIORITY 5 on SIP and RTP/RTCP, K19 ports."""

from __future__ import annotations

import asyncio
import re
import shutil

import pytest

from custom_components.kpn_voip.kpn_line.profile import (
    K19_RTP_PORT_MAX,
    K19_RTP_PORT_MIN,
    K22_TOS_BYTE,
)
from custom_components.kpn_voip.kpn_line.protocol import CallState
import kpn_devtools.kamailio
from kpn_devtools.netns import Netns
import kpn_devtools.sipp
from kpn_devtools.sipp import SippUas, render_scenario

from .conftest import LineFactory, engine_command, engine_port

pytestmark = pytest.mark.timeout(90)

RTP = f"{K19_RTP_PORT_MIN}-{K19_RTP_PORT_MAX}"


async def test_tos_b8_on_sip_and_rtp(kamailio_factory, sipp, capture, line_factory: LineFactory):
    """Every SIP and RTP/RTCP packet the engine sends carries TOS 0xB8; RTP ports in K19's range."""
    callee = sipp.uas(answer_after=0.2)
    kam = kamailio_factory(forward_to=callee.address)
    cap = capture(bpf="udp")
    line = await line_factory(kam.line_settings())
    sip_port = engine_port(line)
    call_id = await line.client.dial("0201234567")
    await line.wait_call(CallState.ANSWERED, call_id)
    await asyncio.sleep(2.0)  # hangup_after is a ringing limit: the line hangs up here
    await line.client.hangup(call_id)
    await line.wait_call(CallState.ENDED, call_id, timeout=10)
    packets = cap.packets()
    sip = [p for p in packets if p.sport == sip_port and p.src == "127.0.0.1"]
    assert len(sip) >= 4  # REGISTERs, INVITEs, ACK, BYE
    assert {p.tos for p in sip} == {K22_TOS_BYTE}
    invite = callee.wait_invites(1)[0]
    rtp_port = int(re.search(r"m=audio (\d+)", invite).group(1))
    assert K19_RTP_PORT_MIN <= rtp_port <= K19_RTP_PORT_MAX
    media = [p for p in packets if p.sport in (rtp_port, rtp_port + 1)]
    rtp = [p for p in media if p.sport == rtp_port]
    assert len(rtp) >= 20, len(rtp)  # 20 ms packets for ~2 s (K20, no VAD)
    assert {p.tos for p in media} == {K22_TOS_BYTE}


@pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft")
async def test_so_priority_5_in_netns(
    netns: Netns, kamailio_factory, sipp, capture, line_factory: LineFactory, monkeypatch
):
    """K22: skb priority 5 on the engine's SIP and RTP packets, counted by nftables in a netns.

    Kamailio, SIPp and the engine all run inside the namespace.
    """
    monkeypatch.setattr(kpn_devtools.kamailio, "orphan_guard", lambda: list(netns.prefix))
    monkeypatch.setattr(kpn_devtools.sipp, "orphan_guard", lambda: list(netns.prefix))
    sip_port = 5099
    script = "\n".join(
        [
            "table inet kpn_k22 {",
            "  chain out {",
            "    type filter hook output priority 0; policy accept;",
            f'    udp sport {sip_port} meta priority 0:5 counter comment "sip5"',
            f'    udp sport {sip_port} meta priority != 0:5 counter comment "sipx"',
            f'    udp sport {RTP} meta priority 0:5 counter comment "rtp5"',
            f'    udp sport {RTP} meta priority != 0:5 counter comment "rtpx"',
            "  }",
            "}",
        ]
    )
    netns.run(["nft", "-f", "-"], input=script)
    # sipp.uas() checks the port from outside the namespace: start the same callee by hand.
    values = {
        "ANSWER_MS": "200",
        "REJECT_CODE": "500",
        "REJECT_JUMP": "",
        "CODEC_PT": "8",
        "CODEC_NAME": "PCMA/8000",
    }
    scenario = render_scenario("uas", values, sipp.workdir)
    callee = sipp._run(SippUas, "uas", ["-sf", str(scenario), "-rtp_echo", *sipp._media_args()])
    await asyncio.sleep(0.5)
    kam = kamailio_factory(forward_to=callee.address)
    cap = capture(bpf="udp", netns=netns.name)
    line = await line_factory(
        kam.line_settings(local_port=sip_port), command=engine_command(netns.prefix)
    )
    call_id = await line.client.dial("0201234567")
    await line.wait_call(CallState.ANSWERED, call_id)
    await asyncio.sleep(1.5)
    await line.client.hangup(call_id)
    await line.wait_call(CallState.ENDED, call_id, timeout=10)
    await asyncio.sleep(0.2)
    counts = _counters(netns)
    assert counts["sip5"] >= 4, counts
    assert counts["rtp5"] >= 20, counts
    assert counts["sipx"] == 0, counts
    assert counts["rtpx"] == 0, counts
    # and the TOS byte inside the namespace too
    mine = [p for p in cap.packets() if p.sport == sip_port]
    assert mine
    assert {p.tos for p in mine} == {K22_TOS_BYTE}


def _counters(netns: Netns) -> dict[str, int]:
    import json

    out = netns.run(["nft", "-j", "list", "table", "inet", "kpn_k22"]).stdout
    counts: dict[str, int] = {}
    for item in json.loads(out)["nftables"]:
        rule = item.get("rule")
        if not rule or "comment" not in rule:
            continue
        for expr in rule["expr"]:
            if "counter" in expr:
                counts[rule["comment"]] = int(expr["counter"]["packets"])
    return counts
