"""Small filesystem helpers shared by the evidence writer, key files, storage and the ingest.

A rename or a new file is durable only once its directory is fsynced too: without it a power
cut can leave the directory entry pointing at the old name (or at nothing), even though the
file's own bytes are on flash.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Make the entries of `directory` (renames, creations, unlinks) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def wrote(done: int, size: int) -> int:
    """`done`, the count a write() of `size` > 0 bytes returned, or OSError(ENOSPC) for 0.

    POSIX lets write() to a regular file return 0 only when nothing could be written, and
    "try again" is EAGAIN, never 0 (which is not even possible on a blocking fd), so a loop
    that retries on 0 would spin forever on a disk that has stopped taking bytes. A full
    device is what that most likely is, so it fails as one, through every caller's existing
    ENOSPC path.
    """
    if done <= 0 < size:
        reason = f"{os.strerror(errno.ENOSPC)} (write() took none of {size} bytes)"
        raise OSError(errno.ENOSPC, reason)
    return done


def write_all(fd: int, data: bytes | memoryview, offset: int | None = None) -> None:
    """All of `data`, at the fd's position or (pwrite) at `offset`; short writes continued,
    a write that takes nothing an OSError (see `wrote`)."""
    view = memoryview(data)
    while view:
        if offset is None:
            done = wrote(os.write(fd, view), len(view))
        else:
            done = wrote(os.pwrite(fd, view, offset), len(view))
            offset += done
        view = view[done:]
