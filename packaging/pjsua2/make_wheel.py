"""Assemble a reproducible wheel from a built package folder.

Used by scripts/build-wheels (no setuptools: the extension module is
cross-compiled, so the wheel is written directly, per the wheel format of
PEP 427, core metadata 2.4 and the license files of PEP 639).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
from pathlib import Path
import zipfile

# 1980-01-01, the earliest date a zip archive can hold: the wheel's bytes
# depend only on its contents.
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _metadata(args: argparse.Namespace, licenses: list[str]) -> str:
    readme = Path(args.readme).read_text(encoding="utf-8")
    build_info = Path(args.build_info).read_text(encoding="utf-8")
    lines = [
        "Metadata-Version: 2.4",
        f"Name: {args.name.replace('_', '-')}",
        f"Version: {args.version}",
        "Summary: pjsua2 (pjproject's SIP/RTP binding), a minimal static build for kpn_voip",
        "Home-page: https://github.com/kpn-voip/kpn_voip",
        "License-Expression: GPL-2.0-or-later AND BSD-2-Clause AND Apache-2.0 WITH LLVM-exception",
        *(f"License-File: {name}" for name in licenses),
        "Requires-Python: >=3.14,<3.15",
        "Description-Content-Type: text/markdown",
    ]
    body = readme.rstrip() + "\n\n## This build\n\n" + build_info
    return "\n".join(lines) + "\n\n" + body


def main() -> None:
    """Write `<name>-<version>-<tag>.whl` into --out."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--tag", required=True, help="python-abi-platform")
    parser.add_argument("--package-dir", required=True, help="top-level modules")
    parser.add_argument("--readme", required=True)
    parser.add_argument("--build-info", required=True)
    parser.add_argument("--license", action="append", default=[], help="SOURCE:NAME (repeatable)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    dist_info = f"{args.name}-{args.version}.dist-info"
    files: list[tuple[str, bytes]] = [
        (path.name, path.read_bytes())
        for path in sorted(Path(args.package_dir).iterdir())
        if path.is_file()
    ]
    licenses: list[str] = []
    for item in args.license:
        source, _, name = item.rpartition(":")
        files.append((f"{dist_info}/licenses/{name}", Path(source).read_bytes()))
        licenses.append(name)
    files.append((f"{dist_info}/METADATA", _metadata(args, licenses).encode()))
    wheel = (
        "Wheel-Version: 1.0\nGenerator: kpn_voip make_wheel.py\n"
        f"Root-Is-Purelib: false\nTag: {args.tag}\n"
    )
    files.append((f"{dist_info}/WHEEL", wheel.encode()))
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files)
    record += f"{dist_info}/RECORD,,\n"
    files.append((f"{dist_info}/RECORD", record.encode()))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{args.name}-{args.version}-{args.tag}.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            executable = name.endswith(".so")
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            archive.writestr(info, data)
    print(target)


if __name__ == "__main__":
    main()
