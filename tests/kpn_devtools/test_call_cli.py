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


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--ring", "-5"], "--ring: '-5': give seconds more than 0"),
        (["--ring", "0"], "--ring: '0': give seconds more than 0"),
        (["--talk", "nan"], "--talk: 'nan': give seconds more than 0"),
        (["--ring", "soon"], "--ring: 'soon' is no number of seconds"),
        (["--port", "70000"], "--port: '70000': a port is a number from 1 to 65535"),
        (["hello"], "NUMBER: 'hello' is no phone number"),
        (["06-1234x"], "NUMBER: '06-1234x' is no phone number"),
        (["sip:+31612345678@host"], "is no phone number"),
        (["+31" + "6" * 20], "is too long"),  # longer than E.164's 15 digits
        (["020 123 45678"], "'020 123 45678' is too long: a Dutch number has ten digits"),
    ],
)
def test_call_refuses_bad_arguments_before_calling(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scripts/call --ring -5` went on (SIPp with a negative pause) and a caller that is
    no number went into the INVITE's From and P-Asserted-Identity: both are argparse
    usage errors now (exit 2) naming the argument, before any SIPp starts."""
    started: list[object] = []
    monkeypatch.setattr(sipp.Sipp, "call_line", lambda *args, **kwargs: started.append(args))
    with pytest.raises(SystemExit) as exited:
        sipp.main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "usage: scripts/call" in err
    assert says in err
    assert started == []


@pytest.mark.parametrize(
    ("text", "number"),
    [("+31612345678", "+31612345678"), ("06-1234 5678", "0612345678"), ("112", "112")],
)
def test_call_takes_numbers_as_kpn_presents_them(text: str, number: str) -> None:
    """K16: E.164, national and short numbers; visual separators removed."""
    assert sipp.caller_number(text) == number
    assert sipp.seconds("2.5") == 2.5
    assert sipp.udp_port("5070") == 5070
