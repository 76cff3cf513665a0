"""Real H.264 in MPEG-TS, made with PyAV's libx264, for tests that need footage."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np


def make_ts(seconds: float, fps: int = 15, size: tuple[int, int] = (160, 120)) -> bytes:
    """A moving gradient, one keyframe per second, as an in-memory MPEG-TS."""
    out = io.BytesIO()
    with av.open(out, "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": str(fps), "preset": "ultrafast", "tune": "zerolatency"}
        stream.codec_context.time_base = Fraction(1, fps)
        width, height = size
        ramp = np.arange(width, dtype=np.int64)
        for index in range(int(seconds * fps)):
            image = np.empty((height, width, 3), dtype=np.uint8)
            image[:] = ((ramp + index * 4) % 256).astype(np.uint8)[None, :, None]
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def count_frames(ts: bytes) -> int:
    with av.open(io.BytesIO(ts), "r", format="mpegts") as container:
        return sum(1 for _ in container.decode(video=0))
