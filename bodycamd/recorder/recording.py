"""One recording's state, as the recorder keeps it between packets (recorder.py)."""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..camera import EncodedPacket

if TYPE_CHECKING:  # PyAV is loaded when a segment opens, not at start-up
    from ..storage.spool import SpoolSegment
    from .muxer import MuxState, TsMuxer


@dataclass
class Recording:
    recording_id: uuid.UUID
    officer: str | None
    reason: str
    first_us: int | None = None  # pts of the first packet recorded (pre-event included)
    last_us: int | None = None
    segments: int = 0
    prev_digest: bytes = b"\0" * 32
    segment: SpoolSegment | None = None
    muxer: TsMuxer | None = None
    mux_state: MuxState | None = None  # carried from segment to segment (muxer.py)
    segment_start_us: int = 0
    checkpoint_us: int = 0  # footage time of the last checkpoint (or the segment's start)
    checkpoint_at: float = 0.0  # and its monotonic wall time
    # muxed, taken from the muxer but not yet written (a refused write, a segment's end)
    pending: bytearray = field(default_factory=bytearray)
    # the pre-event packets, written by the next `handle` (or `stop`) before anything newer,
    # not by `start`: the record and announce LEDs must not wait for seconds of footage and
    # their fsyncs to reach flash (DESIGN §10: button to LED < 100 ms)
    backlog: deque[EncodedPacket] = field(default_factory=deque)

    @property
    def duration_s(self) -> float:
        if self.first_us is None or self.last_us is None:
            return 0.0
        return (self.last_us - self.first_us) / 1e6
