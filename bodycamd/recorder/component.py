"""The capture component: camera backend → bounded channel → recorder, with fault recovery.

The camera thread's packets reach the loop through `call_soon_threadsafe`; everything after
that runs on the loop (file I/O in worker threads). A backend that raises, or delivers no
video frame for `camera.stall_seconds` (audio does not count), marks the camera faulty: the
open segment is sealed, the backend is stopped and started again with exponential backoff,
and a recording that was running resumes as a new recording once frames flow again. The
daemon stays up throughout.

Shutdown order: stop the camera (no new packets), let the channel drain, seal the recording,
then end the tasks, so nothing is cancelled half-way through a write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from fractions import Fraction

from ..camera import Camera, EncodedPacket, FaultSink, PacketSink, StreamKind, StreamParams
from ..config import CameraConfig, RecorderConfig, parse_size
from ..storage.facade import RecordingStorage
from .channel import PacketChannel
from .recorder import Recorder

log = logging.getLogger(__name__)

CameraFactory = Callable[[PacketSink, FaultSink], Camera]
BACKOFF_MAX = 30.0
DRAIN_SECONDS = 2.0


class CaptureComponent:
    name = "camera"

    def __init__(
        self,
        factory: CameraFactory,
        storage: RecordingStorage,
        camera_config: CameraConfig,
        recorder_config: RecorderConfig,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._factory = factory
        self._storage = storage
        self._camera_config = camera_config
        self._recorder_config = recorder_config
        self._sleep = sleep
        self._clock = clock
        self._on_change = on_change or (lambda: None)
        self._channel = PacketChannel(parse_size(recorder_config.queue_bytes, 0))
        self._camera: Camera | None = None
        self._fault_reason: str | None = None
        self._backend_error: BaseException | None = None
        self._last_packet = 0.0
        self._first_packet = asyncio.Event()
        self._stopping = asyncio.Event()  # run() ends
        self._closing = asyncio.Event()  # stop() has begun: no more restarts
        self._watchdog: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.recorder: Recorder | None = None
        self.frames_dropped = 0
        self.restarts = 0

    @property
    def fault(self) -> str | None:
        return self._fault_reason

    @property
    def audio_fault(self) -> str | None:
        """Why a camera that records video has no sound (its microphone failed), else None."""
        reason: str | None = getattr(self._camera, "audio_fault", None)
        return reason

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """A camera that cannot start does not stop the daemon: it is a fault, retried by
        the watchdog, and everything else (upload, control, the status LED) carries on."""
        self._loop = asyncio.get_running_loop()
        config = self._camera_config
        params = StreamParams(
            config.width,
            config.height,
            Fraction(config.framerate),
            audio_codec="aac" if config.audio else None,
        )
        try:
            params = (await self._start_camera()).params
        except Exception as exc:
            log.debug("camera start failed", exc_info=True)
            self._set_fault(f"cannot start: {exc}")
        self.recorder = Recorder(
            self._storage, self._recorder_config, params, on_change=self._on_change
        )
        if self._fault_reason is None and not await self._wait_first_packet():
            self._set_fault(f"no frames within {config.stall_seconds:g} s")

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            consumer = group.create_task(self._consume(), name="camera-consumer")
            self._watchdog = group.create_task(self._watch(), name="camera-watchdog")
            await self._stopping.wait()
            consumer.cancel()

    async def stop(self) -> None:
        self._closing.set()
        if self._watchdog is not None:  # it ends at its next check, never mid-restart
            await self._watchdog
        await self._stop_camera()
        try:  # let the consumer write out what is queued, within reason
            async with asyncio.timeout(DRAIN_SECONDS):
                await self._channel.wait_empty()
        except TimeoutError:
            log.warning(
                "stopping with %d bytes of footage still queued (not recorded)",
                self._channel.queued_bytes,
            )
        if self.recorder is not None:
            await self.recorder.stop("shutdown")
        self._stopping.set()

    def status(self) -> str:
        if self._fault_reason is not None:
            return f"camera: FAULT ({self._fault_reason})"
        if self._camera is None or self.recorder is None:
            return "camera: not started"
        params = self.recorder.params
        text = f"camera: {self._camera.name} {params.width}x{params.height}@{params.framerate}"
        recording = self.recorder.recording
        if recording is not None:
            text += f", RECORDING {recording.duration_s:.0f} s"
        else:
            text += f", {self.recorder.state.value}"
        return text

    # -- the thread hop ---------------------------------------------------------------------

    def _post(self, packet: EncodedPacket) -> None:
        """Called on the camera's thread: schedule, never block, never raise."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed after the check
                loop.call_soon_threadsafe(self._arrive, packet)

    def _post_fault(self, exc: BaseException) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._backend_failed, exc)

    def _arrive(self, packet: EncodedPacket) -> None:
        # Only video proves the camera alive: picamera2's audio thread goes on encoding when
        # the sensor stalls, and segments would silently become audio-only.
        if packet.stream is StreamKind.VIDEO:
            self._last_packet = self._clock()
            self._first_packet.set()
        self._channel.put(packet)

    def _backend_failed(self, exc: BaseException) -> None:
        self._backend_error = exc

    def inject_fault(self, reason: str) -> None:
        """The simulator's camera fault: handled exactly like a backend that raised."""
        self._backend_failed(RuntimeError(reason))

    # -- tasks ------------------------------------------------------------------------------

    async def _consume(self) -> None:
        assert self.recorder is not None
        while True:
            packet = await self._channel.get()
            await self.recorder.handle(packet)
            self._channel.task_done()
            for gap in self._channel.take_gaps():
                self.frames_dropped += gap.frames
                log.warning(
                    "writer fell behind: dropped %d frames (%d bytes) over %.2f s",
                    gap.frames,
                    gap.bytes,
                    (gap.end_us - gap.start_us) / 1e6,
                )
                await self._storage.audit(
                    "frames_dropped",
                    start_us=gap.start_us,
                    end_us=gap.end_us,
                    frames=gap.frames,
                    bytes=gap.bytes,
                )

    async def _watch(self) -> None:
        stall = self._camera_config.stall_seconds
        while not await self._pause(min(0.5, stall / 4)):
            if self._backend_error is not None:
                await self._recover(f"backend error: {self._backend_error}")
            elif self._fault_reason is not None or self._clock() - self._last_packet > stall:
                await self._recover(self._fault_reason or f"no frames for {stall:g} s")

    async def _recover(self, reason: str) -> None:
        assert self.recorder is not None
        self._set_fault(reason)
        resume = self.recorder.recording
        await self._storage.audit(
            "camera_fault",
            reason=reason,
            recording=resume.recording_id.hex if resume else None,
        )
        await self.recorder.stop("camera_fault")
        delay = 1.0
        while not self._closing.is_set():
            self.restarts += 1
            await self._stop_camera()
            self._backend_error = None
            self._first_packet.clear()
            try:
                await self._start_camera()
                if await self._wait_first_packet():
                    break
                log.warning("camera restarted but delivers no frames; retrying")
            except Exception as exc:
                log.warning("camera restart failed: %s", exc)
            if await self._pause(delay):
                return  # shutting down: still faulty, nothing to resume
            delay = min(delay * 2, BACKOFF_MAX)
        if self._closing.is_set():
            return
        self.recorder.params = self._camera.params if self._camera else self.recorder.params
        self._fault_reason = None
        await self._storage.audit("camera_recovered")
        log.info("camera recovered")
        self._on_change()
        if resume is not None:
            await self.recorder.start(resume.officer, "resumed_after_camera_fault")

    # -- helpers ----------------------------------------------------------------------------

    async def _pause(self, seconds: float) -> bool:
        """Sleep (the injected way), cut short by stop(); True when stopping."""
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        closing = asyncio.ensure_future(self._closing.wait())
        await asyncio.wait({sleeper, closing}, return_when=asyncio.FIRST_COMPLETED)
        sleeper.cancel()
        closing.cancel()
        return self._closing.is_set()

    def _set_fault(self, reason: str) -> None:
        if self._fault_reason != reason:
            log.error("camera fault: %s", reason)
        self._fault_reason = reason
        self._on_change()

    async def _start_camera(self) -> Camera:
        camera = await asyncio.to_thread(self._factory, self._post, self._post_fault)
        self._camera = camera  # known before it starts, so stop() can always stop it
        await asyncio.to_thread(camera.start)
        self._last_packet = self._clock()
        if self.audio_fault is not None:  # video runs without sound: say so, and why
            await self._storage.audit("audio_fault", reason=self.audio_fault)
            self._on_change()
        return camera

    async def _stop_camera(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            await asyncio.to_thread(camera.stop)

    async def _wait_first_packet(self) -> bool:
        try:
            async with asyncio.timeout(self._camera_config.stall_seconds):
                await self._first_packet.wait()
        except TimeoutError:
            return False
        return True
