"""A real device for tests: storage on a temporary spool, the capture component on a small
real-time synthetic camera, and the Device on top (what the panel and policy tests drive)."""

from __future__ import annotations

from pathlib import Path

from bodycamd.config import CameraConfig, SessionConfig
from bodycamd.device import Device, DockView
from bodycamd.recorder.component import CaptureComponent
from bodycamd.session import SessionPolicy
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
) -> tuple[Device, CaptureComponent, Spool]:
    spool, _ = make_spool(tmp_path / "state", quota=quota)
    storage = storage_for(spool)  # the façade as StorageComponent.start attaches it
    capture = CaptureComponent(
        lambda post, fault: SyntheticCamera(CAMERA, post, fault),
        storage,
        CAMERA,
        recorder_config(),
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
