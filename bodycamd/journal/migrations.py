"""Journal schema migrations: a numbered list, applied in one transaction at start.

The schema version lives in `meta.schema_version`. Opening a journal applies every
migration above its version, in order, and stores the new version, all inside one
`BEGIN IMMEDIATE … COMMIT`: a power cut during a migration leaves the journal exactly as it
was (SQLite's rollback), and the next start tries again. A journal whose version is newer
than this bodycamd knows is refused in one line and left untouched: a downgrade must never
silently drop what a newer daemon recorded, and such a journal is not corrupt (it is not
moved aside).

Rules for adding a migration: append, never edit or reorder a published one; use only
statements that run inside a transaction (no VACUUM, no journal_mode); and add a test that
opens the previous version's fixture (tests/storage/fixtures/).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import JournalTooNew, StorageError

# Migration n (1-based) takes the schema from version n-1 to version n.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the segment queue and the signed audit trail
    (
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE IF NOT EXISTS segments (
            id INTEGER PRIMARY KEY,
            recording_id TEXT NOT NULL,
            segment_index INTEGER NOT NULL,
            path TEXT NOT NULL,
            state TEXT NOT NULL
                CHECK (state IN ('sealed', 'uploading', 'uploaded', 'deleted', 'missing')),
            torn INTEGER NOT NULL,
            end_of_recording INTEGER NOT NULL,
            digest TEXT NOT NULL,
            size INTEGER NOT NULL,
            sealed_ns INTEGER NOT NULL,
            upload_url TEXT,
            upload_offset INTEGER NOT NULL DEFAULT 0,
            receipt TEXT,
            uploaded_ns INTEGER,
            deleted_ns INTEGER,
            UNIQUE (recording_id, segment_index)
        )""",
        """CREATE TABLE IF NOT EXISTS audit (
            seq INTEGER PRIMARY KEY,
            time_ns INTEGER NOT NULL,
            mono_ns INTEGER NOT NULL,
            kind TEXT NOT NULL,
            fields TEXT NOT NULL,
            prev_hash BLOB NOT NULL,
            hash BLOB NOT NULL,
            signature BLOB NOT NULL
        )""",
    ),
    # 2: what the uploader needs: attempts, the last error, when to try next. The existing
    # `receipt` column now holds the ingest's signed wire receipt (JSON); a receipt there
    # means the local copy may be deleted.
    (
        "ALTER TABLE segments ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE segments ADD COLUMN last_error TEXT",
        "ALTER TABLE segments ADD COLUMN next_attempt_ns INTEGER NOT NULL DEFAULT 0",
    ),
    # 3: state 'rejected': the ingest verified the segment and refused it (422); the file
    # stays on flash, `last_error` holds the server's reason, the uploader leaves it alone
    # until an operator retries it. SQLite cannot change a CHECK in place, so the table is
    # rebuilt the documented way (new table, copy, drop, rename), inside the migration's
    # transaction; no index, trigger or view refers to it.
    (
        """CREATE TABLE segments_v3 (
            id INTEGER PRIMARY KEY,
            recording_id TEXT NOT NULL,
            segment_index INTEGER NOT NULL,
            path TEXT NOT NULL,
            state TEXT NOT NULL CHECK (
                state IN ('sealed', 'uploading', 'uploaded', 'rejected', 'deleted', 'missing')
            ),
            torn INTEGER NOT NULL,
            end_of_recording INTEGER NOT NULL,
            digest TEXT NOT NULL,
            size INTEGER NOT NULL,
            sealed_ns INTEGER NOT NULL,
            upload_url TEXT,
            upload_offset INTEGER NOT NULL DEFAULT 0,
            receipt TEXT,
            uploaded_ns INTEGER,
            deleted_ns INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            next_attempt_ns INTEGER NOT NULL DEFAULT 0,
            UNIQUE (recording_id, segment_index)
        )""",
        """INSERT INTO segments_v3 (id, recording_id, segment_index, path, state, torn,
            end_of_recording, digest, size, sealed_ns, upload_url, upload_offset, receipt,
            uploaded_ns, deleted_ns, attempts, last_error, next_attempt_ns)
        SELECT id, recording_id, segment_index, path, state, torn,
            end_of_recording, digest, size, sealed_ns, upload_url, upload_offset, receipt,
            uploaded_ns, deleted_ns, attempts, last_error, next_attempt_ns FROM segments""",
        "DROP TABLE segments",
        "ALTER TABLE segments_v3 RENAME TO segments",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: sqlite3.Connection) -> int:
    """The stored version; 0 for a new, empty database."""
    has_meta = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if has_meta is None:
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return 0 if row is None else int(row[0])


def migrate(db: sqlite3.Connection, path: Path) -> tuple[int, int]:
    """Bring the schema to SCHEMA_VERSION in one transaction; (old, new) versions.
    The caller holds no transaction. A failing migration raises StorageError (the journal
    is readable, so it is not replaced as corrupt); other sqlite3 errors propagate."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(db)
        if version > SCHEMA_VERSION:
            raise JournalTooNew(
                f"{path}: journal schema version {version} is newer than this bodycamd "
                f"knows ({SCHEMA_VERSION}); install the newer bodycamd again"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            try:
                for statement in MIGRATIONS[number - 1]:
                    db.execute(statement)
            except sqlite3.Error as exc:  # a readable journal this code cannot migrate
                raise StorageError(
                    f"{path}: journal migration {number} failed ({exc}); nothing was changed"
                ) from exc
        if version != SCHEMA_VERSION:
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return version, SCHEMA_VERSION
