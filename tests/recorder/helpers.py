"""Footage for recorder tests: real packets from the synthetic camera (libx264 + AAC)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import av
import av.logging

from bodycamd.camera import EncodedPacket, StreamKind, StreamParams
from bodycamd.config import CameraConfig, RecorderConfig
from bodycamd.evidence.reader import SegmentReader
from hw.camera.synthetic import SyntheticCamera
from tests.evidence.helpers import Keys

FPS = 30


def synthetic_packets(
    seconds: float, *, audio: bool = True, width: int = 320, height: int = 240
) -> tuple[list[EncodedPacket], StreamParams]:
    """Encode `seconds` of test pattern as fast as possible; keyframe every second."""
    packets: list[EncodedPacket] = []
    errors: list[BaseException] = []
    config = CameraConfig(
        width=width, height=height, framerate=FPS, bitrate=300_000, audio=audio, realtime=False
    )
    camera = SyntheticCamera(config, packets.append, errors.append, max_frames=round(seconds * FPS))
    camera.start()
    assert camera._thread is not None
    camera._thread.join()
    camera.stop()
    assert not errors
    return packets, camera.params


def recorder_config(**overrides: object) -> RecorderConfig:
    values: dict[str, object] = {
        "segment_seconds": 60.0,
        "durability_interval": 1.0,
        "pre_event_seconds": 0.0,
    }
    values.update(overrides)
    return RecorderConfig(**values)  # type: ignore[arg-type]


@dataclass
class Decoded:
    video_pts: list[float]  # seconds
    keyframes: list[bool]
    audio_seconds: float
    metadata: bytes


def decrypt(path: Path, keys: Keys) -> tuple[bytes, bytes]:
    reader = SegmentReader(path, keys.evidence, keys.device_public)
    data = b"".join(reader.plaintext())
    assert reader.verdict.status == "complete", reader.verdict
    return data, reader.metadata


def decode(ts: bytes) -> Decoded:
    video_pts: list[float] = []
    keyframes: list[bool] = []
    with av.open(io.BytesIO(ts), format="mpegts") as container:
        for frame in container.decode(video=0):
            assert frame.pts is not None and frame.time_base is not None
            video_pts.append(float(frame.pts * frame.time_base))
            keyframes.append(frame.key_frame)
    samples = 0
    rate = 1
    with av.open(io.BytesIO(ts), format="mpegts") as container:
        if container.streams.audio:
            for audio in container.decode(audio=0):
                samples += audio.samples
                rate = audio.sample_rate
    return Decoded(video_pts, keyframes, samples / rate, b"")


def video_only(packets: list[EncodedPacket]) -> list[EncodedPacket]:
    return [p for p in packets if p.stream is StreamKind.VIDEO]


def decode_capturing(ts: bytes) -> tuple[list[tuple[int, str, str]], dict[int, list[int]]]:
    """Demux and decode everything; FFmpeg's warnings and the DTS of each stream."""
    dts: dict[int, list[int]] = {}
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.WARNING)
    try:
        with av.logging.Capture() as logs, av.open(io.BytesIO(ts), format="mpegts") as container:
            for packet in container.demux():
                if packet.dts is not None:
                    dts.setdefault(packet.stream.index, []).append(packet.dts)
                for _ in packet.decode():
                    pass
    finally:
        av.logging.set_level(previous)
    warnings = [entry for entry in logs if entry[0] <= av.logging.WARNING]
    return warnings, dts
