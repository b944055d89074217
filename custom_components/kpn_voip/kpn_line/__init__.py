"""The KPN line engine: pjsua2 in a child process, and its asyncio client.

This package never imports Home Assistant, so it can run in an add-on or on
its own (`python -m kpn_line.cli`).  Inside it, imports are relative only.

One name per process.  The package is imported as

* `kpn_line` in the engine child (`python -m kpn_line.engine`, started by the
  client with the kpn_voip folder on PYTHONPATH), in the command-line tool
  (`python -m kpn_line.cli`) and in scripted stand-ins of the engine;
* `custom_components.kpn_voip.kpn_line` in Home Assistant (through the
  integration's relative imports), and so in the test session, which runs
  Home Assistant.

A second name in the same process would load every module twice: two
`RegState` enums, two `LineSettings` classes, isinstance checks that fail
across them.  Importing the package under a second name raises ImportError.
"""

import os
import sys

PROTOCOL_VERSION = 3  # 2: set_call_policy, `refused` on call events; 3: sound on calls


def _refuse_a_second_name() -> None:
    """ImportError if this package is already imported under another module name."""
    here = os.path.realpath(__file__)
    for name, module in list(sys.modules.items()):
        if name == __name__ or name.rpartition(".")[2] != "kpn_line":
            continue
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and os.path.realpath(path) == here:
            msg = (
                f"the kpn_line package is already imported as {name!r} in this process; "
                f"importing it as {__name__!r} too would load every module twice. "
                "Use one name per process (see kpn_line/__init__.py)."
            )
            raise ImportError(msg)


_refuse_a_second_name()


def _put_the_integration_folder_behind_the_standard_library() -> None:
    """Move the folder that holds `kpn_line/` behind the standard library on sys.path.

    Imported as `kpn_line`, the package's parent (the integration's folder) came
    first on sys.path through PYTHONPATH.  That folder also holds Home
    Assistant's platform modules, and `calendar.py` there would hide the
    standard library's `calendar` (imported by email, http.cookiejar, ...) from
    everything the process imports after this package.
    """
    if __name__ != "kpn_line":
        return
    parent = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    front = [entry for entry in sys.path if os.path.realpath(entry or ".") == parent]
    for entry in front:
        sys.path.remove(entry)
    if front:
        sys.path.append(front[0])


_put_the_integration_folder_behind_the_standard_library()
