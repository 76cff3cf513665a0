"""The capture component with real threads: the synthetic camera's encoder thread posting
through call_soon_threadsafe, a slow writer, and backends that stall or raise."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bodycamd.camera import Camera, EncodedPacket, FaultSink, PacketSink, StreamKind
from bodycamd.config import CameraConfig
from bodycamd.recorder.component import CaptureComponent
from bodycamd.storage.spool import Spool
from hw.camera.synthetic import SyntheticCamera
from tests.recorder.helpers import FPS, decode, decrypt, recorder_config
from tests.storage.helpers import make_spool, storage_for

CAMERA = CameraConfig(
    width=320,
    height=240,
    framerate=FPS,
    bitrate=300_000,
    audio=True,
    realtime=False,
    stall_seconds=0.5,
)


def kinds(spool: Spool) -> list[tuple[str, dict[str, object]]]:
    # every event names its boot (issue #11); the tests compare the rest
    return [
        (event.kind, {k: v for k, v in event.fields.items() if k != "boot"})
        for event in spool.journal.events()
    ]


async def no_wait(_: float) -> None:
    await asyncio.sleep(0)


class Finite:
    """The synthetic camera limited to `frames`, then silent (a stall, if nobody stops it)."""

    def __init__(self, frames: int, config: CameraConfig = CAMERA) -> None:
        self.frames = frames
        self.config = config
        self.made: list[SyntheticCamera] = []

    def __call__(self, post: PacketSink, fault: FaultSink) -> Camera:
        camera = SyntheticCamera(self.config, post, fault, max_frames=self.frames)
        self.made.append(camera)
        return camera


async def run_component(component: CaptureComponent) -> asyncio.Task[None]:
    await component.start()
    return asyncio.create_task(component.run())


async def test_frames_cross_the_thread_hop_into_segments(tmp_path: Path) -> None:
    spool, keys = make_spool(tmp_path / "state")
    camera = Finite(FPS * 4)
    component = CaptureComponent(
        camera, storage_for(spool), CAMERA, recorder_config(segment_seconds=2.0), sleep=no_wait
    )
    await component.start()
    assert component.recorder is not None
    await component.recorder.start("123456", "test")  # before the consumer runs: no frame lost
    task = asyncio.create_task(component.run())
    assert camera.made[0]._thread is not None
    await asyncio.to_thread(camera.made[0]._thread.join)
    await component.stop()
    await task
    paths = [spool.layout.root / row.path for row in spool.journal.segments()]
    frames = sum(len(decode(decrypt(p, keys)[0]).video_pts) for p in paths)
    assert frames == FPS * 4
    assert component.fault is None
    events = [k for k, _ in kinds(spool)]
    assert events.count("recording_start") == 1 and events.count("recording_stop") == 1


async def test_slow_writer_drops_whole_gops_within_the_byte_bound(tmp_path: Path) -> None:
    def slow_fsync(fd: int) -> None:
        time.sleep(0.05)  # a card that takes 50 ms per checkpoint: the writer lags on purpose
        os.fsync(fd)

    spool, keys = make_spool(tmp_path / "state", fsync=slow_fsync)
    config = recorder_config(queue_bytes="64KiB", durability_interval=0.1)
    fed: list[EncodedPacket] = []
    patient = replace(CAMERA, stall_seconds=60.0)  # the camera finishing is not a fault here
    camera = Finite(FPS * 8, patient)
    component = CaptureComponent(camera, storage_for(spool), patient, config, sleep=no_wait)
    await component.start()
    recorder = component.recorder
    assert recorder is not None
    original = recorder.handle

    async def spy(packet: EncodedPacket) -> None:
        fed.append(packet)
        await original(packet)

    recorder.handle = spy  # type: ignore[method-assign]
    await recorder.start(None, "test")
    task = asyncio.create_task(component.run())
    assert camera.made[0]._thread is not None
    await asyncio.to_thread(camera.made[0]._thread.join)
    await component._channel.wait_empty()  # the writer caught up
    await component.stop()
    await task

    assert component._channel.peak_bytes <= 64 * 1024
    assert component.frames_dropped > 0
    video = [p for p in fed if p.stream is StreamKind.VIDEO]
    expected_step = 1_000_000 // FPS
    for before, after in itertools.pairwise(video):
        if after.pts_us - before.pts_us > expected_step + 1:  # a gap...
            assert after.keyframe, "...always resumes at a keyframe: whole GOPs dropped"
    dropped = [f for k, f in kinds(spool) if k == "frames_dropped"]
    assert dropped and sum(int(str(f["frames"])) for f in dropped) == component.frames_dropped
    ts = b"".join(
        decrypt(spool.layout.root / row.path, keys)[0] for row in spool.journal.segments()
    )
    assert len(decode(ts).video_pts) == len(video)  # what was kept decodes, every frame


class Stalling:
    """First backend delivers a second of frames then goes quiet; later ones work."""

    def __init__(self) -> None:
        self.calls = 0
        self.made: list[SyntheticCamera] = []

    def __call__(self, post: PacketSink, fault: FaultSink) -> Camera:
        self.calls += 1
        frames = FPS if self.calls == 1 else None
        camera = SyntheticCamera(CAMERA, post, fault, max_frames=frames)
        self.made.append(camera)
        return camera


class Raising:
    """A backend whose thread dies with an error after a few frames, the first time."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, post: PacketSink, fault: FaultSink) -> Camera:
        self.calls += 1
        if self.calls == 1:
            return _ExplodingCamera(post, fault)
        return SyntheticCamera(CAMERA, post, fault)


class _ExplodingCamera:
    name = "exploding"

    def __init__(self, post: PacketSink, fault: FaultSink) -> None:
        self._inner = SyntheticCamera(CAMERA, post, fault, max_frames=FPS)
        self._fault = fault
        self._thread: threading.Thread | None = None

    @property
    def params(self):  # type: ignore[no-untyped-def]
        return self._inner.params

    def start(self) -> None:
        def run() -> None:
            self._inner.start()
            assert self._inner._thread is not None
            self._inner._thread.join()
            self._fault(OSError(5, "sensor I/O error"))

        self._thread = threading.Thread(target=run)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.join()
        self._inner.stop()


async def wait_for(condition: Callable[[], bool], changed: asyncio.Event) -> None:
    """Wait until `condition` holds, re-checking each time the component reports a change.

    Some conditions (bytes on flash) change without a change report, so the wait also
    re-checks every 50 ms; the deadline is a hang guard, not a timing assertion."""
    async with asyncio.timeout(20):
        while not condition():
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 0.05)


async def fault_and_recover(
    tmp_path: Path, factory: Callable[[PacketSink, FaultSink], Camera], reason: str
) -> None:
    spool, keys = make_spool(tmp_path / "state")
    changed = asyncio.Event()
    component = CaptureComponent(
        factory, storage_for(spool), CAMERA, recorder_config(), sleep=no_wait, on_change=changed.set
    )
    task = await run_component(component)
    assert component.recorder is not None
    await component.recorder.start("123456", "button")
    await wait_for(
        lambda: (
            component.recorder is not None
            and component.recorder.recording is not None
            and component.recorder.recording.reason == "resumed_after_camera_fault"
        ),
        changed,
    )
    assert component.fault is None and "FAULT" not in component.status()
    await component.stop()
    await task
    events = kinds(spool)
    fault = next(f for k, f in events if k == "camera_fault")
    assert reason in str(fault["reason"])
    stops = [f["reason"] for k, f in events if k == "recording_stop"]
    assert stops == ["camera_fault", "shutdown"]
    first = spool.journal.segments()[0]
    decoded = decode(decrypt(spool.layout.root / first.path, keys)[0])
    assert len(decoded.video_pts) > 0  # what was recorded before the fault is sealed


async def test_stalled_camera_is_restarted_and_recording_resumes(tmp_path: Path) -> None:
    await fault_and_recover(tmp_path, Stalling(), "no frames for 0.5 s")


async def test_raising_camera_is_restarted_and_recording_resumes(tmp_path: Path) -> None:
    await fault_and_recover(tmp_path, Raising(), "sensor I/O error")


class FailsToStart:
    """No camera at boot (a loose ribbon cable), then one that works."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, post: PacketSink, fault: FaultSink) -> Camera:
        self.calls += 1
        if self.calls == 1:
            raise OSError(19, "No such device: /dev/video0")
        return SyntheticCamera(CAMERA, post, fault)


async def test_camera_missing_at_start_is_a_fault_not_a_crash(tmp_path: Path) -> None:
    spool, keys = make_spool(tmp_path / "state")
    changed = asyncio.Event()
    component = CaptureComponent(
        FailsToStart(),
        storage_for(spool),
        CAMERA,
        recorder_config(),
        sleep=no_wait,
        on_change=changed.set,
    )
    await component.start()  # does not raise
    assert component.fault == "cannot start: [Errno 19] No such device: /dev/video0"
    assert component.status().startswith("camera: FAULT (cannot start")
    task = asyncio.create_task(component.run())
    await wait_for(lambda: component.fault is None, changed)
    recorder = component.recorder
    assert recorder is not None
    handle = recorder.handle

    async def handle_and_tell(packet: EncodedPacket) -> None:  # footage is no state change:
        await handle(packet)  # wake the wait on every packet instead
        changed.set()

    recorder.handle = handle_and_tell  # type: ignore[method-assign]
    await recorder.start("123456", "button")
    await wait_for(lambda: bool(spool.ledger.used), changed)
    await component.stop()
    await task
    rows = spool.journal.segments()
    assert decode(decrypt(spool.layout.root / rows[0].path, keys)[0]).video_pts
    assert [k for k, _ in kinds(spool)][:2] == ["camera_fault", "camera_recovered"]


async def test_stop_during_backoff_does_not_leave_a_camera_running(tmp_path: Path) -> None:
    spool, _ = make_spool(tmp_path / "state")

    def never(post: PacketSink, fault: FaultSink) -> Camera:
        raise OSError(19, "No such device")

    async def slow(_: float) -> None:
        await asyncio.Event().wait()  # a backoff that would last forever

    component = CaptureComponent(never, storage_for(spool), CAMERA, recorder_config(), sleep=slow)
    task = await run_component(component)
    assert component.fault is not None
    before = {t.ident for t in threading.enumerate()}
    async with asyncio.timeout(10):
        await component.stop()
        await task
    assert component._camera is None
    assert {t.ident for t in threading.enumerate()} <= before
