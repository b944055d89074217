"""The kpn-voip-pjsua2 wheels are self-contained and say what they are (issue #10).

Each wheel must run where its platform tag promises: the ELF files may need
only the libraries the tag's policy allows (PEP 600 / PEP 656, as auditwheel
encodes them), no glibc symbol newer than the tag, and must export nothing
but the module's init function (a static C++ runtime that leaks its symbols
clashes with other extension modules).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from pathlib import Path
import re
import subprocess
import zipfile

import pytest

from .conftest import TARGETS, wheel_for

_LOADERS = {
    "x86_64": {"ld-linux-x86-64.so.2"},
    "aarch64": {"ld-linux-aarch64.so.1"},
}


def _elf_members(wheel: Path, tmp_path: Path) -> list[Path]:
    out = []
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            data = archive.read(name)
            if data[:4] == b"\x7fELF":
                path = tmp_path / Path(name).name
                path.write_bytes(data)
                out.append(path)
    return out


def _readelf(*args: str) -> str:
    return subprocess.run(
        ["readelf", "--wide", *args], capture_output=True, text=True, check=True
    ).stdout


def policy_whitelist(tools: Path, target: str) -> set[str]:
    """The libraries a target's policy allows, from auditwheel's policy files."""
    parsed = re.fullmatch(r"(\w+?linux)_(\d+)_(\d+)_(\w+)", target)
    assert parsed, target
    family, major, minor, arch = parsed.groups()
    policy_dir = next(tools.glob("lib/python3*/site-packages/auditwheel/policy"))
    policies = json.loads((policy_dir / f"{family}-policy.json").read_text())
    (policy,) = [p for p in policies if p["name"] == f"{family}_{major}_{minor}"]
    allowed = set(policy["lib_whitelist"])
    if family == "musllinux":
        # auditwheel applies the policy's musl `libc.so` as Alpine's soname.
        allowed = {f"libc.musl-{arch}.so.1" if lib == "libc.so" else lib for lib in allowed}
    return allowed


def needed_outside_policy(elf: Path, allowed: set[str]) -> set[str]:
    """DT_NEEDED entries of `elf` that are not in `allowed`."""
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", _readelf("-d", str(elf))))
    return needed - allowed


@pytest.mark.parametrize("target", TARGETS)
def test_wheel_needs_only_what_its_policy_allows(
    target: str, wheelhouse: Path, build_tools: Path, tmp_path: Path
) -> None:
    """Every ELF file's libraries are in the policy (plus the C library's loader)."""
    wheel = wheel_for(wheelhouse, target)
    arch = "aarch64" if target.endswith("aarch64") else "x86_64"
    allowed = policy_whitelist(build_tools, target) | _LOADERS[arch]
    elves = _elf_members(wheel, tmp_path)
    assert elves, f"{wheel.name} holds no extension module"
    for elf in elves:
        assert not needed_outside_policy(elf, allowed), elf.name


def test_policy_check_catches_a_foreign_library(build_tools: Path, tmp_path: Path) -> None:
    """The check above fails for a module linked against a library outside the policy."""
    # The environment's own libpython is linked against libexpat/libz only;
    # Debian's _ssl module needs libssl, which no manylinux policy allows.
    import _ssl

    allowed = policy_whitelist(build_tools, "manylinux_2_28_x86_64")
    outside = needed_outside_policy(Path(_ssl.__file__), allowed)
    assert any(name.startswith("libssl") for name in outside)


@pytest.mark.parametrize("target", TARGETS)
def test_auditwheel_confirms_the_tag(target: str, wheelhouse: Path, build_tools: Path) -> None:
    """`auditwheel show` finds the wheel consistent with its tag (or an older one)."""
    wheel = wheel_for(wheelhouse, target)
    out = subprocess.run(
        [str(build_tools / "bin" / "auditwheel"), "show", str(wheel)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r'platform tag:\s*"(\w+?linux)_(\d+)_(\d+)_(\w+)"', out.replace("\n", " "))
    assert found, out
    want = re.fullmatch(r"(\w+?linux)_(\d+)_(\d+)_(\w+)", target)
    assert want
    assert (found[1], found[4]) == (want[1], want[4])
    assert (int(found[2]), int(found[3])) <= (int(want[2]), int(want[3]))


@pytest.mark.parametrize("target", TARGETS)
def test_wheel_exports_only_the_module_init(target: str, wheelhouse: Path, tmp_path: Path) -> None:
    """Static pjproject and libc++ stay private: one exported symbol."""
    wheel = wheel_for(wheelhouse, target)
    (elf,) = _elf_members(wheel, tmp_path)
    defined = [
        line.split()[-1]
        for line in _readelf("--dyn-syms", str(elf)).splitlines()
        if re.search(r"\b(FUNC|OBJECT)\s+GLOBAL\s+DEFAULT\s+\d+\s", line)
    ]
    assert defined == ["PyInit__pjsua2"]
    if target.startswith("manylinux"):
        versions = {
            tuple(int(p) for p in v.split("."))
            for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", _readelf("-V", str(elf)))
        }
        assert max(versions) <= (2, 28)


@pytest.mark.parametrize("target", TARGETS)
def test_wheel_metadata_license_and_record(target: str, wheelhouse: Path) -> None:
    """Our own name, importable as pjsua2, GPL license texts, a valid RECORD."""
    wheel = wheel_for(wheelhouse, target)
    assert wheel.name.endswith(f"-cp314-cp314-{target}.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        meta = archive.read(f"{dist_info}/METADATA").decode()
        record = list(csv.reader(io.StringIO(archive.read(f"{dist_info}/RECORD").decode())))
        for name, digest, size in record:
            if name.endswith("/RECORD"):
                continue
            data = archive.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == "sha256=" + expected.decode(), name
            assert int(size) == len(data)
        assert {r[0] for r in record} == set(names)
    assert "Name: kpn-voip-pjsua2\n" in meta
    assert "License-Expression: GPL-2.0-or-later" in meta
    assert f"{dist_info}/licenses/pjproject-COPYING" in names
    assert "pjsua2.py" in names
    assert any(re.fullmatch(r"_pjsua2\.cpython-314-\w+-linux-(gnu|musl)\.so", n) for n in names)
    # The README names the source and the options it was built with.
    assert "--disable-ssl" in meta
    assert "asterisk_" in meta
    assert "Xpjproject" in meta
