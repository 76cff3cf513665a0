"""Our picamera2 Output on picamera2's real base classes, driven from a separate thread the
way picamera2's encoder thread drives it (the 5-argument outputframe). Only libcamera, pykms
and prctl are stubbed: they exist only on a Pi."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import av

from bodycamd.camera import EncodedPacket, StreamKind


async def test_encoder_thread_frames_reach_the_loop(picamera2: Any) -> None:
    from picamera2.encoders import LibavH264Encoder
    from picamera2.outputs import Output

    from hw.camera.picam import make_output_class

    loop = asyncio.get_running_loop()
    received: list[EncodedPacket] = []
    done = asyncio.Event()

    def post(packet: EncodedPacket) -> None:  # what CaptureComponent._post does
        loop.call_soon_threadsafe(received.append, packet)

    encoder = LibavH264Encoder(bitrate=1_000_000, repeat=True, iperiod=30)
    output = make_output_class()(post, encoder)
    assert isinstance(output, Output)
    encoder.output = output
    encoder.firsttimestamp = 7_000_000  # the first frame's sensor time, µs, CLOCK_MONOTONIC
    frame = bytearray(b"\x00\x00\x00\x01\x65" + b"\x11" * 100)
    audio_packet = av.Packet(b"\x21\x10" * 20)

    def encoder_thread() -> None:
        # exactly the calls picamera2's Encoder.outputframe makes, positionally
        encoder.outputframe(frame, True, 0, None, False)
        frame[5:] = b"\x22" * 100  # picamera2 reuses its buffer after the call
        encoder.outputframe(frame, False, 33_333, None, False)
        encoder.outputframe(None, True, 10_000, audio_packet, True)
        loop.call_soon_threadsafe(done.set)

    thread = threading.Thread(target=encoder_thread)
    thread.start()
    await done.wait()
    thread.join()
    assert [(p.stream, p.keyframe, p.pts_us) for p in received] == [
        (StreamKind.VIDEO, True, 7_000_000),
        (StreamKind.VIDEO, False, 7_033_333),
        (StreamKind.AUDIO, True, 7_010_000),
    ]
    assert received[0].data == b"\x00\x00\x00\x01\x65" + b"\x11" * 100  # copied, not aliased
    assert received[2].data == bytes(audio_packet)
    assert output.errors == 0


async def test_a_failing_post_never_reaches_the_encoder_thread(picamera2: Any) -> None:
    from picamera2.encoders import LibavH264Encoder

    from hw.camera.picam import make_output_class

    def broken_post(packet: EncodedPacket) -> None:
        raise RuntimeError("loop is gone")

    encoder = LibavH264Encoder(bitrate=1_000_000, repeat=True, iperiod=30)
    output = make_output_class()(broken_post, encoder)
    encoder.output = output
    encoder.firsttimestamp = 0
    errors: list[BaseException] = []

    def encoder_thread() -> None:
        try:
            for index in range(3):
                encoder.outputframe(b"\x00\x00\x00\x01\x65", True, index, None, False)
        except BaseException as exc:  # pragma: no cover - the failure this test looks for
            errors.append(exc)

    thread = threading.Thread(target=encoder_thread)
    thread.start()
    thread.join()
    assert errors == [] and output.errors == 3
