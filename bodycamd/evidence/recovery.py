"""Sealing a segment left torn by a power cut, on the device, without its data key.

The data key died with the process, so the device cannot check or extend the payload. What it
can do is keep exactly the prefix its own signed checkpoints vouch for: truncate there, append
a footer flagged *torn* (signed, so the back end knows the device did this), fsync, rename to
`.seg` and fsync the directory. Every step is idempotent, so a power cut during recovery is
repaired by running recovery again:

- truncated but no footer yet: the next scan finds the same checkpoint at the end and appends;
- footer written but not renamed: the next scan sees a sealed file and only renames it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from ..errors import SegmentAbandoned
from ..fsutil import fsync_directory
from . import format as fmt
from .reader import Verdict, scan_segment
from .writer import PART_SUFFIX, SEALED_SUFFIX


@dataclass(frozen=True)
class Recovered:
    path: Path
    verdict: Verdict  # the verdict of the file as recovered (sealed, torn unless it was whole)
    bytes_dropped: int  # unvouched tail that was cut off
    plaintext_kept: int


def seal_torn(
    part_path: Path,
    device_key: ed25519.Ed25519PrivateKey,
    *,
    fsync: Callable[[int], None] = os.fsync,
) -> Recovered:
    """Recover `part_path` (a `.part` file) into a sealed `.seg`; returns what was kept.

    Raises EvidenceError when the file has no valid signed header (nothing to vouch for):
    such a file is the storage layer's to quarantine and report, never to delete silently.
    """
    if part_path.suffix != PART_SUFFIX:
        raise ValueError(f"{part_path}: expected a {PART_SUFFIX} file")
    before = scan_segment(part_path, device_key.public_key())
    size = part_path.stat().st_size
    try:
        if before.tail.startswith("sealed"):  # complete already; crash hit before the rename
            dropped = 0
        else:
            dropped = size - before.vouched_offset
            footer = fmt.Footer(
                records=before.vouched_records,
                plaintext=before.vouched_plaintext,
                offset=before.vouched_offset,
                file_sha256=before.vouched_sha256,
                checkpoints=before.checkpoints,
                flags=fmt.FLAG_TORN,
                wall_end_ns=time.time_ns(),
                mono_end_ns=time.monotonic_ns(),
            )
            body = footer.body(before.header.digest, device_key)
            fd = os.open(part_path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.ftruncate(fd, before.vouched_offset)
                os.pwrite(
                    fd,
                    fmt.FRAME.pack(len(body), fmt.RecordType.FOOTER) + body,
                    before.vouched_offset,
                )
                fsync(fd)
            finally:
                os.close(fd)
        sealed = part_path.with_suffix(SEALED_SUFFIX)
        part_path.rename(sealed)
        fsync_directory(sealed.parent)
    except OSError as exc:
        raise SegmentAbandoned(
            f"{part_path}: recovery failed ({exc.strerror or exc}); left for the next start"
        ) from exc
    after = scan_segment(sealed, device_key.public_key())
    return Recovered(sealed, after, dropped, after.vouched_plaintext)
