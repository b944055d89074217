"""`python -m kpn_devtools standin|call|develop|screenshots [options]`.

The commands behind scripts/standin, scripts/call, scripts/develop and
scripts/screenshots; the scripts run them with the checkout and
custom_components/kpn_voip on PYTHONPATH (`kpn_devtools.python_path()`), since
the stand-in takes KPN's values from `kpn_line.profile`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import importlib.util
import sys

from . import python_path

COMMANDS = ("standin", "call", "develop", "screenshots")


def _command(name: str) -> Callable[[Sequence[str] | None], int]:
    if name == "standin":
        from .kamailio import main as standin_main

        return standin_main
    if name == "call":
        from .sipp import main as call_main

        return call_main
    if name == "screenshots":
        from .screenshots import main as screenshots_main

        return screenshots_main
    from .develop import main as develop_main

    return develop_main


def main(argv: Sequence[str]) -> int:
    """Run the command named by argv[0] with the rest; 2 and a usage line if unknown."""
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m kpn_devtools {{{'|'.join(COMMANDS)}}} [options]", file=sys.stderr)
        return 2
    if importlib.util.find_spec("kpn_line") is None:
        print(
            "kpn_line is not importable: run through scripts/standin, scripts/call or "
            f"scripts/develop, or with PYTHONPATH={python_path()}",
            file=sys.stderr,
        )
        return 2
    return _command(argv[0])(list(argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
