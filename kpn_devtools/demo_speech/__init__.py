"""An offline text-to-speech engine for the demo Home Assistant (scripts/screenshots).

A custom integration that kpn_devtools/screenshots.py links into the demo's
config dir: `tts: - platform: demo_speech`.  It speaks with ffmpeg's `flite`
filter (Debian's ffmpeg is built with libflite), so kpn_voip.say and the
README's jobs run in the demo without the internet.  Never part of the
integration.
"""
