"""Real SIP peers for tests: the KPN stand-in (Kamailio), SIPp, packet capture, netns.

Registered as a pytest plugin by tests/conftest.py; the fixtures below are
therefore available in every test.
"""

from __future__ import annotations

from .capture import capture
from .kamailio import kamailio, kamailio_factory
from .netns import netns
from .sipp import sipp

__all__ = ["capture", "kamailio", "kamailio_factory", "netns", "sipp"]
