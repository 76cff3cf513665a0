"""One PATCH body's way into the filesystem store's data file: batches, worker threads.

Split from fs_store.py (the store's layout, offsets and commits) so that the part that runs
in worker threads, and its failure and memory rules, are one module. `_write_fd` is the one
place bytes reach the file: tests put their crash and failure points there.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

from .errors import StoreError

_WRITE_BATCH = 4 << 20  # bytes gathered before one write() in a worker thread
_write_fd = os.write  # the seam: every byte of a request body goes through it


class BatchWriter:
    """Writes one request's body in batches of `_WRITE_BATCH`, one worker-thread hop each.

    The body's pieces (bytes objects from the socket, never copied) are gathered into a batch;
    a full batch is written (and hashed, for Upload-Checksum) in a worker thread while the
    next one is read, so a request holds at most two batches in memory. Nothing here fsyncs:
    the request's end does, once (`FilesystemStore._write_and_commit`).

    A write that fails (EIO; ENOSPC, often after a short write) stops the writer for good:
    `written` stays the end of the bytes write() took, contiguous from the start offset, and
    every later write is skipped. Writing the later pieces after the hole and counting them
    would commit an offset whose bytes are not what the camera sent, and verification would
    reject a genuine segment as if it had been tampered with.
    """

    def __init__(self, fd: int, digest: hashlib._Hash | None, offset: int, name: str) -> None:
        self.fd = fd
        self._name = name  # "upload <id>", for error messages
        self._digest = digest
        self.start = offset  # the upload's offset when the request began
        self.written = offset  # end of the bytes write() took, with no hole before it
        self.failure: OSError | None = None  # the write that stopped this writer
        self._pieces: list[bytes] = []
        self._size = 0
        self._writing: asyncio.Future[None] | None = None

    def add(self, piece: bytes) -> None:
        self._pieces.append(piece)
        self._size += len(piece)

    async def add_and_flush(self, piece: bytes) -> None:
        self.add(piece)
        if self._size < _WRITE_BATCH:
            return
        await self.drain()
        if self.failure is not None:
            raise self.error() from self.failure
        pieces, self._pieces, self._size = self._pieces, [], 0
        self._writing = asyncio.ensure_future(asyncio.to_thread(self._write, pieces))

    async def drain(self) -> None:
        """Wait for the batch being written (also when cancelled: the fd closes after it)."""
        writing, self._writing = self._writing, None
        if writing is not None:
            await asyncio.shield(writing)

    def write_rest(self) -> int:
        """Write the gathered pieces (in the worker thread); the end offset. Nothing once a
        write failed."""
        pieces, self._pieces, self._size = self._pieces, [], 0
        self._write(pieces)
        return self.written

    def sha256(self) -> bytes | None:
        return None if self._digest is None else self._digest.digest()

    def error(self) -> StoreError:
        """The failure, for the client: what failed and where the upload can resume."""
        reason = self.failure.strerror if self.failure is not None else None
        return StoreError(
            f"{self._name}: writing its data file failed after byte {self.written} "
            f"({reason or self.failure}); HEAD gives the offset to resume from"
        )

    def _write(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            if self.failure is not None:
                return
            if self._digest is not None:
                self._digest.update(piece)
            view = memoryview(piece)
            try:
                while view:
                    done = _write_fd(self.fd, view)
                    self.written += done
                    view = view[done:]
            except OSError as exc:
                self.failure = exc
