"""The journal: one SQLite database (WAL) holding the segment queue and the audit trail.

Everything the device must be able to account for lives here: which segments exist, where
each is in its life (sealed → uploading → uploaded with receipt → deleted), how far an upload
got, and a signed, hash-chained trail of what happened. The database is written with
`synchronous=FULL`, so a commit that returned survives a power cut.

sqlite3 blocks, so the daemon calls the journal from a worker thread (`asyncio.to_thread`);
the connection is shared under a lock, never used from two threads at once.
"""

from .audit import AuditEvent, AuditReport, verify_audit
from .db import Journal, SegmentRow

__all__ = ["AuditEvent", "AuditReport", "Journal", "SegmentRow", "verify_audit"]
