"""The engine package stands alone: no Home Assistant, relative imports only.

kpn_line runs in the engine child process and as a command-line tool, with
only custom_components/kpn_voip on sys.path (team brief, "Layout").
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
import subprocess
import sys

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "custom_components" / "kpn_voip" / "kpn_line"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")

# Runs in a fresh interpreter started with -I (no PYTHONPATH, no current
# directory, no user site): only the folder passed in argv[1] is added.
PROBE = """
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
modules = sys.argv[2:]
try:
    import pjsua2  # noqa: F401
    has_pjsua2 = True
except ImportError:
    has_pjsua2 = False
imported, failed = [], {}
for name in modules:
    try:
        importlib.import_module("kpn_line." + name)
        imported.append(name)
    except ImportError as err:
        failed[name] = repr(err)
print(json.dumps({
    "pjsua2": has_pjsua2,
    "imported": imported,
    "failed": failed,
    "modules": sorted(sys.modules),
}))
"""


def _probe(modules: list[str]) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, str(PACKAGE.parent), *modules],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=PACKAGE.anchor,  # far from the checkout: nothing found by accident
    )
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_package_has_the_expected_modules() -> None:
    """The probe below sees the modules this helper owns (the list is discovered)."""
    assert {"numbers", "settings", "callerid", "profile", "protocol"} <= set(MODULES)


def test_importing_every_module_leaves_homeassistant_out() -> None:
    """Every kpn_line module imports without homeassistant (pjsua2 only where it exists)."""
    data = _probe(MODULES)
    failed = data["failed"]
    assert isinstance(failed, dict)
    if data["pjsua2"]:
        assert failed == {}, failed
    else:
        # Without pjsua2 only modules that need it may fail, and only for it.
        for name, error in failed.items():
            assert "pjsua2" in error, (name, error)
    imported = data["imported"]
    assert isinstance(imported, list)
    assert {"numbers", "settings", "callerid", "profile", "protocol"} <= set(imported)
    loaded = data["modules"]
    assert isinstance(loaded, list)
    assert "kpn_line.numbers" in loaded  # the probe did import by that name
    offenders = [m for m in loaded if m.split(".")[0] in ("homeassistant", "custom_components")]
    assert offenders == []


def test_probe_would_see_homeassistant() -> None:
    """The probe is able to fail: importing HA in it shows up in sys.modules."""
    pytest.importorskip("homeassistant")
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            "import sys, homeassistant.const; print('homeassistant' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "True"


@pytest.mark.parametrize("name", [*MODULES, "__init__"])
def test_only_relative_imports_inside_the_package(name: str) -> None:
    """The package is imported as kpn_line and as custom_components.kpn_voip.kpn_line."""
    tree = ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            top = node.module.split(".")[0]
        elif isinstance(node, ast.Import):
            tops = {alias.name.split(".")[0] for alias in node.names}
            assert not tops & {"kpn_line", "custom_components", "homeassistant"}, ast.dump(node)
            continue
        else:
            continue
        assert top not in ("kpn_line", "custom_components", "homeassistant"), ast.dump(node)
