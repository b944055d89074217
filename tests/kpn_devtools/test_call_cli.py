"""scripts/call's arguments: a display name it cannot send is said as such."""

from __future__ import annotations

import pytest

from kpn_devtools import sipp


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ('Say "hi"', "quotes"),
        ("back\\slash", "backslashes"),
        ("two\nlines", "line breaks"),
    ],
)
def test_call_refuses_a_display_name_it_cannot_send(
    name: str, says: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quote in NAME used to end in "no answer from the stand-in: is scripts/standin
    running?" (the stand-in dropped the broken From): now the usage error names the
    field and what is wrong, before any SIPp starts."""
    started: list[object] = []
    monkeypatch.setattr(sipp.Sipp, "call_line", lambda *args, **kwargs: started.append(args))
    with pytest.raises(SystemExit) as exited:
        sipp.main(["+31612345678", name])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "NAME" in err
    assert says in err
    assert "standin" not in err
    assert started == []


@pytest.mark.parametrize("name", ["Test caller", "Jan de Vries-Özdemir", "O'Brien (werk)"])
def test_call_accepts_ordinary_display_names(name: str) -> None:
    """Apostrophes, brackets, accents and dashes are fine in a quoted-string."""
    assert sipp.display_name_problem(name) is None
