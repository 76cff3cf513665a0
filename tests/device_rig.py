"""A real device for tests: storage on a temporary spool, the capture component on a small
real-time synthetic camera, and the Device on top (what the panel and policy tests drive)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from bodycamd.camera import Camera, FaultSink, PacketSink
from bodycamd.config import CameraConfig, RecorderConfig, SessionConfig
from bodycamd.device import Device, DockView
from bodycamd.recorder.component import CameraFactory, CaptureComponent
from bodycamd.session import SessionPolicy
from bodycamd.storage.quota import FsSpace, statvfs_space
from bodycamd.storage.spool import Spool
from hw.camera.synthetic import SyntheticCamera
from tests.recorder.helpers import recorder_config
from tests.storage.helpers import make_spool, storage_for

CAMERA = CameraConfig(
    width=160,
    height=120,
    framerate=15,
    bitrate=100_000,
    audio=False,
    realtime=True,
    stall_seconds=30.0,
)


async def make_device(
    tmp_path: Path,
    session: SessionConfig | None = None,
    quota: str = "90%",
    dock: DockView | None = None,
    *,
    camera: CameraFactory | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    space: Callable[[Path], FsSpace] = statvfs_space,
    follow_capture: bool = False,
    recorder: RecorderConfig | None = None,
    fsync: Callable[[int], None] = os.fsync,
) -> tuple[Device, CaptureComponent, Spool]:
    """`follow_capture`: the capture component's changes reach the device, as app.py wires
    them (its state follows a camera fault); off, the state changes only when asked.
    `fsync` is the spool's (the bench makes it as slow as an SD card's)."""
    spool, _ = make_spool(tmp_path / "state", quota=quota, space=space, fsync=fsync)
    storage = storage_for(spool)  # the façade as StorageComponent.start attaches it
    device: Device | None = None

    def changed() -> None:
        if device is not None and follow_capture:
            device.changed()

    capture = CaptureComponent(
        camera or (lambda post, fault: SyntheticCamera(CAMERA, post, fault)),
        storage,
        CAMERA,
        recorder or recorder_config(),
        sleep=sleep,
        on_change=changed,
    )
    await capture.start()
    device = Device(
        SessionPolicy(session or SessionConfig()),
        storage,
        capture,
        dock,
        clock_synced=lambda: True,
    )
    return device, capture, spool


class FlakyCamera:
    """The rig's camera, whose restarts after a fault fail (a loose ribbon cable) until the
    test calls `reconnect`: the fault lasts exactly as long as the test needs."""

    def __init__(self) -> None:
        self.calls = 0
        self.connected = True

    def __call__(self, post: PacketSink, fault: FaultSink) -> Camera:
        self.calls += 1
        if not self.connected:
            raise OSError(19, "No such device: the camera is not connected")
        return SyntheticCamera(CAMERA, post, fault)

    def disconnect(self, capture: CaptureComponent) -> None:
        """The fault: the running camera fails (as `sim camera-fault` does); restarts fail."""
        self.connected = False
        capture.inject_fault("test: camera disconnected")


class Backoff:
    """The capture component's sleep: its watchdog ticks (under 1 s) pass as usual; a restart
    backoff (1 s and up) waits until the test calls `release`, and `waiting` tells the test
    the component is in one (the fault is handled: recording cut, restart failed)."""

    def __init__(self) -> None:
        self.waiting = asyncio.Event()
        self._released = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        if seconds < 1.0:
            await asyncio.sleep(seconds)
            return
        self.waiting.set()
        await self._released.wait()

    def release(self) -> None:
        self._released.set()
