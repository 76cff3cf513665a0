"""Small filesystem helpers shared by the evidence writer, key files and storage.

A rename or a new file is durable only once its directory is fsynced too: without it a power
cut can leave the directory entry pointing at the old name (or at nothing), even though the
file's own bytes are on flash.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Make the entries of `directory` (renames, creations, unlinks) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
