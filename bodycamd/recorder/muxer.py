"""MPEG-TS muxing in memory with PyAV: packets in, transport-stream bytes out.

One muxer per segment, so each segment starts with its own PAT/PMT and decodes on its own.
Timestamps are relative to the start of the recording (not the segment), so they keep
increasing across segment boundaries. The bytes never touch a file: they go straight to the
evidence writer.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av

from ..camera import EncodedPacket, StreamKind, StreamParams

_MICROSECONDS = Fraction(1, 1_000_000)


class _Collector(io.RawIOBase):
    def __init__(self) -> None:
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.buffer += data
        return len(data)

    def drain(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


class TsMuxer:
    def __init__(self, params: StreamParams, base_us: int) -> None:
        self._base_us = base_us
        self._out = _Collector()
        self._container = av.open(self._out, "w", format="mpegts")
        video = self._container.add_stream(params.video_codec, rate=params.framerate)
        assert isinstance(video, av.VideoStream)
        video.width, video.height = params.width, params.height
        video.time_base = Fraction(1, 90_000)
        self._video = video
        self._audio: av.AudioStream | None = None
        if params.audio_codec is not None:
            audio = self._container.add_stream(params.audio_codec, rate=params.audio_rate)
            assert isinstance(audio, av.AudioStream)
            audio.layout = "mono" if params.audio_channels == 1 else "stereo"
            if params.audio_extradata:
                audio.codec_context.extradata = params.audio_extradata
            self._audio = audio
        self.packets = 0

    def mux(self, packet: EncodedPacket) -> bytes:
        if packet.stream is StreamKind.AUDIO and self._audio is None:
            return b""
        out = av.Packet(packet.data)
        stream = self._video if packet.stream is StreamKind.VIDEO else self._audio
        assert stream is not None
        out.stream = stream
        out.time_base = _MICROSECONDS
        out.pts = out.dts = packet.pts_us - self._base_us
        out.is_keyframe = packet.keyframe
        self._container.mux(out)
        self.packets += 1
        return self._out.drain()

    def close(self) -> bytes:
        self._container.close()
        return self._out.drain()
