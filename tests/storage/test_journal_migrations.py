"""Journal migrations: a version-1 journal made by the code before migrations existed
(fixtures/journal-v1.db, see fixtures/make_journal_v1.py) opens and is migrated in one
transaction; a journal from a newer bodycamd is refused in one line and left untouched."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from bodycamd.errors import JournalCorrupt, JournalTooNew, StorageError
from bodycamd.journal import Journal, SegmentRow, migrations

FIXTURE = Path(__file__).parent / "fixtures" / "journal-v1.db"
FIXTURE_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    path = tmp_path / "journal.db"
    shutil.copyfile(FIXTURE, path)
    return path


def stored_version(path: Path) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return str(db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])


def test_a_version_1_journal_is_migrated(v1: Path) -> None:
    journal = Journal(v1, FIXTURE_KEY)
    assert (journal.migrated_from, journal.schema_version) == (1, migrations.SCHEMA_VERSION)
    assert stored_version(v1) == str(migrations.SCHEMA_VERSION)
    rows = journal.segments()
    assert [r.state for r in rows] == ["sealed", "uploading", "uploaded", "deleted"]
    assert all((r.attempts, r.last_error, r.next_attempt_ns) == (0, None, 0) for r in rows)
    assert (rows[1].upload_url, rows[1].upload_offset) == ("https://ingest.example/files/one", 4096)
    # v1 "uploaded" meant "receipt matched": the receipt column says the file may go
    assert [r.segment_index for r in journal.receipted()] == [2]
    assert [r.segment_index for r in journal.pending()] == [0, 1]
    assert journal.queue_counts.segments == 2
    assert journal.verify(FIXTURE_KEY.public_key()).ok  # the old trail is intact
    journal.audit("after_migration")
    assert journal.verify(FIXTURE_KEY.public_key()).ok
    journal.close()
    again = Journal(v1, FIXTURE_KEY)  # a second open has nothing to do
    assert again.migrated_from == migrations.SCHEMA_VERSION
    again.close()


def test_a_newer_journal_is_refused_in_one_line_and_untouched(v1: Path) -> None:
    with sqlite3.connect(v1) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.close()
    before = v1.read_bytes()
    with pytest.raises(JournalTooNew) as refused:
        Journal(v1, FIXTURE_KEY)
    message = str(refused.value)
    assert "\n" not in message
    assert message == (
        f"{v1}: journal schema version 99 is newer than this bodycamd knows "
        f"({migrations.SCHEMA_VERSION}); install the newer bodycamd again"
    )
    assert v1.read_bytes() == before


def test_a_failing_migration_changes_nothing(v1: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = (
        *migrations.MIGRATIONS,
        ("ALTER TABLE segments ADD COLUMN fine INTEGER", "ALTER TABLE nowhere ADD COLUMN x"),
    )
    monkeypatch.setattr(migrations, "MIGRATIONS", broken)
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", len(broken))
    failing = rf"migration {len(broken)} failed \(no such table: nowhere\)"
    with pytest.raises(StorageError, match=failing) as err:
        Journal(v1, FIXTURE_KEY)
    assert not isinstance(err.value, JournalCorrupt)  # readable: never moved aside
    assert stored_version(v1) == "1"  # not 2 or 3: they rolled back with the broken one
    with sqlite3.connect(f"file:{v1}?mode=ro", uri=True) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(segments)")}
    assert "attempts" not in columns and "fine" not in columns


def test_a_new_journal_starts_at_the_current_version(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db", FIXTURE_KEY)
    assert journal.migrated_from == 0 and journal.segments() == []
    journal.close()
    assert stored_version(tmp_path / "journal.db") == str(migrations.SCHEMA_VERSION)


def _v2_journal(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[SegmentRow]:
    """A journal as bodycamd with schema 2 wrote it (its own code and migrations), with
    a row in each upload state and a failure recorded; returns its rows."""
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:2])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", 2)
    journal = Journal(path, FIXTURE_KEY)
    with journal.transaction() as db:
        for index in range(3):
            journal.insert_segment(
                db, recording_id="ab" * 16, segment_index=index, path=f"ready/ab/{index:06d}.seg",
                torn=index == 2, end_of_recording=index == 2, digest=f"{index:064x}", size=100,
            )  # fmt: skip
        journal.set_state(db, 2, "uploading", upload_url="https://ingest.example/files/2",
                          upload_offset=50, attempts=3, last_error="PATCH: 503",
                          next_attempt_ns=7)  # fmt: skip
        journal.set_state(db, 3, "uploaded", upload_offset=100)
        journal.audit_in(db, "written_by_v2")
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
            db.execute("UPDATE segments SET state = 'rejected' WHERE id = 1")
    rows = journal.segments()
    journal.close()
    monkeypatch.undo()
    return rows


def test_a_version_2_journal_gains_the_rejected_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal.db"
    before = _v2_journal(path, monkeypatch)
    assert stored_version(path) == "2"
    journal = Journal(path, FIXTURE_KEY)
    assert (journal.migrated_from, journal.schema_version) == (2, migrations.SCHEMA_VERSION)
    assert journal.segments() == before  # every column of every row kept
    assert [r.segment_index for r in journal.pending()] == [0, 1, 2]
    with journal.transaction() as db:
        journal.set_state(db, 1, "rejected", last_error="PATCH upload: server answered 422: no")
        journal.audit_in(db, "upload_rejected", path=before[0].path)
    assert [r.segment_index for r in journal.pending()] == [1, 2]
    assert [r.segment_index for r in journal.pending(rejected=True)] == [0, 1, 2]
    counts = journal.queue_counts
    assert (counts.segments, counts.bytes, counts.no_receipt, counts.rejected) == (2, 200, 1, 1)
    assert [e.kind for e in journal.events()] == ["written_by_v2", "upload_rejected"]
    assert journal.verify(FIXTURE_KEY.public_key()).ok
    journal.close()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        unique = db.execute("PRAGMA index_list(segments)").fetchall()
    db.close()
    assert sorted(tables) == ["audit", "meta", "segments"]  # the copy renamed, none left over
    assert [r[2] for r in unique] == [1]  # UNIQUE (recording_id, segment_index) kept
