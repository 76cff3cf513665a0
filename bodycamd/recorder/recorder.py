"""The recorder: pre-event buffering, recordings, keyframe-aligned segments, checkpoints.

States: idle (nothing kept), buffering (the last N seconds of GOPs in RAM, while an officer
is logged in) and recording. A recording starts at the oldest buffered keyframe inside the
pre-event window (or at the next keyframe when there is none), rolls to a new segment at the
first keyframe after `segment_seconds` or `segment_max_bytes`, checkpoints every
`durability_interval` of footage or of wall time, whichever comes first, and on stop seals
after the last frame it has.

Every segment write, checkpoint and seal runs on one long-lived worker thread
(`hop.WorkerThread`, fed by a bounded queue, in order; the storage façade does its own
journal and quota work off the loop): a slow card slows the recorder, whose input channel then
drops whole GOPs (see channel.py), never the event loop.

What survives a power cut is the writer's promise (evidence/writer.py, storage/spool.py): the
header and every record up to the last checkpoint whose fsync returned, i.e. at most one
`durability_interval` of footage plus what waits in the channel is lost. The worker thread
changes none of that: a flush or checkpoint is awaited before the recorder goes on, exactly
as it was with one `to_thread` call each.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from ..camera import EncodedPacket, StreamKind, StreamParams
from ..clock import clock_synchronised
from ..config import RecorderConfig, parse_size
from ..errors import QuotaExceeded, SegmentAbandoned, StorageError
from ..evidence.writer import SealedSegment
from ..hop import WorkerThread
from ..storage.facade import RecordingStorage
from ..storage.quota import WRITE_BATCH
from ..storage.spool import SegmentStart, SpoolSegment
from .preevent import PreEventBuffer
from .recording import Recording

if TYPE_CHECKING:  # PyAV (31 MiB resident) is loaded when a segment opens, not at start-up
    pass

log = logging.getLogger(__name__)
Outcome = Literal["ok", "full", "abandoned"]  # of a guarded segment operation


class RecorderState(enum.Enum):
    IDLE = "idle"
    BUFFERING = "buffering"
    RECORDING = "recording"


class Recorder:
    def __init__(
        self,
        storage: RecordingStorage,
        config: RecorderConfig,
        params: StreamParams,
        *,
        clock_synced: Callable[[], bool] = clock_synchronised,
        on_change: Callable[[], None] | None = None,
        io: WorkerThread | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._storage = storage
        self._owns_io = io is None
        self._io = io or WorkerThread("recorder-io")
        self._config = config
        self.params = params
        self._clock_synced = clock_synced
        self._on_change = on_change or (lambda: None)
        self._buffer = PreEventBuffer(
            config.pre_event_seconds,
            parse_size(config.pre_event_max_bytes, 0),
            config.pre_event_audio,
        )
        self._segment_us = int(config.segment_seconds * 1_000_000)
        self._segment_bytes = parse_size(config.segment_max_bytes, 0)
        self._checkpoint_us = int(config.durability_interval * 1_000_000)
        self._checkpoint_s = config.durability_interval
        self._clock = clock
        self._lock = asyncio.Lock()
        self._buffering = False
        self._last_us = 0
        self.recording: Recording | None = None
        self.last_stop_reason = ""
        self.packets_refused = 0

    @property
    def state(self) -> RecorderState:
        if self.recording is not None:
            return RecorderState.RECORDING
        return RecorderState.BUFFERING if self._buffering else RecorderState.IDLE

    @property
    def buffered_bytes(self) -> int:
        return self._buffer.bytes

    def set_buffering(self, enabled: bool) -> None:
        """Buffer only while allowed (an officer is logged in); the RAM is freed otherwise."""
        self._buffering = enabled
        if not enabled:
            self._buffer.clear()
        self._on_change()

    async def close(self) -> None:
        """End the worker thread when the recorder made it (after the last `stop`)."""
        if self._owns_io:
            await self._io.stop()

    async def handle(self, packet: EncodedPacket) -> None:
        self._last_us = packet.pts_us
        async with self._lock:
            if self.recording is not None:
                await self._write_backlog(self.recording)
            if self.recording is not None:
                await self._record(packet)
            elif self._buffering:
                self._buffer.add(packet)

    async def start(
        self, officer: str | None, reason: str, requested_by: dict[str, Any] | None = None
    ) -> Recording:
        """Begin a recording; QuotaExceeded when less than `min_free_minutes` fit.
        `requested_by` (source, peer uid/pid) goes into the audit event."""
        async with self._lock:
            if self.recording is not None:
                return self.recording
            await self._storage.check_start()
            recording = Recording(uuid.uuid4(), officer, reason)
            self.recording = recording
            pre_event = self._buffer.drain(self._last_us)
            await self._storage.audit(
                "recording_start",
                recording=recording.recording_id.hex,
                officer=officer,
                reason=reason,
                pre_event_packets=len(pre_event),
                **(requested_by or {}),
            )
            log.info(
                "recording %s started (%s), %d pre-event packets",
                recording.recording_id.hex[:8],
                reason,
                len(pre_event),
            )
            recording.backlog.extend(pre_event)
            self._on_change()
            return recording

    async def stop(self, reason: str, requested_by: dict[str, Any] | None = None) -> None:
        async with self._lock:
            try:
                if self.recording is not None:  # a stop right after the start keeps it
                    await self._write_backlog(self.recording)
            finally:  # and a failure writing it still ends the recording
                await self._finish(reason, requested_by)

    async def _write_backlog(self, recording: Recording) -> None:
        """The pre-event packets, oldest first, until done or the recording ends (a full
        card: what is left could not be written anyway)."""
        while recording.backlog and self.recording is recording:
            await self._record(recording.backlog.popleft())

    async def marker(
        self,
        note: str,
        requested_by: dict[str, Any] | None = None,
        *,
        recording: Recording | None = None,
    ) -> None:
        """Audit a marker on the running recording, or on `recording` (one a camera fault
        cut, to the officer still theirs: resume.py)."""
        recording = self.recording or recording
        await self._storage.audit(
            "marker",
            note=note,
            at_us=self._last_us,
            recording=recording.recording_id.hex if recording else None,
            **(requested_by or {}),
        )

    # -- inside the lock --------------------------------------------------------------------

    async def _record(self, packet: EncodedPacket) -> None:
        recording = self.recording
        assert recording is not None
        is_key = packet.stream is StreamKind.VIDEO and packet.keyframe
        if recording.segment is None:
            if not is_key:
                return  # a segment starts on a keyframe, with SPS/PPS in front of it
            if not await self._open(recording, packet):
                return
        else:
            roll_due = is_key and (
                packet.pts_us - recording.segment_start_us >= self._segment_us
                or recording.segment.plaintext_bytes >= self._segment_bytes
            )
            if roll_due and not await self._roll(recording, packet):
                return
        segment, muxer = recording.segment, recording.muxer
        assert segment is not None and muxer is not None
        if recording.first_us is None:
            recording.first_us = packet.pts_us
        recording.last_us = packet.pts_us
        try:
            muxer.add(packet)
        except (ValueError, _ffmpeg_error()) as exc:
            # e.g. a timestamp that goes backwards: lose the packet, not the recording
            self.packets_refused += 1
            log.warning(
                "muxer refused a %s packet at %d us: %s", packet.stream.value, packet.pts_us, exc
            )
            return
        # by footage time, and by wall time too: footage that arrives late (a camera that
        # lags, a backlog after a roll) must not stretch what a power cut can take
        now = self._clock()
        checkpoint = (
            packet.pts_us - recording.checkpoint_us >= self._checkpoint_us
            or now - recording.checkpoint_at >= self._checkpoint_s
        )
        if checkpoint:
            recording.checkpoint_us, recording.checkpoint_at = packet.pts_us, now
        if checkpoint or muxer.buffered >= WRITE_BATCH:
            await self._flush(recording, checkpoint=checkpoint)

    async def _flush(
        self, recording: Recording, *, checkpoint: bool = False, final: bool = False
    ) -> Outcome:
        """Hand the muxed bytes to the writer in one worker-thread call (one hop per batch,
        not per packet), checkpointing after them when due, and wait for it. What is
        pending lives in RAM only, and never longer than one checkpoint interval."""
        segment = recording.segment
        assert segment is not None
        # hand the muxer's buffer itself over (no copy) and start a new one; the writer
        # thread is done with it before this coroutine goes on
        data = recording.muxer.take() if recording.muxer is not None else bytearray()
        if recording.pending:  # kept from a refused write, or the muxer's last bytes
            recording.pending += data
            data = recording.pending
        recording.pending = bytearray()

        def write() -> None:
            if data:
                segment.write(data, final=final)
            if checkpoint:
                segment.checkpoint()

        outcome = await self._guarded(recording, segment, write)
        if outcome == "full":
            if not segment.closed:
                recording.pending[:0] = data  # refused before writing: kept for the seal
            if not final:
                await self._finish("storage_full")
        return outcome

    async def _guarded(
        self, recording: Recording, segment: SpoolSegment, action: Callable[[], None]
    ) -> Outcome:
        """Run a blocking write, checkpoint or seal of `segment`: "ok", "full" (quota or
        filesystem: the caller stops) or "abandoned" (an I/O error). A segment the failure
        closed is salvaged (spool.py, audited): the chain goes on from it, in a new one."""
        try:
            await self._io.run(action)
        except QuotaExceeded as exc:
            log.warning("%s", exc)
            outcome: Outcome = "full"
        except SegmentAbandoned as exc:
            log.error("%s", exc)
            outcome = "abandoned"
        else:
            return "ok"
        if segment.closed:  # given up, and salvaged as far as the spool could
            if segment.salvaged is not None:
                recording.prev_digest = segment.salvaged.digest
            if recording.segment is segment:
                recording.segment, recording.muxer = None, None
            recording.pending.clear()
            recording.segments += 1
            self._on_change()
        return outcome

    async def _open(self, recording: Recording, packet: EncodedPacket) -> bool:
        """Start the next segment; when flash cannot take one, end the recording (never
        the daemon) and say why."""
        base = recording.first_us if recording.first_us is not None else packet.pts_us
        metadata = json.dumps(
            {
                "recording_id": recording.recording_id.hex,
                "segment_index": recording.segments,
                "officer": recording.officer,
                "reason": recording.reason,
                "monotonic_start_us": packet.pts_us,
                "recording_base_us": base,
                "wall_start_ns": time.time_ns(),
                "stream": self.params.describe(),
            },
            sort_keys=True,
        ).encode()
        start = SegmentStart(
            recording.recording_id,
            recording.segments,
            recording.prev_digest,
            self._clock_synced(),
            metadata,
        )
        try:
            recording.segment = await self._storage.open_segment(start)
        except QuotaExceeded as exc:
            log.warning("%s", exc)
            await self._finish("storage_full")
            return False
        except (StorageError, OSError) as exc:
            log.error("cannot start segment %d: %s", recording.segments, exc)
            await self._finish("storage_error")
            return False
        from .muxer import MuxState, TsMuxer

        if recording.mux_state is None:
            recording.mux_state = MuxState(base)
        recording.muxer = TsMuxer(self.params, recording.mux_state)
        recording.segment_start_us = packet.pts_us
        recording.checkpoint_us, recording.checkpoint_at = packet.pts_us, self._clock()
        self._on_change()  # storage in use changed: a segment is open
        return True

    async def _seal(self, recording: Recording, *, end_of_recording: bool) -> Outcome:
        """Write out what is muxed and seal, guarded as every write is (an fsync EIO at the
        seal abandons the segment; the recording goes on in the next one)."""
        segment, muxer = recording.segment, recording.muxer
        recording.segment, recording.muxer = None, None
        if segment is None or segment.closed:
            return "ok"
        if muxer is not None:
            recording.pending += muxer.close()
        if recording.pending:
            recording.segment = segment
            outcome = await self._flush(recording, final=True)
            recording.segment = None
            if outcome != "ok":
                return outcome
        sealed: list[SealedSegment] = []
        outcome = await self._guarded(
            recording,
            segment,
            lambda: sealed.append(segment.seal(end_of_recording=end_of_recording)),
        )
        if outcome != "ok":
            return outcome
        if recording.last_us is not None:  # minutes left follow the measured bitrate
            seconds = (recording.last_us - recording.segment_start_us) / 1e6
            self._storage.observe_footage(sealed[0].size, seconds)
        recording.prev_digest = sealed[0].digest
        recording.segments += 1
        self._on_change()
        return "ok"

    async def _roll(self, recording: Recording, packet: EncodedPacket) -> bool:
        """Seal and start the next segment, unless flash has no room for one: then this
        segment is the last, flagged so, and the recording stops (storage_full); so does a
        seal that finds the card full. One abandoned (I/O error) still rolls."""
        muxed = recording.muxer.buffered if recording.muxer is not None else 0
        if not await self._storage.has_room_for_segment(len(recording.pending) + muxed):
            await self._finish("storage_full")
            return False
        if await self._seal(recording, end_of_recording=False) == "full":
            await self._finish("storage_full")
            return False
        return await self._open(recording, packet)

    async def _finish(self, reason: str, requested_by: dict[str, Any] | None = None) -> None:
        recording = self.recording
        if recording is None:
            return
        self.recording = None
        recording.backlog.clear()  # only after a failure is anything left in it
        try:
            await self._seal(recording, end_of_recording=True)
        finally:
            self.last_stop_reason = reason
            await self._storage.audit(
                "recording_stop",
                recording=recording.recording_id.hex,
                reason=reason,
                segments=recording.segments,
                seconds=round(recording.duration_s, 3),
                **(requested_by or {}),
            )
            log.info(
                "recording %s stopped (%s): %d segment(s), %.1f s",
                recording.recording_id.hex[:8],
                reason,
                recording.segments,
                recording.duration_s,
            )
            self._on_change()


def _ffmpeg_error() -> type[Exception]:
    """PyAV's error class, looked up only when an exception is being matched (by then the
    muxer has loaded PyAV)."""
    import av

    return av.FFmpegError
