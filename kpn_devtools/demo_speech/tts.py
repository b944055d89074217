"""The `demo_speech` TTS platform: ffmpeg's flite voice, MP3 out, no network."""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Any, override

from homeassistant.components.ffmpeg import get_ffmpeg_manager
from homeassistant.components.tts import Provider, TtsAudioType
from homeassistant.core import HomeAssistant
from homeassistant.helpers.typing import ConfigType, DiscoveryInfoType

TIMEOUT = 30.0  # seconds one message may take to synthesise


async def async_get_engine(
    hass: HomeAssistant, config: ConfigType, discovery_info: DiscoveryInfoType | None = None
) -> Provider:
    """The engine; ffmpeg is Home Assistant's (its ffmpeg integration's binary)."""
    return FliteProvider(get_ffmpeg_manager(hass).binary)


class FliteProvider(Provider):
    """English text -> MP3 with ffmpeg's flite filter (voice "slt")."""

    def __init__(self, binary: str) -> None:
        """`binary`: the ffmpeg to run."""
        self.name = "Demo speech"
        self._binary = binary

    @property
    @override
    def default_language(self) -> str:
        return "en"

    @property
    @override
    def supported_languages(self) -> list[str]:
        return ["en"]

    @override
    def get_tts_audio(self, message: str, language: str, options: dict[str, Any]) -> TtsAudioType:
        """MP3 bytes of `message`; (None, None) when ffmpeg cannot make them."""
        # The text goes through a file: nothing in it can reach the filter syntax.
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as text:
            text.write(message)
        try:
            done = subprocess.run(  # our own arguments, no shell
                [
                    self._binary,
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-f",
                    "lavfi",
                    "-i",
                    f"flite=textfile={text.name}:voice=slt",
                    "-f",
                    "mp3",
                    "pipe:1",
                ],
                capture_output=True,
                timeout=TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return (None, None)
        finally:
            os.unlink(text.name)
        if done.returncode != 0 or not done.stdout:
            return (None, None)
        return ("mp3", done.stdout)
