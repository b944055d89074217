"""pytest under the newest Home Assistant (scripts/test --ha-newest).

pytest-homeassistant-custom-component (phcc) is released for one Home
Assistant version and pins it; between its releases the newest Home
Assistant is tested with the phcc of the pinned one. Two things differ that
are phcc's, not the integration's, and are bridged here before pytest loads
phcc (measured with HA 2026.11.0 and phcc 0.13.375):

- HA >= 2026.11 replaces httpx with an alias that must be set up before
  anything imports httpx: Home Assistant is imported first.
- phcc imports `_clear_logger_overwrites` from the logger integration's
  package; HA 2026.11 keeps it only in `logger.helpers`.
"""

from __future__ import annotations

import sys

import homeassistant  # noqa: F401  (first: sets up HA's httpx alias)
from homeassistant.components import logger
import pytest

if not hasattr(logger, "_clear_logger_overwrites"):
    from homeassistant.components.logger import helpers

    logger._clear_logger_overwrites = helpers._clear_logger_overwrites  # type: ignore[attr-defined]

sys.exit(pytest.main(sys.argv[1:]))
