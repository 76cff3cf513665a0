"""The camera sleeps while nobody is logged in: no backend thread, no frames, no CPU; it wakes
at login (the pre-event buffer fills from then on) and a press while logged out is still
refused."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from bodycamd.camera import Camera, FaultSink, PacketSink
from bodycamd.config import SessionConfig
from bodycamd.device import Caller, Device
from bodycamd.errors import Refused
from bodycamd.recorder.component import CaptureComponent
from bodycamd.recorder.recorder import RecorderState
from bodycamd.session import SessionPolicy
from hw.camera.synthetic import SyntheticCamera
from tests.device_rig import CAMERA
from tests.recorder.helpers import recorder_config
from tests.recorder.test_capture_component import no_wait, wait_for
from tests.storage.helpers import make_spool, storage_for

ME = Caller("test")


class Counting:
    """The real synthetic backend, counting how often it is made (each wake makes one)."""

    def __init__(self) -> None:
        self.made: list[SyntheticCamera] = []

    def __call__(self, post: PacketSink, fault: FaultSink) -> Camera:
        camera = SyntheticCamera(CAMERA, post, fault)
        self.made.append(camera)
        return camera


def camera_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "synthetic-camera")


async def test_camera_runs_only_while_an_officer_is_logged_in(tmp_path: Path) -> None:
    spool, _ = make_spool(tmp_path / "state")
    storage = storage_for(spool)
    changed = asyncio.Event()
    factory = Counting()
    capture = CaptureComponent(
        factory,
        storage,
        CAMERA,
        recorder_config(pre_event_seconds=5.0),
        sleep=no_wait,
        on_change=changed.set,
    )
    device = Device(
        SessionPolicy(SessionConfig()), storage, capture, clock_synced=lambda: True
    )  # as the daemon builds it: the device exists before the camera starts
    await capture.start()
    task = asyncio.create_task(capture.run())
    try:
        assert factory.made == [] and camera_threads() == 0
        assert capture.status() == "camera: asleep (nobody logged in)"
        assert not device.logged_in.value
        with pytest.raises(Refused) as refused:
            await device.record_start(ME)
        assert refused.value.code == "not_logged_in"

        await device.login("123456", ME)
        assert device.logged_in.value
        await wait_for(lambda: capture.camera_running and len(factory.made) == 1, changed)
        recorder = capture.recorder
        assert recorder is not None and recorder.state is RecorderState.BUFFERING
        await capture._channel.wait_received(0)  # the first frame has arrived...
        await capture._channel.wait_empty()  # ...and is handled...
        assert recorder.buffered_bytes > 0  # ...into the pre-event buffer

        await device.logout(ME)
        await wait_for(lambda: not capture.camera_running, changed)
        assert camera_threads() == 0
        assert recorder.buffered_bytes == 0 and capture.fault is None

        await device.login("123456", ME)  # wakes again: a new backend
        await wait_for(lambda: capture.camera_running and len(factory.made) == 2, changed)
        await device.record_start(ME)
        await wait_for(
            lambda: recorder.recording is not None and recorder.recording.segment is not None,
            changed,
        )
        with pytest.raises(Refused):
            await device.logout(ME)  # refused while recording: the camera stays awake
        assert capture.camera_running
    finally:
        await capture.stop()
        await task
    assert camera_threads() == 0


async def test_anonymous_policy_keeps_the_camera_awake(tmp_path: Path) -> None:
    spool, _ = make_spool(tmp_path / "state")
    storage = storage_for(spool)
    factory = Counting()
    capture = CaptureComponent(factory, storage, CAMERA, recorder_config(), sleep=no_wait)
    Device(
        SessionPolicy(SessionConfig(allow_anonymous_recording=True)),
        storage,
        capture,
        clock_synced=lambda: True,
    )
    await capture.start()
    try:
        assert capture.camera_running and len(factory.made) == 1
    finally:
        await capture.stop()
