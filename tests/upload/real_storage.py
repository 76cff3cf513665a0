"""The real storage façade for the uploader's integration tests: a spool in a temporary state
directory (real files, fsync, SQLite journal, signed audit trail) and segments written and
sealed by the real evidence writer through it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from bodycamd.journal.db import SegmentRow
from bodycamd.storage import SegmentStart, Spool, Storage
from tests.evidence.helpers import Keys
from tests.storage.helpers import make_spool, storage_for


@dataclass
class RealStorage:
    spool: Spool
    storage: Storage
    keys: Keys

    def seal(self, count: int, size: int, recording: uuid.UUID | None = None) -> list[SegmentRow]:
        """Record `count` segments of about `size` bytes of footage each, sealed."""
        recording = recording or uuid.uuid4()
        prev = b"\0" * 32
        for index in range(count):
            segment = self.spool.open_segment(SegmentStart(recording, index, prev, True))
            piece = (recording.bytes + index.to_bytes(4, "big")) * (size // 20 + 1)
            segment.write(piece[:size])
            prev = segment.seal(end_of_recording=index == count - 1).digest
        return [r for r in self.rows() if r.recording_id in (recording.hex, str(recording))]

    def rows(self) -> list[SegmentRow]:
        return self.spool.journal.segments()

    def row(self, segment_id: int) -> SegmentRow:
        return next(r for r in self.rows() if r.id == segment_id)

    def path(self, row: SegmentRow) -> Path:
        return self.spool.layout.root / row.path

    def audit(self, kind: str) -> list[dict[str, object]]:
        return [e.fields for e in self.spool.journal.events() if e.kind == kind]

    def close(self) -> None:
        self.spool.journal.close()


def real_storage(root: Path, keys: Keys | None = None) -> RealStorage:
    spool, keys = make_spool(root, keys)
    return RealStorage(spool, storage_for(spool), keys)
