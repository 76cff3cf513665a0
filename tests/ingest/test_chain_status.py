"""`bodycamd-ingest list`'s chain status, from receipt records alone: a recording that ended
because a segment could not be opened is not reported as a power loss; records stored
before the open-failed field existed still read."""

from __future__ import annotations

from dataclasses import asdict, replace

from bodycamd.ingest.fs_records import segment_record_fromjson_bytes
from bodycamd.ingest.report import chain_status
from bodycamd.ingest.store import SegmentKey, SegmentRecord


def record(index: int, prev: str, **over: object) -> SegmentRecord:
    base = SegmentRecord(
        key=SegmentKey("cam-1", "0f" * 16, index),
        digest=f"{index:064x}",
        size=4096,
        verdict="complete",
        end_of_recording=False,
        sealed_torn=False,
        prev_digest=prev,
        link="linked" if index else "first",
        stored_at="fs:x",
        received_at="2026-11-30T12:00:00Z",
        upload_id=f"u{index}",
    )
    return replace(base, **over)  # type: ignore[arg-type]


def test_the_ending_names_its_cause() -> None:
    first = record(0, "0" * 64)
    placeholder = {"verdict": "torn", "sealed_torn": True}
    ended = record(1, first.digest, **placeholder, open_failed=True)
    power = record(1, first.digest, **placeholder)
    assert chain_status([first, ended]) == "ended early (segment 1 could not be opened)"
    assert chain_status([first, power]) == "interrupted (torn end: power lost)"
    assert chain_status([first]) == "interrupted (no end of recording yet)"


def test_a_record_stored_before_the_field_existed_reads() -> None:
    stored = asdict(record(0, "0" * 64))
    del stored["open_failed"]
    assert segment_record_fromjson_bytes(stored).open_failed is False
