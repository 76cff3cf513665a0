"""The capture component with a microphone: a camera that stalls while its audio thread goes
on is still a stalled camera, and a camera recording without its microphone raises the
audio_fault health flag and audits why."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from bodycamd.camera import Camera, EncodedPacket, FaultSink, PacketSink, StreamKind
from bodycamd.recorder.component import CaptureComponent
from hw.camera.synthetic import SyntheticCamera
from tests.recorder.helpers import FPS, recorder_config, synthetic_packets
from tests.recorder.test_capture_component import (
    CAMERA,
    fault_and_recover,
    kinds,
    no_wait,
    run_component,
)
from tests.storage.helpers import make_spool, storage_for


class _VideoStallsAudioGoesOn:
    """A second of real video and audio, then audio only, as picamera2's audio thread keeps
    encoding when the sensor stops delivering frames."""

    name = "stalls"

    def __init__(self, post: PacketSink) -> None:
        self._post = post
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        packets, self.params = synthetic_packets(1.0)
        self._packets = packets
        self.audio_after_stall = 0

    def _run(self) -> None:
        for packet in self._packets:
            self._post(packet)
        audio = [p for p in self._packets if p.stream is StreamKind.AUDIO]
        last = self._packets[-1].pts_us
        step = 1024 * 1_000_000 // 48_000
        while not self._stop.wait(0.02):  # the microphone's pace, until stopped
            last += step
            self._post(EncodedPacket(StreamKind.AUDIO, audio[0].data, True, last))
            self.audio_after_stall += 1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class StallsThenWorks:
    def __init__(self) -> None:
        self.made: list[Camera] = []

    def __call__(self, post: PacketSink, fault: FaultSink) -> Camera:
        camera: Camera
        if not self.made:
            camera = _VideoStallsAudioGoesOn(post)
        else:
            camera = SyntheticCamera(CAMERA, post, fault)
        self.made.append(camera)
        return camera


async def test_audio_packets_do_not_hide_a_stalled_camera(tmp_path: Path) -> None:
    factory = StallsThenWorks()
    await fault_and_recover(tmp_path, factory, "no frames for 0.5 s")
    first = factory.made[0]
    assert isinstance(first, _VideoStallsAudioGoesOn) and first.audio_after_stall > 0


class _NoMicrophone(SyntheticCamera):
    """A camera whose microphone failed at start: video only, and the reason kept."""

    audio_fault = "OSError: [Errno 5] Input/output error: 'plughw:CARD=Device,DEV=0'"


async def test_recording_without_microphone_raises_audio_fault(tmp_path: Path) -> None:
    spool, _ = make_spool(tmp_path / "state")
    video_only = replace(CAMERA, audio=False)
    component = CaptureComponent(
        lambda post, fault: _NoMicrophone(video_only, post, fault, max_frames=FPS * 60),
        storage_for(spool),
        CAMERA,
        recorder_config(),
        sleep=no_wait,
    )
    task = await run_component(component)
    assert component.fault is None
    assert component.audio_fault == _NoMicrophone.audio_fault
    await component.stop()
    await task
    audited = [fields for kind, fields in kinds(spool) if kind == "audio_fault"]
    assert audited == [{"reason": _NoMicrophone.audio_fault}]
