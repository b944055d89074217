"""K16: every combination of From, P-Asserted-Identity and Privacy (RFC 3323 / RFC 3325).

The rule under test is written in kpn_line/callerid.py: Privacy `id`,
`header` or `user` hides the caller; otherwise an asserted identity is shown,
also behind an anonymous From (user-provided privacy covers From only).
"""

from __future__ import annotations

import itertools

import pytest

from custom_components.kpn_voip.kpn_line.callerid import PRIVACY_HIDING, CallerId, parse_caller_id

from .test_callerid import invite

FROMS = {
    "from-jan": 'From: "Jan" <sip:+31612345678@ims.imscore.net;user=phone>;tag=1',
    "from-anonymous": 'From: "Anonymous" <sip:anonymous@anonymous.invalid>;tag=1',
    "from-restricted": "From: <sip:restricted@ims.imscore.net>;tag=1",
    "from-named-anonymous": 'From: "Jan" <sip:anonymous@anonymous.invalid>;tag=1',
    "no-from": "",
}
PAI_SIP = 'P-Asserted-Identity: "Piet" <sip:+31201111111@ims.imscore.net;user=phone>'
PAI_SIP_NATIONAL = "P-Asserted-Identity: <sip:0201111111@ims.imscore.net;user=phone>"
PAI_TEL = "P-Asserted-Identity: <tel:+31202222222>"
PAIS: dict[str, tuple[str, ...]] = {
    "no-pai": (),
    "pai-sip": (PAI_SIP,),
    "pai-tel": (PAI_TEL,),
    "pai-sip+tel": (PAI_SIP, PAI_TEL),
    "pai-tel+sip-one-header": (
        'P-Asserted-Identity: <tel:+31202222222>, "Piet" <sip:+31201111111@ims.imscore.net>',
    ),
    "pai-sip-national+tel": (PAI_SIP_NATIONAL, PAI_TEL),
}
PRIVACIES = ["", "none", "id", "header", "user", "critical", "session", "id;critical"]


def expected(from_key: str, pai_key: str, privacy: str) -> CallerId:
    """The rule, spelled out independently of the parser."""
    tokens = set(privacy.split(";")) - {""}
    if tokens & {"id", "header", "user"}:  # RFC 3325 §9.3, RFC 3323 §4.2
        return CallerId(number=None, national=None, name=None, anonymous=True)
    from_name = "Jan" if from_key == "from-jan" else None  # an anonymous From names nobody
    if pai_key != "no-pai":  # RFC 3325 §9.1: the asserted identity, whatever From says
        tel = "tel" in pai_key
        number = "+31202222222" if tel else "+31201111111"
        name = "Piet" if "sip+" in pai_key or "tel+sip" in pai_key or pai_key == "pai-sip" else None
        return CallerId(
            number=number, national="0" + number[3:], name=name or from_name, anonymous=False
        )
    if from_key == "from-jan":
        return CallerId(number="+31612345678", national="0612345678", name="Jan", anonymous=False)
    return CallerId(number=None, national=None, name=None, anonymous=True)


COMBINATIONS = [
    pytest.param(f, p, v, id=f"{f}/{p}/privacy={v or 'absent'}")
    for f, p, v in itertools.product(FROMS, PAIS, PRIVACIES)
]


@pytest.mark.parametrize(("from_key", "pai_key", "privacy"), COMBINATIONS)
def test_every_combination(from_key: str, pai_key: str, privacy: str) -> None:
    """K16: the caller ID of each From x PAI x Privacy combination follows the rule."""
    headers = [h for h in (FROMS[from_key], *PAIS[pai_key]) if h]
    if privacy:
        headers.append(f"Privacy: {privacy}")
    assert parse_caller_id(invite(*headers)) == expected(from_key, pai_key, privacy)


def test_anonymous_from_with_an_asserted_number_shows_it() -> None:
    """The case of issue 9 item 16: anonymous From + PAI, no Privacy: the number shows."""
    result = parse_caller_id(invite(FROMS["from-anonymous"], PAI_TEL))
    assert result == CallerId(
        number="+31202222222", national="0202222222", name=None, anonymous=False
    )


def test_the_hiding_privacy_values_are_the_documented_ones() -> None:
    """id (RFC 3325), header and user (RFC 3323); none, session, critical hide nothing."""
    assert frozenset({"id", "header", "user"}) == PRIVACY_HIDING


def test_an_unusable_asserted_number_behind_an_anonymous_from_stays_anonymous() -> None:
    """A PAI whose number cannot be used names nobody: the anonymous From stands."""
    result = parse_caller_id(invite(FROMS["from-anonymous"], "P-Asserted-Identity: <tel:+316>"))
    assert result == CallerId(number=None, national=None, name=None, anonymous=True)
