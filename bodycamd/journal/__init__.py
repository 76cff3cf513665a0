"""The journal: one SQLite database (WAL) holding the segment queue and the audit trail.

Everything the device must be able to account for lives here: which segments exist, where
each is in its life (sealed → uploading → uploaded → receipt → deleted), how far an upload
got, and a signed, hash-chained trail of what happened. The database is written with
`synchronous=FULL`, so a commit that returned survives a power cut. Its schema is migrated
at open (migrations.py).

Only bodycamd/storage/ (the storage façade) and the `bodycamd audit` CLI use the journal;
everything else talks to the façade (docs/architecture.md).

sqlite3 blocks, so the daemon calls the journal from a worker thread (`asyncio.to_thread`);
the connection is shared under a lock, never used from two threads at once.
"""

from .audit import AuditEvent, AuditReport, verify_audit
from .db import Journal, QueueCounts, SegmentRow

__all__ = ["AuditEvent", "AuditReport", "Journal", "QueueCounts", "SegmentRow", "verify_audit"]
