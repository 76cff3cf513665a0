"""The ingest's own leaves of bodycamd's exception tree (bodycamd/errors.py is the root).

They live here so the camera package does not carry back-end errors; each also inherits the
builtin it is closest to::

    BodycamError
     └── IngestError
          ├── UploadNotFound (LookupError)      no such upload for this device (or expired)
          ├── OffsetMismatch (ValueError)       PATCH at an offset other than the stored one
          ├── ChecksumMismatch (ValueError)     the chunk's Upload-Checksum does not match
          ├── UploadBusy (BlockingIOError)      another request is writing this upload
          ├── UploadTooLarge (ValueError)       more bytes than the upload's declared length
          ├── SegmentExists (FileExistsError)   the final key holds different bytes already
          ├── MetadataInvalid (ValueError)      Upload-Metadata missing or malformed
          ├── SegmentRejected (ValueError)      the uploaded bytes fail verification
          ├── StoreError (OSError)              the store failed; nothing acknowledged is lost
          ├── EnrolmentError (ValueError)       a CSR, device key or device name is unusable
          └── AuditLogInvalid (ValueError)      the audit log's chain or a signature is broken

The HTTP layer (tus.py) maps each to its tus status code; messages name the upload, device or
file and say what was expected, because they are sent to the camera as the reason.
"""

from __future__ import annotations

from ..errors import BodycamError


class IngestError(BodycamError):
    """Root of the ingest's deliberate errors."""


class UploadNotFound(IngestError, LookupError):
    """No upload with this id belongs to the requesting device (never existed, finished,
    terminated or expired)."""


class OffsetMismatch(IngestError, ValueError):
    """The request's Upload-Offset is not the upload's durable offset."""

    def __init__(self, message: str, *, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class ChecksumMismatch(IngestError, ValueError):
    """The chunk's bytes do not match its Upload-Checksum; the chunk was discarded."""


class UploadBusy(IngestError, BlockingIOError):
    """Another request is appending to this upload right now."""


class UploadTooLarge(IngestError, ValueError):
    """A chunk would take the upload past its declared Upload-Length."""


class SegmentExists(IngestError, FileExistsError):
    """The final key device/recording/index already holds a segment with another digest."""


class MetadataInvalid(IngestError, ValueError):
    """The upload's metadata lacks a field or holds one that is not what the ingest expects."""


class SegmentRejected(IngestError, ValueError):
    """The uploaded bytes are not a segment we can give a receipt for; `reason` says why.
    The upload is quarantined with that reason, never dropped."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StoreError(IngestError, OSError):
    """The store could not do what was asked; what it acknowledged before is intact."""


class EnrolmentError(IngestError, ValueError):
    """A certificate request, device key or device name that cannot be enrolled."""


class AuditLogInvalid(IngestError, ValueError):
    """The ingest audit log is not an unbroken, correctly signed chain."""
