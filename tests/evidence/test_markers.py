"""The audit trail cannot fill the flash (issue #11, item 7): marker notes are bounded in size
and rate, refused when storage is full, and the journal counts against the quota."""

from __future__ import annotations

from pathlib import Path

import pytest

from bodycamd.errors import Refused
from bodycamd.markers import BURST, MAX_NOTE_BYTES, REFILL_SECONDS, MarkerLimiter
from tests.storage.helpers import make_spool


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_note_size_and_rate_are_bounded() -> None:
    clock = Clock()
    limiter = MarkerLimiter(clock)
    with pytest.raises(Refused) as refused:
        limiter.admit("é" * (MAX_NOTE_BYTES // 2 + 1), storage_full=False)
    assert refused.value.code == "note_too_long" and "1026 bytes" in str(refused.value)
    for _ in range(BURST):
        limiter.admit("x" * MAX_NOTE_BYTES, storage_full=False)
    with pytest.raises(Refused) as refused:
        limiter.admit("one more", storage_full=False)
    assert refused.value.code == "too_many_markers"
    clock.now += REFILL_SECONDS
    limiter.admit("after the refill", storage_full=False)
    with pytest.raises(Refused):
        limiter.admit("and again at once", storage_full=False)


def test_no_marker_while_storage_is_full() -> None:
    with pytest.raises(Refused) as refused:
        MarkerLimiter(Clock()).admit("note", storage_full=True)
    assert refused.value.code == "storage_full"
    assert "keeps room to record why the recording stops" in str(refused.value)


def test_the_journal_counts_against_the_quota(tmp_path: Path) -> None:
    spool, _ = make_spool(tmp_path / "state")
    ledger, db = spool.ledger, spool.layout.journal
    before = ledger.used
    ledger.count_also(db.with_name(db.name + suffix) for suffix in ("", "-wal", "-shm"))
    counted = ledger.used
    assert counted > before  # the journal's pages now count
    for number in range(400):
        spool.journal.audit("marker", note="n" * MAX_NOTE_BYTES, number=number)
    ledger.refresh()
    assert ledger.used >= counted + 400 * MAX_NOTE_BYTES
