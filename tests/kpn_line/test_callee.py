"""The other party of an outgoing call (issue 12: outgoing events match the README)."""

from __future__ import annotations

import pytest

from custom_components.kpn_voip.kpn_line.callerid import callee_id
from custom_components.kpn_voip.kpn_line.numbers import dial_string
from custom_components.kpn_voip.kpn_line.protocol import CallerId


@pytest.mark.parametrize(
    ("typed", "hide", "number", "national"),
    [
        ("06-1234 5678", False, "+31612345678", "0612345678"),
        ("06 1234 5678", True, "+31612345678", "0612345678"),  # K26: *31* is not theirs
        ("+31 (0)20 123 4567", False, "+31201234567", "0201234567"),
        ("0044 20 7946 0000", False, "+442079460000", "00442079460000"),
        ("112", False, "112", "112"),
        ("14020", True, "14020", "14020"),
    ],
)
def test_callee_in_the_callers_forms(typed: str, hide: bool, number: str, national: str) -> None:
    """number is E.164 where it can be, national its national form, as for a caller (K16)."""
    assert callee_id(dial_string(typed, hide_caller_id=hide)) == CallerId(
        number=number, national=national, name=None, anonymous=False
    )
