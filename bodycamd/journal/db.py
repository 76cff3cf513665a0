"""The journal database: schema, segment rows and their states, upload bookkeeping."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ed25519

from ..errors import StorageError
from .audit import append_event

SCHEMA_VERSION = 1
SegmentState = Literal["sealed", "uploading", "uploaded", "deleted", "missing"]
AWAITING_UPLOAD: tuple[SegmentState, ...] = ("sealed", "uploading")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
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
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    mono_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    fields TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    signature BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class SegmentRow:
    id: int
    recording_id: str
    segment_index: int
    path: str  # relative to the state directory
    state: SegmentState
    torn: bool
    end_of_recording: bool
    digest: str
    size: int
    upload_url: str | None
    upload_offset: int
    receipt: str | None


class JournalCorrupt(StorageError):
    """The journal file is not a readable SQLite database."""


class Journal:
    def __init__(self, path: Path, device_key: ed25519.Ed25519PrivateKey) -> None:
        self.path = path
        self._device_key = device_key
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            version = self._db.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()[0]
        except sqlite3.DatabaseError as exc:
            with contextlib.suppress(Exception):
                self._db.close()
            raise JournalCorrupt(f"{path}: cannot open the journal: {exc}") from exc
        if int(version) != SCHEMA_VERSION:
            raise StorageError(
                f"{path}: journal schema {version}; this bodycamd knows {SCHEMA_VERSION}"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic, durable step: rows and their audit events commit together or not."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):  # translated at the boundary
                    raise StorageError(f"{self.path}: journal write failed: {exc}") from exc
                raise

    def audit(self, kind: str, **fields: Any) -> None:
        """Append one signed audit event in its own transaction."""
        with self.transaction() as db:
            append_event(db, self._device_key, kind, fields)

    def audit_in(self, db: sqlite3.Connection, kind: str, **fields: Any) -> None:
        """Append an audit event inside a transaction the caller holds."""
        append_event(db, self._device_key, kind, fields)

    # -- segments -------------------------------------------------------------------------

    def insert_segment(
        self,
        db: sqlite3.Connection,
        *,
        recording_id: str,
        segment_index: int,
        path: str,
        torn: bool,
        end_of_recording: bool,
        digest: str,
        size: int,
    ) -> int:
        cursor = db.execute(
            "INSERT INTO segments (recording_id, segment_index, path, state, torn, "
            "end_of_recording, digest, size, sealed_ns) VALUES (?, ?, ?, 'sealed', ?, ?, ?, ?, ?)",
            (
                recording_id,
                segment_index,
                path,
                int(torn),
                int(end_of_recording),
                digest,
                size,
                time.time_ns(),
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    _COLUMNS = (
        "id, recording_id, segment_index, path, state, torn, end_of_recording, digest, "
        "size, upload_url, upload_offset, receipt"
    )

    def segments(self, *states: SegmentState) -> list[SegmentRow]:
        if not states:
            return self._select("", ())
        return self._select(f" WHERE state IN ({', '.join('?' * len(states))})", states)

    def segment_by_path(self, path: str) -> SegmentRow | None:
        rows = self._select(" WHERE path = ?", (path,))
        return rows[0] if rows else None

    def _select(self, where: str, args: tuple[str, ...]) -> list[SegmentRow]:
        query = f"SELECT {self._COLUMNS} FROM segments{where} ORDER BY id"  # noqa: S608
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [
            SegmentRow(
                r[0], r[1], r[2], r[3], r[4], bool(r[5]), bool(r[6]), r[7], r[8], r[9], r[10], r[11]
            )
            for r in rows
        ]

    def set_state(
        self, db: sqlite3.Connection, segment_id: int, state: SegmentState, **columns: Any
    ) -> None:
        allowed = {"upload_url", "upload_offset", "receipt", "uploaded_ns", "deleted_ns"}
        if set(columns) - allowed:
            raise ValueError(f"unknown segment columns {sorted(set(columns) - allowed)}")
        assignments = "".join(f", {name} = ?" for name in columns)
        db.execute(
            f"UPDATE segments SET state = ?{assignments} WHERE id = ?",  # noqa: S608
            (state, *columns.values(), segment_id),
        )

    def record_upload_progress(self, segment_id: int, url: str, offset: int) -> None:
        """Upload bookkeeping for resumption: the URL is saved before the first PATCH."""
        with self.transaction() as db:
            self.set_state(db, segment_id, "uploading", upload_url=url, upload_offset=offset)
