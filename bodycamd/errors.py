"""The one exception tree of bodycamd.

Every error the daemon or its tools raise on purpose is a leaf of this tree, and every leaf
also inherits the builtin it is closest to, so callers that only know Python's own
exceptions still catch it (the gpiozero style)::

    BodycamError
     ├── ConfigError (ValueError)            a config file that cannot be used
     ├── KeyFileError (ValueError)           a key file missing, malformed or of the wrong kind
     ├── Refused (PermissionError)           policy says no: not logged in, storage full…
     │    ├── LoginRefused                   a personnel number that is not acceptable
     │    └── AuditRefused                   a change refused because its audit event
     │                                       could not be written (code "storage")
     ├── StorageError (OSError)              flash could not take what we wrote
     │    ├── SegmentAbandoned               write/fsync failed; the segment is given up
     │    ├── QuotaExceeded                  the quota or the filesystem is full
     │    ├── JournalCorrupt                 the journal is not a readable SQLite database
     │    ├── JournalTooNew                  the journal's schema is newer than this bodycamd
     │    └── NotAwaitingUpload              an upload step for a segment no longer queued
     ├── EvidenceError (ValueError)          a segment is not what it claims to be
     │    ├── FormatError                    not a segment, unknown version, malformed header
     │    ├── IntegrityError                 a record, checkpoint, signature or footer is bad
     │    ├── WrongKeyError                  the evidence key does not open this segment
     │    └── ChainError                     segments of a recording do not link up
     ├── HardwareError (OSError)             a camera, microphone or GPIO chip missing or unusable
     ├── UploadError (OSError)               a request to the upload endpoint did not go through
     │    ├── TransientUploadError           transport error, 409, 5xx: HEAD and retry later
     │    ├── UploadRejected                 a 4xx or TLS refusal that retrying will not heal
     │    │    └── SegmentRefused            422: the server verified the segment and refused it
     │    └── UploadGone                     404/410: the server no longer has that upload
     ├── ControlError (ConnectionError)      bodycamctl's exchange with the daemon did not happen
     │    ├── ControlUnreachable             no daemon at any control socket tried (exit 4)
     │    └── ControlFailed                  reached, but it hung up, did not answer in time or
     │                                       answered with what is not a JSON object (exit 1)
     └── ComponentFailed (RuntimeError)      a daemon component stopped the daemon

Messages name the object (file, key, record index) and say what was expected, because they
end up in front of a field tester or in a court report.
"""

from __future__ import annotations


class BodycamError(Exception):
    """Root of every error bodycamd raises deliberately."""


class ConfigError(BodycamError, ValueError):
    """A configuration file that cannot be used; the message is one line naming file and key."""


class KeyFileError(BodycamError, ValueError):
    """A key file that is missing, malformed, or holds the wrong kind of key."""


class Refused(BodycamError, PermissionError):
    """A request that policy refuses; `code` is stable for scripts, the message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class LoginRefused(Refused):
    """The personnel number is not acceptable; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__("login_refused", message)


class AuditRefused(Refused):
    """A state change that must be audited (login, logout, stealth, policy) was refused
    because its audit event could not be written; nothing changed (see docs/architecture.md,
    "the audit failure rule")."""

    def __init__(self, message: str) -> None:
        super().__init__("storage", message)


class StorageError(BodycamError, OSError):
    """Flash storage failed us; what was durable before the failure is still intact."""


class SegmentAbandoned(StorageError):
    """A write or fsync on a segment failed; the segment is closed and never written again.

    fsync is never retried on the same file: after a failed fsync Linux may have dropped the
    dirty pages, so a second, successful fsync would lie about what is on flash.
    """


class QuotaExceeded(StorageError):
    """The storage quota or the filesystem itself has no room for more footage."""


class JournalCorrupt(StorageError):
    """The journal file is not a readable SQLite database (it is moved aside and replaced)."""


class JournalTooNew(StorageError):
    """The journal was written by a newer bodycamd: never downgraded, never replaced."""


class NotAwaitingUpload(StorageError):
    """An upload step names a segment the journal no longer holds as awaiting upload."""


class EvidenceError(BodycamError, ValueError):
    """A segment file fails a check of the evidence format."""


class FormatError(EvidenceError):
    """The file is not a segment bodycamd can read (magic, version, algorithm ids, header)."""


class IntegrityError(EvidenceError):
    """Authenticated data failed to verify: bad tag, bad signature, altered or moved record."""

    def __init__(self, message: str, *, record: int | None = None, offset: int | None = None):
        super().__init__(message)
        self.record = record
        self.offset = offset


class WrongKeyError(EvidenceError):
    """The evidence private key given does not unwrap this segment's data key."""


class ChainError(EvidenceError):
    """The segments of one recording are missing, reordered, substituted or unterminated."""


class HardwareError(BodycamError, OSError):
    """A hardware part (camera, microphone, GPIO chip) is missing or cannot be opened."""


class UploadError(BodycamError, OSError):
    """A request to the upload endpoint failed; `reason` is the one line status shows."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientUploadError(UploadError):
    """Worth retrying after a backoff: the transport failed, or the server said 409, 423,
    429, 460 or 5xx. `retry_after` (seconds) is the server's Retry-After, if it gave one."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class UploadRejected(UploadError):
    """The server (or its TLS layer) refused in a way that retrying will not heal: a 4xx
    such as 400, 403 or 413, an untrusted certificate, a refused client certificate."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


class SegmentRefused(UploadRejected):
    """The server received every byte, verified the segment and refused it (422 on the last
    PATCH: digest mismatch, a key it does not know, a substituted segment; the ingest keeps
    the upload in its quarantine). Sending the same bytes again gets the same answer, so the
    segment is journalled `rejected` and left alone until an operator retries it
    (docs/upload.md §5). `reason` carries the server's own one-line reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, 422)


class UploadGone(UploadError):
    """404 or 410 for an upload URL: the server dropped that upload (expired, restarted)."""


class ControlError(BodycamError, ConnectionError):
    """The control client (control/client.py) could not complete an exchange with the
    daemon. Not for the daemon's own answers: a refusal or error it sends is a reply."""


class ControlUnreachable(ControlError):
    """No daemon listens at any socket tried; the message names each with why. bodycamctl
    exits 4, apart from 1, so a script can tell "not running" from "failed"."""


class ControlFailed(ControlError):
    """The daemon was reached but the exchange failed: it hung up, did not answer within
    the timeout, or sent what is not a JSON object. bodycamctl exits 1."""


class ComponentFailed(BodycamError, RuntimeError):
    """A daemon component failed; the daemon stops with a non-zero exit and this one line."""

    def __init__(self, component: str, reason: str):
        super().__init__(f"{component}: {reason}")
        self.component = component
        self.reason = reason
