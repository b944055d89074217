#!/usr/bin/env python3
"""A stand-in for the ffmpeg binary in the fast HA-side tests (test_sound_ffmpeg.py runs
Debian's real ffmpeg, which scripts/setup installs).

Home Assistant's ffmpeg integration is pointed at it (`ffmpeg_bin`).  It does
what kpn_voip asks of ffmpeg, for WAV input only: `-version`, and
`... -i SOURCE [-f wav] [-ac 1] [-ar RATE] ... OUT` (SOURCE a file or
`pipe:0`, OUT a file or `pipe:1`): 16-bit mono PCM at RATE (linear
interpolation); this is also what Home Assistant's TTS asks for with
preferred_format "wav".  Anything else fails as ffmpeg does: exit code 1 and
a message on stderr.
"""

import io
import struct
import sys
import wave


def main(argv: list[str]) -> int:
    if argv == ["-version"]:
        print("ffmpeg version 7.1-kpn-voip-test Copyright (c) the FFmpeg developers")
        return 0
    at = argv.index("-i")
    source, after, out = argv[at + 1], argv[at + 2 : -1], argv[-1]
    options = dict(zip(after[::2], after[1::2], strict=False))
    if options.get("-f", "wav") != "wav":
        sys.stderr.write(f"{options['-f']}: only wav output in this stand-in\n")
        return 1
    if source == "pipe:0":
        data = sys.stdin.buffer.read()
    else:
        with open(source, "rb") as fh:
            data = fh.read()
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels, width, in_rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError):
        sys.stderr.write(f"{source}: Invalid data found when processing input\n")
        return 1
    if width != 2:
        sys.stderr.write("only 16-bit PCM in this stand-in\n")
        return 1
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    rate = int(options.get("-ar", in_rate))
    mono = [sum(samples[i : i + channels]) // channels for i in range(0, len(samples), channels)]
    n = int(len(mono) * rate / in_rate)
    resampled = []
    for k in range(n):
        pos = k * in_rate / rate
        i = int(pos)
        j = min(i + 1, len(mono) - 1)
        resampled.append(round(mono[i] + (mono[j] - mono[i]) * (pos - i)))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(struct.pack(f"<{len(resampled)}h", *resampled))
    if out == "pipe:1":
        sys.stdout.buffer.write(buf.getvalue())
    else:
        with open(out, "wb") as fh:
            fh.write(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
