"""The KPN line engine: pjsua2 in a child process, and its asyncio client.

This package never imports Home Assistant, so it can run in an add-on or on
its own (`python -m kpn_line.cli`).  Inside it, imports are relative only.
"""

PROTOCOL_VERSION = 2  # 2: set_call_policy, `refused` on call events
