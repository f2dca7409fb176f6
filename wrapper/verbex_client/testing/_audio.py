"""Demo recordings: short, real WAV files made at run time (no binary fixtures to ship)."""

from __future__ import annotations

import io
import math
import struct
import wave

DEMO_CALL_IDS = ("demo-call-001", "demo-call-002", "demo-call-003")
SAMPLE_RATE = 8000  # telephone-band, like a call recording


def tone_wav(seconds: float = 2.0, frequency: float = 440.0, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A mono 16-bit PCM WAV of a sine tone with a short fade in and out."""
    frames = int(seconds * sample_rate)
    fade = max(int(0.02 * sample_rate), 1)
    samples = bytearray()
    for n in range(frames):
        envelope = min(1.0, n / fade, (frames - 1 - n) / fade)
        value = int(0.4 * 32767 * envelope * math.sin(2 * math.pi * frequency * n / sample_rate))
        samples += struct.pack("<h", value)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(bytes(samples))
    return out.getvalue()


def demo_recording(call_id: str) -> tuple[bytes, str]:
    """(WAV bytes, server file name) for one of DEMO_CALL_IDS; each has its own pitch and length."""
    index = DEMO_CALL_IDS.index(call_id)
    return tone_wav(seconds=2.0 + index, frequency=440.0 * (1.25**index)), f"webcall_{call_id}_agent_demo.wav"


WAV_HEADER_BYTES = 44  # RIFF + fmt + data chunk headers of a PCM WAV


def write_tone_wav(path: str, size: int, *, period: int = 20, sample_rate: int = SAMPLE_RATE) -> None:
    """A mono 16-bit WAV of exactly `size` bytes (rounded down to whole samples) at `path`.

    The tone repeats every `period` samples (8000 / 20 = 400 Hz), so one
    block of whole periods is computed once and written over and over: a
    50 MB file takes a fraction of a second, unlike tone_wav's per-sample loop.
    """
    frames = max((size - WAV_HEADER_BYTES) // 2, 1)
    one_period = b"".join(
        struct.pack("<h", int(0.4 * 32767 * math.sin(2 * math.pi * n / period))) for n in range(period)
    )
    block = one_period * max((1 << 20) // len(one_period), 1)  # ~1 MiB of whole periods
    frames_per_block = len(block) // 2
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.setnframes(frames)
        for start in range(0, frames, frames_per_block):
            w.writeframesraw(block[: 2 * min(frames_per_block, frames - start)])
