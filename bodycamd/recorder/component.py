"""The capture component: camera backend → bounded channel → recorder, with fault recovery.

The camera thread puts packets into the channel, which wakes the loop once per batch
(hop.Inbox); everything after that runs on the loop, with file and journal I/O on one worker
thread (hop.WorkerThread). A backend that raises, or delivers no video frame for
`camera.stall_seconds` (audio does not count: the channel counts video frames), marks the
camera faulty: the open segment is sealed, the backend is stopped and started again with
exponential backoff, and a recording that was running resumes as a new recording once frames
flow again. The daemon stays up throughout.

Until then the cut recording is pending (`resumes`, resume.py): still the officer's
recording, which a stop cancels; whether it resumes is the device's policy to decide.

A packet the recorder fails on with an exception it did not expect (a bug: storage and
camera faults are handled where they happen) does not end the capture task, which would
stop the daemon: the recording stops (`recorder_error`), sealed as far as it goes, the error
is audited and raised as the `recorder_error` health flag until a recording runs again, and
packets keep flowing. It does not resume by itself: an error that recurs on every packet
must not loop through new recordings.

The camera runs only while it is wanted (`want_camera`: an officer is logged in, or policy
allows anonymous recording, or a recording is running): asleep, it costs no CPU, and on a Pi
the camera module is powered down. The watchdog task starts and stops it, so every start,
stop and restart happens in one place, one at a time.

Shutdown order: stop the camera (no new packets), close the channel so the consumer handles
what is queued and ends by itself, seal the recording, then stop the worker thread, so
nothing is cancelled half-way through a write.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from fractions import Fraction

from ..camera import Camera, EncodedPacket, FaultSink, PacketSink, StreamParams
from ..config import CameraConfig, RecorderConfig, parse_size
from ..hop import LoopHop, WorkerThread, sleep_unless
from ..storage.facade import RecordingStorage
from .channel import PacketChannel
from .recorder import Recorder
from .resume import FaultResume

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
        self._hop = LoopHop()
        self._io = WorkerThread("capture-io")
        self._channel = PacketChannel(parse_size(recorder_config.queue_bytes, 0), self._hop)
        self._camera: Camera | None = None
        self._wanted = True
        self._poke = asyncio.Event()  # the watchdog looks again now: wanted changed, stopping
        self._fault_reason: str | None = None
        self._backend_error: BaseException | None = None
        self._last_packet = 0.0
        self._received_before_start = 0
        self._received_at_tick = 0
        self._stopping = asyncio.Event()  # run() ends
        self._closing = asyncio.Event()  # stop() has begun: no more restarts
        self._watchdog: asyncio.Task[None] | None = None
        # the recording a fault cut, until it resumes; the device sets its policy (resume.py)
        self.resumes = FaultResume(storage, lambda: self._on_change())
        self.recorder: Recorder | None = None
        self.recorder_error: str | None = None  # the recorder_error health flag's reason
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
        self._hop.bind()
        self._io.start()
        config = self._camera_config
        params = StreamParams(
            config.width,
            config.height,
            Fraction(config.framerate),
            audio_codec="aac" if config.audio else None,
        )
        if self._wanted:
            try:
                params = (await self._start_camera()).params
            except Exception as exc:
                log.debug("camera start failed", exc_info=True)
                self._set_fault(f"cannot start: {exc}")
        self.recorder = Recorder(
            self._storage, self._recorder_config, params, on_change=self._on_change, io=self._io
        )
        if self._wanted and self._fault_reason is None and not await self._wait_first_packet():
            self._set_fault(f"no frames within {config.stall_seconds:g} s")

    async def run(self) -> None:
        """Both tasks end by themselves once `stop` has closed the channel."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._consume(), name="camera-consumer")
            self._watchdog = group.create_task(self._watch(), name="camera-watchdog")
            await self._stopping.wait()

    async def stop(self) -> None:
        self._closing.set()
        self._poke.set()
        if self._watchdog is not None:  # it ends at its next check, never mid-restart
            await self._watchdog
        await self._stop_camera()
        self._channel.close()
        try:  # let the consumer write out what is queued, within reason
            async with asyncio.timeout(DRAIN_SECONDS):
                await self._channel.wait_empty()
        except TimeoutError:
            dropped = self._channel.discard()
            log.warning("stopping with %d bytes of footage still queued (not recorded)", dropped)
        await self.resumes.cancel("shutdown")
        if self.recorder is not None:
            await self.recorder.stop("shutdown")
        await self._io.stop()
        self._stopping.set()

    @property
    def camera_running(self) -> bool:
        return self._camera is not None

    def want_camera(self, wanted: bool) -> None:
        """Run the camera, or let it sleep (on the loop; the watchdog acts on it at once).
        It sleeps only when no recording is running, and wakes for a recording regardless."""
        if wanted != self._wanted:
            self._wanted = wanted
            self._poke.set()

    def status(self) -> str:
        if self._fault_reason is not None:
            return f"camera: FAULT ({self._fault_reason})"
        if self.recorder is None:
            return "camera: not started"
        if self._camera is None:
            return "camera: asleep (nobody logged in)"
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
        """Called on the camera's thread: queue (bounded, whole GOPs dropped), never block,
        never raise; the loop is woken once per batch."""
        self._channel.put(packet)

    def _post_fault(self, exc: BaseException) -> None:
        self._hop.post(self._backend_failed, exc)

    def _backend_failed(self, exc: BaseException) -> None:
        self._backend_error = exc

    def inject_fault(self, reason: str) -> None:
        """The simulator's camera fault: handled exactly like a backend that raised."""
        self._backend_failed(RuntimeError(reason))

    # -- tasks ------------------------------------------------------------------------------

    async def _consume(self) -> None:
        """Handle packets batch by batch until the channel is closed and drained."""
        assert self.recorder is not None
        channel = self._channel
        while await channel.wait():
            while (packet := channel.pop()) is not None:
                try:
                    await self.recorder.handle(packet)
                except Exception as exc:  # see the module docstring: never the daemon
                    await self._recorder_failed(exc, packet)
                else:
                    if self.recorder_error is not None and self.recorder.recording is not None:
                        self.recorder_error = None  # a recording runs again
                        self._on_change()
                finally:
                    channel.done(packet)
            for gap in channel.take_gaps():
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

    async def _recorder_failed(self, exc: Exception, packet: EncodedPacket) -> None:
        """Stop the recording a packet failed in (`recorder_error`), audit the error once
        per recording (or once while none runs, so a failure on every packet is not an
        event per packet) and raise the health flag. Never raises."""
        assert self.recorder is not None
        recording = self.recorder.recording
        first = self.recorder_error is None
        error = f"{type(exc).__name__}: {exc}"
        if first or recording is not None:
            log.error(
                "recorder failed on a %s packet at %d us",
                packet.stream.value,
                packet.pts_us,
                exc_info=exc,
            )
            await self._storage.audit(
                "recorder_error",
                error=error,
                at_us=packet.pts_us,
                recording=recording.recording_id.hex if recording else None,
            )
        if recording is not None:
            recording.backlog.clear()  # the stop must not write again what just failed
            try:  # the recorder dropped the recording first thing: this cannot loop
                await self.recorder.stop("recorder_error")
            except Exception:
                log.exception("sealing the recording after a recorder error failed")
        self.recorder_error = error  # raised once the recording is stopped: one state change
        self._on_change()

    async def _watch(self) -> None:
        """Every tick: act on want_camera, then on a backend error or a stall. While the
        camera sleeps there is no tick at all: only want_camera or stop wakes this task."""
        stall = self._camera_config.stall_seconds
        while not await self._pause(None if self._asleep() else min(0.5, stall / 4)):
            self._channel.nudge()  # what rode along without a wake-up is handled by now
            if self._channel.received != self._received_at_tick:  # the camera delivers
                self._received_at_tick = self._channel.received
                self._last_packet = self._clock()
            if not (self._wanted or self._recording()):
                if self._camera is not None or self._fault_reason is not None:
                    await self._sleep_camera()
            elif self._camera is None and self._fault_reason is None:
                await self._wake_camera()
            elif self._backend_error is not None:
                await self._recover(f"backend error: {self._backend_error}")
            elif self._fault_reason is not None or self._clock() - self._last_packet > stall:
                await self._recover(self._fault_reason or f"no frames for {stall:g} s")

    def _asleep(self) -> bool:
        busy = self._camera is not None or self._fault_reason is not None
        return not (self._wanted or self._recording() or busy)

    def _recording(self) -> bool:
        """A recording runs, or waits to resume after a camera fault: the camera is needed."""
        running = self.recorder is not None and self.recorder.recording is not None
        return running or self.resumes.pending is not None

    async def _sleep_camera(self) -> None:
        """Nobody needs frames: camera off (a fault is moot until it is wanted again)."""
        await self._stop_camera()
        self._backend_error = None
        self._fault_reason = None
        log.info("camera asleep: nobody logged in")
        self._on_change()

    async def _wake_camera(self) -> None:
        try:
            camera = await self._start_camera()
        except Exception as exc:
            log.debug("camera start failed", exc_info=True)
            self._set_fault(f"cannot start: {exc}")
            return
        if not await self._wait_first_packet():
            self._set_fault(f"no frames within {self._camera_config.stall_seconds:g} s")
            return
        assert self.recorder is not None
        self.recorder.params = camera.params
        log.info("camera awake")
        self._on_change()

    async def _recover(self, reason: str) -> None:
        assert self.recorder is not None
        self._set_fault(reason)
        cut = self.recorder.recording
        if cut is not None:  # still the officer's recording until resumed or cancelled
            self.resumes.pending = cut
        await self._storage.audit(
            "camera_fault",
            reason=reason,
            recording=cut.recording_id.hex if cut else None,
        )
        await self.recorder.stop("camera_fault")
        delay = 1.0
        while not self._closing.is_set() and (self._wanted or self._recording()):
            self.restarts += 1
            await self._stop_camera()
            self._backend_error = None
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
        if self._closing.is_set() or not (self._wanted or self._recording()):
            return  # a resume still pending is cancelled by stop()
        self.recorder.params = self._camera.params if self._camera else self.recorder.params
        self._fault_reason = None
        await self._storage.audit("camera_recovered")
        log.info("camera recovered")
        self._on_change()
        await self.resumes.decide(self.recorder)

    # -- helpers ----------------------------------------------------------------------------

    async def _pause(self, seconds: float | None) -> bool:
        """Sleep (the injected way; None: until poked), cut short by stop() or
        want_camera(); True when stopping."""
        if seconds is None:
            await self._poke.wait()
        else:
            await sleep_unless(self._poke, seconds, self._sleep)
        self._poke.clear()
        return self._closing.is_set()

    def _set_fault(self, reason: str) -> None:
        if self._fault_reason != reason:
            log.error("camera fault: %s", reason)
        self._fault_reason = reason
        self._on_change()

    async def _start_camera(self) -> Camera:
        self._received_before_start = self._channel.received
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
                await self._channel.wait_received(self._received_before_start)
        except TimeoutError:
            return False
        return self._channel.received > self._received_before_start
