"""One PATCH body's way into the filesystem store's data file: batches, worker threads.

Split from fs_store.py (the store's layout, offsets and commits) so that the part that runs
in worker threads, and its failure, fd and memory rules, are one module. `_write_fd` is the
one place bytes reach the file and `_close_fd` where the fd ends: tests put their failure
points there.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Callable
from typing import Any

from ..fsutil import wrote
from .budget import ByteBudget
from .errors import StoreError

_WRITE_BATCH = 4 << 20  # bytes gathered before one write() in a worker thread
_write_fd = os.write  # the seam: every byte of a request body goes through it
_close_fd = os.close  # and the fd's end: after the last job that uses it


class BatchWriter:
    """Writes one request's body in batches of `_WRITE_BATCH`, one worker-thread hop each.

    The body's pieces (bytes objects from the socket, never copied) are gathered into a batch;
    a full batch is written (and hashed, for Upload-Checksum) in a worker thread while the
    next one is read, so a request holds at most two batches in memory, and all requests
    together at most the store's `ByteBudget`. Nothing here fsyncs: the request's end does,
    once, in the hop `finish` runs.

    A write that fails (EIO; ENOSPC, often after a short write; a write() that takes no
    bytes, which `fsutil.wrote` turns into ENOSPC) stops the writer for good:
    `written` stays the end of the bytes write() took, contiguous from the start offset, and
    every later write is skipped. Writing the later pieces after the hole and counting them
    would commit an offset whose bytes are not what the camera sent, and verification would
    reject a genuine segment as if it had been tampered with.

    The fd is the writer's from construction: every use of it is a worker job, one at a time,
    and `close` closes it only when no job runs, else the running job closes it as its last
    step. A request cancelled at shutdown (or cancelled again while it waits for a job) does
    not stop a worker thread, and closing under it would let the thread write or fsync a
    closed fd, or a number the kernel meanwhile gave another upload's file; and the fd's
    flock keeps another request from truncating the file while the thread still writes.
    """

    def __init__(
        self, fd: int, digest: hashlib._Hash | None, offset: int, name: str, budget: ByteBudget
    ) -> None:
        self.fd = fd
        self._budget = budget
        self._name = name  # "upload <id>", for error messages
        self._digest = digest
        self.start = offset  # the upload's offset when the request began
        self.written = offset  # end of the bytes write() took, with no hole before it
        self.failure: OSError | None = None  # the write that stopped this writer
        self._pieces: list[bytes] = []
        self._size = 0
        self._job: asyncio.Future[Any] | None = None  # the worker job using the fd
        self._guard = threading.Lock()  # _running and _closing, shared with the worker
        self._running = False
        self._closing = False

    async def add(self, piece: bytes) -> None:
        """Keep `piece`; a full batch goes to the worker, after the one it is writing. When
        the store's budget is short, what was gathered goes first, then the wait."""
        if not self._budget.try_take(len(piece)):
            await self._dispatch()
            await self._budget.take(len(piece))
        self._pieces.append(piece)
        self._size += len(piece)
        if self._size >= _WRITE_BATCH:
            await self._dispatch()

    async def _dispatch(self) -> None:
        await self.drain()
        if self.failure is not None:
            raise self.error() from self.failure
        if self._pieces:
            self._job = self._start(self._write, self._take_pieces())

    async def drain(self) -> Any:
        """Wait for the job using the fd; its result. The job is not cancelled with the
        caller, and stays the writer's until it is done (a later drain or close waits)."""
        job = self._job
        if job is None:
            return None
        try:
            return await asyncio.shield(job)
        finally:
            if job.done():
                self._job = None

    async def finish(self, commit: Callable[[], int]) -> int:
        """The gathered pieces, then `commit`, in one worker job after the running one: the
        request's last hop. A cancelled caller leaves the job running to its end."""
        await self.drain()
        pieces = self._take_pieces()
        self._job = self._start(self._finish, pieces, commit)
        result: int = await self.drain()
        return result

    def close(self) -> None:
        """Drop the pieces never written and close the fd: now, or when the running job ends."""
        self._budget.give(sum(map(len, self._take_pieces())))
        with self._guard:
            if self._running:
                self._closing = True
                return
        _close_fd(self.fd)

    def sha256(self) -> bytes | None:
        return None if self._digest is None else self._digest.digest()

    def error(self) -> StoreError:
        """The failure, for the client: what failed and where the upload can resume."""
        reason = self.failure.strerror if self.failure is not None else None
        return StoreError(
            f"{self._name}: writing its data file failed after byte {self.written} "
            f"({reason or self.failure}); HEAD gives the offset to resume from"
        )

    def _take_pieces(self) -> list[bytes]:
        pieces, self._pieces, self._size = self._pieces, [], 0
        return pieces

    def _start(
        self, work: Callable[..., Any], pieces: list[bytes], *args: Any
    ) -> asyncio.Future[Any]:
        """`work(pieces, *args)` as the writer's job; the pieces' budget returns at its end."""
        size = sum(map(len, pieces))
        with self._guard:
            self._running = True
        try:
            job = asyncio.get_running_loop().run_in_executor(None, self._run, work, (pieces, *args))
        except BaseException:
            with self._guard:
                self._running = False
            self._budget.give(size)
            raise
        job.add_done_callback(lambda _: self._budget.give(size))
        return job

    def _run(self, work: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """In the worker: `work`, then close the fd if `close` came while it ran."""
        try:
            return work(*args)
        finally:
            with self._guard:
                self._running = False
                closing = self._closing
            if closing:
                _close_fd(self.fd)

    def _finish(self, pieces: list[bytes], commit: Callable[[], int]) -> int:
        self._write(pieces)
        return commit()

    def _write(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            if self.failure is not None:
                return
            if self._digest is not None:
                self._digest.update(piece)
            view = memoryview(piece)
            try:
                while view:
                    done = wrote(_write_fd(self.fd, view), len(view))  # 0: ENOSPC
                    self.written += done
                    view = view[done:]
            except OSError as exc:
                self.failure = exc
