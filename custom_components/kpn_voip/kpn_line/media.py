"""A call's media: what each call offers and accepts in SDP.

* every call carries one audio stream, no video and no text (pjsua2 2.17
  offers m=text by default);
* K20: pjsua sets a 20 ms ptime but never writes a=ptime: we add it to each
  audio section of our SDP;
* K17: an offer with a T.38 (m=image) stream is declined 488, the call goes on.

Playing, recording and DTMF on a call: audio.py.
"""

from __future__ import annotations

from typing import Any, Final

from .profile import K17_FAX_REJECT_CODE, K20_PTIME_MS
from .stdio import LOGGER

_SDP_PTIME: Final = f"a=ptime:{K20_PTIME_MS}"


def set_call_media(opt: Any) -> None:
    """One audio stream, no video, no text, on a pjsua2 CallSetting `opt`."""
    opt.audioCount = 1
    opt.videoCount = 0
    opt.textCount = 0  # pjsua2 2.17 offers m=text (T.140) by default


def add_ptime(prm: Any) -> None:
    """Add a=ptime:20 to every audio section of the SDP pjsua created (K20).

    `prm`: pjsua2's OnCallSdpCreatedParam.
    """
    sdp = str(prm.sdp.wholeSdp)
    new = add_ptime_to_sdp(sdp)
    if new != sdp:
        prm.sdp.wholeSdp = new


def add_ptime_to_sdp(sdp: str) -> str:
    """`sdp` with a=ptime:20 at the end of each m=audio section that lacks one."""
    lines = sdp.replace("\r\n", "\n").rstrip("\n").split("\n")
    out: list[str] = []
    in_audio = has_ptime = False
    for line in [*lines, "m=end"]:
        if line.startswith("m="):
            if in_audio and not has_ptime:
                out.append(_SDP_PTIME)
            in_audio = line.startswith("m=audio")
            has_ptime = False
        elif in_audio and line.startswith("a=ptime:"):
            has_ptime = True
        out.append(line)
    return "\r\n".join(out[:-1]) + "\r\n"


def reject_fax(prm: Any) -> None:
    """K17: an offer with an image (T.38) stream is answered 488.

    `prm`: pjsua2's OnCallRxOfferParam or OnCallRxReinviteParam.
    """
    if "m=image" in str(prm.offer.wholeSdp):
        LOGGER.info("declining a T.38 (fax) offer with %s (K17)", K17_FAX_REJECT_CODE)
        prm.statusCode = K17_FAX_REJECT_CODE
