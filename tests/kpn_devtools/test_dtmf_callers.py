"""Callers that key in digits: the far end (pjsua2) without a file to play, and
`scripts/call --dtmf` (SIPp).  Both against the real line (its engine) through the
stand-in; the digits arrive as `dtmf` events in order, and on the wire they are RFC 2833
telephone-events (K15), never SIP INFO.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from custom_components.kpn_voip.kpn_line.profile import K1_DOMAIN
from custom_components.kpn_voip.kpn_line.protocol import CallState, DtmfEvent
from kpn_devtools import sipp
from kpn_devtools.capture import Packet
from kpn_devtools.farend import FarEnd
from kpn_devtools.kamailio import TEST_ACCOUNT, Kamailio
from kpn_devtools.sound import parse_rtp, telephone_events
from tests.kpn_line.conftest import (  # noqa: F401  (fixtures)
    Line,
    LineFactory,
    far_ends,
    line_factory,
)
from tests.kpn_line.test_engine_sound import sip_of, telephone_event_pt

pytestmark = [pytest.mark.peers, pytest.mark.timeout(120)]


def _digits(line: Line) -> list[str]:
    return [e.digit for e in line.events if isinstance(e, DtmfEvent)]


def _wire_digits(packets: list[Packet], to_port: int) -> list[str]:
    """The RFC 2833 digits in the RTP sent to `to_port` (the line's RTP port), with the
    telephone-event payload type of the SDP that named that port (the line's)."""
    rtp = [
        r
        for r in (parse_rtp(p.payload, p.time) for p in packets if p.dport == to_port)
        if r is not None
    ]
    return telephone_events(rtp, telephone_event_pt(sip_of(packets), to_port))


def _no_info(packets: list[Packet]) -> None:
    assert not [p for p in packets if p.payload.startswith(b"INFO ")]


async def test_far_end_keys_in_digits_without_playing_a_file(
    kamailio: Kamailio,
    capture,
    line_factory: LineFactory,  # noqa: F811
    far_ends: list[FarEnd],  # noqa: F811
    socket_enabled: None,
) -> None:
    """`--dtmf` without `--play` sent nothing: pjsua2 sends no RTP for a call whose audio
    has no source, and its RFC 2833 digits go in that stream.  The far end now sends
    silence as any phone does (K20), and its digits arrive at the line (K15)."""
    line = await line_factory(kamailio.line_settings())
    cap = capture(bpf="udp")
    far = FarEnd(
        call=f"sip:{TEST_ACCOUNT.number}@{K1_DOMAIN}",
        proxy=f"{kamailio.host}:{kamailio.port}",
        dtmf="159#",
        dtmf_at=0.5,
        hangup_after=4.0,
    )
    far_ends.append(far)
    ringing = await line.wait_call(CallState.RINGING, timeout=10)
    await line.client.answer(ringing.call_id)
    await line.wait(lambda e: len(_digits(line)) >= 4, timeout=10)
    assert _digits(line) == list("159#")
    assert {e.call_id for e in line.events if isinstance(e, DtmfEvent)} == {ringing.call_id}
    await line.wait_call(CallState.ENDED, ringing.call_id, timeout=10)
    media = next(e for e in far.events if e["event"] == "media")
    packets = cap.packets()
    assert _wire_digits(packets, media["remote_rtp_port"]) == list("159#")
    # and it sent sound all along, as a phone does: RTP before the first digit
    far_rtp = [p for p in packets if p.dport == media["remote_rtp_port"]]
    assert len(far_rtp) >= 100  # 20 ms packets for the 4 s of the call
    _no_info(packets)


async def test_scripts_call_keys_in_digits(
    kamailio: Kamailio,
    capture,
    line_factory: LineFactory,  # noqa: F811
    socket_enabled: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`scripts/call --dtmf 4711#`: once the line answers, SIPp keys the digits in as
    RFC 2833 telephone-events (K15); they arrive at the line as `dtmf` events in order."""
    line = await line_factory(kamailio.line_settings())
    cap = capture(bpf="udp")
    argv = ["--port", str(kamailio.port), "--ring", "10", "--talk", "3", "--dtmf", "4711#"]
    call = asyncio.create_task(asyncio.to_thread(sipp.main, argv))
    ringing = await line.wait_call(CallState.RINGING, timeout=10)
    assert ringing.caller.number == "+31612345678"  # the caller ID as before (K16)
    await line.client.answer(ringing.call_id)
    await line.wait(lambda e: len(_digits(line)) >= 5, timeout=10)
    assert _digits(line) == list("4711#")
    assert await asyncio.wait_for(call, 30) == 0
    assert "answered, keyed in 4711#" in capsys.readouterr().out
    packets = cap.packets()
    line_port = next(
        int(line.split()[1])
        for text in sip_of(packets)
        if text.startswith("SIP/2.0 200") and "m=audio " in text
        for line in text.splitlines()
        if line.startswith("m=audio ")
    )
    assert _wire_digits(packets, line_port) == list("4711#")
    _no_info(packets)


async def test_scripts_call_says_when_the_line_hung_up_first(
    kamailio: Kamailio,
    line_factory: LineFactory,  # noqa: F811
    socket_enabled: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The line answers and hangs up 0.5 s later, inside `--talk 20`: scripts/call says
    the line hung up first, not that it talked 20 s (a newcomer was told so)."""
    line = await line_factory(kamailio.line_settings())
    argv = ["--port", str(kamailio.port), "--ring", "10", "--talk", "20"]
    call = asyncio.create_task(asyncio.to_thread(sipp.main, argv))
    ringing = await line.wait_call(CallState.RINGING, timeout=10)
    await line.client.answer(ringing.call_id)
    await asyncio.sleep(0.5)
    await line.client.hangup(ringing.call_id)
    assert await asyncio.wait_for(call, 30) == 0
    out = capsys.readouterr().out
    assert "answered; the line hung up first" in out, out
    assert "talked" not in out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--dtmf", "12x"], "--dtmf: '12x': give 1 to 32 keypad digits"),
        (["--dtmf", ""], "--dtmf: '': give 1 to 32 keypad digits"),
        (["--dtmf", "1" * 33], "give 1 to 32 keypad digits"),
    ],
)
def test_call_refuses_digits_it_cannot_key_in(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A usage error (exit 2) naming --dtmf, before any SIPp starts."""
    started: list[object] = []
    monkeypatch.setattr(sipp.Sipp, "call_line", lambda *args, **kwargs: started.append(args))
    with pytest.raises(SystemExit) as exited:
        sipp.main(argv)
    assert exited.value.code == 2
    assert says in capsys.readouterr().err
    assert started == []
    assert sipp.dtmf_digits(" 12ab*# ") == "12AB*#"


def test_scripts_call_documents_dtmf() -> None:
    """The script's usage line and the devtools README name --dtmf."""
    root = Path(__file__).resolve().parents[2]
    assert "[--dtmf DIGITS]" in (root / "scripts" / "call").read_text()
    assert "[--dtmf DIGITS]" in (root / "kpn_devtools" / "README.md").read_text()
