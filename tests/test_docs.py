"""The docs that name code stay true to it: docs/kpn-profile.md and docs/architecture.md.

docs/kpn-profile.md has one table row per KPN requirement K1..K26: its value
(the constants of kpn_line/profile.py, compared with the module's real
values), the modules that enforce it (each must exist and cite the id) and the
tests that prove it (each must exist and cite the id in its own source).  A
renamed module, a moved test or a changed value fails here, with the row named.
docs/architecture.md may only name files and folders that exist.
"""

from __future__ import annotations

import ast
from pathlib import Path
import re
import runpy

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
INTEGRATION = ROOT / "custom_components" / "kpn_voip"
TESTS = ROOT / "tests"
PROFILE_DOC = ROOT / "docs" / "kpn-profile.md"
ARCHITECTURE_DOC = ROOT / "docs" / "architecture.md"
REQUIREMENT_IDS = [f"K{n}" for n in range(1, 27)]
# A requirement with nothing the integration could be tested for: what the
# table's test cell says instead of a test.
UNTESTABLE = {"K11": "none: router side"}

# "K5", "K5_PASSWORD_MIN_LENGTH", and ranges "K12-K15" / "K1-6" count as citing.
_CITATION = re.compile(r"\bK(\d{1,2})(?:\s*[-\u2013]\s*K?(\d{1,2}))?(?![0-9A-Za-z])")
_ROW = re.compile(r"^\|\s*(K\d+)\s*\|(.*)\|\s*$")
_CODE = re.compile(r"`([^`]+)`")
_ASSIGNMENT = re.compile(r"^(K\d+_[A-Z0-9_]+)\s*=\s*(.+)$")


def cited_ids(text: str) -> set[str]:
    """Every K-id `text` cites, ranges expanded."""
    out: set[str] = set()
    for match in _CITATION.finditer(text):
        first = int(match[1])
        last = int(match[2]) if match[2] else first
        if 1 <= first <= last <= 26:
            out.update(f"K{n}" for n in range(first, last + 1))
    return out


def profile_rows() -> dict[str, list[str]]:
    """The table of docs/kpn-profile.md: id -> [what, value, enforced in, proven by]."""
    rows: dict[str, list[str]] = {}
    for line in PROFILE_DOC.read_text().splitlines():
        if (match := _ROW.match(line)) is None:
            continue
        cells = [cell.strip() for cell in match[2].split("|")]
        assert len(cells) == 4, f"{match[1]}: expected 5 columns, got {len(cells) + 1}"
        assert match[1] not in rows, f"{match[1]} has two rows"
        rows[match[1]] = cells
    return rows


def _module_path(name: str) -> Path:
    """A module cell: relative to custom_components/kpn_voip/, or to the repository."""
    inside = INTEGRATION / name
    return inside if inside.exists() else ROOT / name


def _test_source(file: Path, name: str) -> str | None:
    """The source of test function `name` in `file` (decorators included), or None."""
    source = file.read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            assert node.end_lineno is not None
            return "\n".join(source.splitlines()[first - 1 : node.end_lineno])
    return None


def test_citation_parser() -> None:
    assert cited_ids("K5_PASSWORD_MIN_LENGTH, K12-K15; (K1-6)") == {
        "K5",
        "K12",
        "K13",
        "K14",
        "K15",
        "K1",
        "K2",
        "K3",
        "K4",
        "K6",
    }
    assert cited_ids("K260 XK3 K3a K0") == set()


def test_every_requirement_has_one_row_in_order() -> None:
    assert list(profile_rows()) == REQUIREMENT_IDS


@pytest.mark.parametrize("kid", REQUIREMENT_IDS)
def test_values_are_the_profile_modules(kid: str) -> None:
    """Each `K.._NAME = value` in the value cell is what kpn_line/profile.py holds."""
    profile = runpy.run_path(str(INTEGRATION / "kpn_line" / "profile.py"))
    value_cell = profile_rows()[kid][1]
    assignments = [m for code in _CODE.findall(value_cell) if (m := _ASSIGNMENT.match(code))]
    assert assignments, f"{kid}: the value cell names no profile constant"
    for match in assignments:
        name, text = match[1], match[2]
        assert name.startswith(kid + "_"), f"{kid}: {name} belongs to another requirement"
        assert name in profile, f"{kid}: kpn_line/profile.py has no {name}"
        assert profile[name] == ast.literal_eval(text), f"{kid}: {name} is {profile[name]!r}"


@pytest.mark.parametrize("kid", REQUIREMENT_IDS)
def test_enforcing_modules_exist_and_cite_the_requirement(kid: str) -> None:
    names = _CODE.findall(profile_rows()[kid][2])
    assert names, f"{kid}: no module named"
    for name in names:
        path = _module_path(name)
        assert path.is_file(), f"{kid}: {name} does not exist"
        cited = cited_ids(path.read_text())
        assert kid in cited, f"{kid}: {name} does not cite {kid}"


@pytest.mark.parametrize("kid", REQUIREMENT_IDS)
def test_proving_tests_exist_and_cite_the_requirement(kid: str) -> None:
    cell = profile_rows()[kid][3]
    tests = _CODE.findall(cell)
    if kid in UNTESTABLE:
        assert not tests, f"{kid}: a test for it? then take it off UNTESTABLE"
        assert cell.startswith(UNTESTABLE[kid]), f"{kid}: say why there is no test"
        return
    assert tests, f"{kid}: no test named"
    for test in tests:
        file_name, _, function = test.partition("::")
        file = TESTS / file_name
        assert file.is_file(), f"{kid}: tests/{file_name} does not exist"
        source = _test_source(file, function)
        assert source is not None, f"{kid}: tests/{file_name} has no {function}"
        cited = cited_ids(source)
        assert kid in cited, f"{kid}: {test} does not cite {kid}"


def test_architecture_names_only_what_exists() -> None:
    """Every path in docs/architecture.md (in backticks, with a / or a .py/.md/.cfg) exists.

    A bare file name counts when it is in one of the packages the page describes.
    """
    text = re.sub(r"```.*?```", "", ARCHITECTURE_DOC.read_text(), flags=re.DOTALL)
    homes = [ROOT, INTEGRATION, INTEGRATION / "kpn_line", ROOT / "kpn_devtools"]
    paths = {
        code
        for code in _CODE.findall(text)
        if re.fullmatch(r"[\w./-]+", code)
        and ("/" in code or code.endswith((".py", ".md", ".cfg")))
    }
    assert len(paths) > 10
    missing = sorted(p for p in paths if not any((home / p).exists() for home in homes))
    assert not missing, f"docs/architecture.md names what does not exist: {missing}"


def test_readme_introduction_names_every_action() -> None:
    """The README's first screen (before the first heading "##") names every action a
    user can call; it used to say the integration "does not play or record audio"
    after play, say and record had landed."""
    services = yaml.safe_load((INTEGRATION / "services.yaml").read_text())
    intro = (ROOT / "README.md").read_text().split("\n## ", 1)[0]
    # stop_playback belongs with play; every other action is named.
    missing = [
        name
        for name in services
        if name != "stop_playback" and not re.search(rf"`(kpn_voip\.)?{name}`", intro)
    ]
    assert missing == [], f"not in the README's introduction: {missing}"
    assert "does not play or record" not in intro
