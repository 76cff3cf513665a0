"""The journal database: segment rows and their states, upload bookkeeping, audit events.

The schema comes from migrations.py (applied at open, in one transaction). A segment's life:

    sealed → uploading (tus URL saved) → uploaded (every byte sent) → deleted
                │                        └─ receipt column set: the local copy may go
                └─ rejected (the ingest verified it and refused it, 422; `last_error` says
                   why): kept on flash, never offered for upload; an operator's
                   `bodycamctl upload retry` puts it back to sealed

`missing` marks a row whose file vanished from flash. A row with a receipt and not yet
`deleted` is a deletion interrupted by a crash: the next start finishes it.

After every transaction that changed a segment row, the journal asks SQLite (COUNT/SUM)
how many segments and bytes are still on flash awaiting upload, in the thread that made the
change; `queue_counts` is that answer, readable from the event loop without I/O.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ed25519

from ..clock import boot_id
from ..errors import JournalCorrupt, StorageError
from ..evidence.keys import EvidencePublicKey
from ..evidence.sealed import seal_personal
from .audit import AuditEvent, AuditReport, PublicKeys, append_event, read_events, verify_audit
from .migrations import SCHEMA_VERSION, migrate

__all__ = ["SCHEMA_VERSION", "Journal", "JournalCorrupt", "QueueCounts", "SegmentRow"]

SegmentState = Literal["sealed", "uploading", "uploaded", "rejected", "deleted", "missing"]
ON_FLASH: tuple[SegmentState, ...] = ("sealed", "uploading", "uploaded", "rejected")
_PENDING = "state IN ('sealed', 'uploading', 'uploaded') AND receipt IS NULL"
_HELD = "state IN ('sealed', 'uploading', 'uploaded', 'rejected') AND receipt IS NULL"


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
    receipt: str | None  # the signed wire receipt (JSON text); v1 journals: a bare digest
    attempts: int = 0
    last_error: str | None = None
    next_attempt_ns: int = 0


@dataclass(frozen=True)
class QueueCounts:
    """Segments still on flash and not yet covered by a receipt, as SQLite counts them."""

    segments: int = 0
    bytes: int = 0
    no_receipt: int = 0  # every byte sent, no receipt (a generic tus server): stays
    rejected: int = 0  # refused by the ingest (422): stays, not counted above, not retried


def _private_file(path: Path) -> None:
    """Create the journal 0600 whatever the umask (SQLite gives its -wal and -shm files the
    database file's mode), and tighten one an older bodycamd left readable by others."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StorageError(f"{path}: cannot open the journal: {exc.strerror or exc}") from exc
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class Journal:
    def __init__(
        self,
        path: Path,
        device_key: ed25519.Ed25519PrivateKey,
        *,
        seal_to: EvidencePublicKey | None = None,
    ) -> None:
        """`seal_to`: the evidence public key that personal fields of audit events are
        sealed to (evidence/sealed.py); None only where no event carries any (tools)."""
        self.path = path
        self._device_key = device_key
        self._seal_to = seal_to
        self._boot = uuid.UUID(bytes=boot_id()).hex
        self._lock = threading.Lock()
        self._segments_touched = False
        self.write_failed = False  # the last write failed; cleared by the next that commits
        self.queue_counts = QueueCounts()
        _private_file(path)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self.migrated_from, _ = migrate(self._db, path)
            self.queue_counts = self._count()
        except sqlite3.DatabaseError as exc:
            with contextlib.suppress(Exception):
                self._db.close()
            raise JournalCorrupt(f"{path}: cannot open the journal: {exc}") from exc
        except StorageError:  # too new, or a migration failed: refused, left as it was
            self._db.close()
            raise
        self.schema_version = SCHEMA_VERSION

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic, durable step: rows and their audit events commit together or not."""
        with self._lock:
            self._segments_touched = False
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):  # translated at the boundary
                    self.write_failed = True
                    raise StorageError(f"{self.path}: journal write failed: {exc}") from exc
                raise
            self.write_failed = False
            if self._segments_touched:
                with contextlib.suppress(sqlite3.Error):  # committed; the count can wait
                    self.queue_counts = self._count()

    def _count(self) -> QueueCounts:
        row = self._db.execute(
            "SELECT COALESCE(SUM(state != 'rejected'), 0), "  # noqa: S608
            "COALESCE(SUM(CASE WHEN state != 'rejected' THEN size END), 0), "
            "COALESCE(SUM(state = 'uploaded'), 0), COALESCE(SUM(state = 'rejected'), 0) "
            f"FROM segments WHERE {_HELD}"
        ).fetchone()
        return QueueCounts(row[0], row[1], row[2], row[3])

    # -- audit ------------------------------------------------------------------------------

    def audit(self, kind: str, **fields: Any) -> None:
        """Append one signed audit event in its own transaction."""
        with self.transaction() as db:
            append_event(db, self._device_key, kind, self._stored(kind, fields))

    def audit_in(self, db: sqlite3.Connection, kind: str, **fields: Any) -> None:
        """Append an audit event inside a transaction the caller holds."""
        append_event(db, self._device_key, kind, self._stored(kind, fields))

    def _stored(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Every event names its boot (its monotonic time means nothing without it), and
        its personal fields are sealed to the evidence key before they reach flash."""
        fields = {**fields, "boot": self._boot}
        if self._seal_to is not None:
            fields = seal_personal(kind, fields, self._seal_to)
        return fields

    def events(self) -> list[AuditEvent]:
        """The whole audit trail, in order (tests, exports)."""
        with self._lock:
            return list(read_events(self._db))

    def stored_fields_of(self, kind: str) -> list[Any]:
        """The fields of every audit event of one kind, in order, as stored (JSON text,
        unparsed: recovery asks which segments could not be opened at every start, and a
        row edited or corrupted on flash must not stop the start; the caller parses each
        and skips what it cannot read, and `audit verify` names the row)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT fields FROM audit WHERE kind = ? ORDER BY rowid", (kind,)
            ).fetchall()
        return [row[0] for row in rows]

    def verify(self, trusted: PublicKeys) -> AuditReport:
        with self._lock:
            return verify_audit(self._db, trusted)

    # -- segments ---------------------------------------------------------------------------

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
        self._segments_touched = True
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    _COLUMNS = (
        "id, recording_id, segment_index, path, state, torn, end_of_recording, digest, "
        "size, upload_url, upload_offset, receipt, attempts, last_error, next_attempt_ns"
    )

    def segments(self, *states: SegmentState) -> list[SegmentRow]:
        if not states:
            return self._select("", ())
        return self._select(f" WHERE state IN ({', '.join('?' * len(states))})", states)

    def segment(self, segment_id: int) -> SegmentRow | None:
        rows = self._select(" WHERE id = ?", (segment_id,))
        return rows[0] if rows else None

    def segment_by_path(self, path: str) -> SegmentRow | None:
        rows = self._select(" WHERE path = ?", (path,))
        return rows[0] if rows else None

    def pending(
        self, *, due_ns: int | None = None, limit: int = -1, rejected: bool = False
    ) -> list[SegmentRow]:
        """Rows on flash without a receipt, oldest seal first; only those due by `due_ns`.
        Rejected rows only when `rejected` (the queue listing): the uploader never sees them."""
        held = _HELD if rejected else _PENDING
        where, args = f" WHERE {held}", ()  # type: tuple[str, tuple[Any, ...]]
        if due_ns is not None:
            where, args = where + " AND next_attempt_ns <= ?", (due_ns,)
        return self._select(where, args, limit)

    def receipted(self) -> list[SegmentRow]:
        """Rows whose receipt is committed but whose deletion has not finished."""
        return self._select(
            " WHERE receipt IS NOT NULL AND state IN ('sealed', 'uploading', 'uploaded')", ()
        )

    def earliest_attempt_ns(self) -> int | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT MIN(next_attempt_ns) FROM segments WHERE {_PENDING}"  # noqa: S608
            ).fetchone()
        return None if row[0] is None else int(row[0])

    def count_pending(self) -> QueueCounts:
        with self._lock:
            return self._count()

    def _select(self, where: str, args: tuple[Any, ...], limit: int = -1) -> list[SegmentRow]:
        query = f"SELECT {self._COLUMNS} FROM segments{where} ORDER BY id LIMIT ?"  # noqa: S608
        with self._lock:
            rows = self._db.execute(query, (*args, limit)).fetchall()
        return [
            SegmentRow(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                bool(r[5]),
                bool(r[6]),
                r[7],
                r[8],
                r[9],
                r[10],
                r[11],
                r[12],
                r[13],
                r[14],
            )
            for r in rows
        ]

    _SETTABLE = frozenset(
        {
            "upload_url",
            "upload_offset",
            "receipt",
            "uploaded_ns",
            "deleted_ns",
            "attempts",
            "last_error",
            "next_attempt_ns",
        }
    )

    def set_state(
        self, db: sqlite3.Connection, segment_id: int, state: SegmentState, **columns: Any
    ) -> None:
        if set(columns) - self._SETTABLE:
            raise ValueError(f"unknown segment columns {sorted(set(columns) - self._SETTABLE)}")
        assignments = "".join(f", {name} = ?" for name in columns)
        db.execute(
            f"UPDATE segments SET state = ?{assignments} WHERE id = ?",  # noqa: S608
            (state, *columns.values(), segment_id),
        )
        self._segments_touched = True

    def requeue(self, db: sqlite3.Connection, segment_id: int, **columns: Any) -> None:
        """Back to "sealed", to be uploaded from the start and now: no upload URL (the
        server's copy is gone or not trusted), offset 0, no wait; `columns` add to it."""
        self.set_state(
            db, segment_id, "sealed", upload_url=None, upload_offset=0, next_attempt_ns=0, **columns
        )
