"""The byte budget: request-body bytes that all requests of one store hold in memory at once.

The per-device limit bounds uploads per device, not devices, and the per-request bound
(`max_request_body_bytes`) times the connections a node takes is far past its memory: 2,000
cameras docking at once would each hold a buffer. Every store that keeps body bytes in
memory takes them from one `ByteBudget` (`[limits] max_buffered_bytes`): the filesystem
store per piece as it gathers a batch (fs_batch.py), the S3 store per append for the part it
gathers (s3_store.py). A request that finds it short waits, reading nothing from its
connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class ByteBudget:
    """The request-body bytes that the store's writers hold in memory, across all requests.

    Takers get their turn in arrival order. The rule that keeps them from waiting on each
    other: whoever waits must hold no budget that only its own progress would give back.
    The filesystem writer takes budget for each piece and, finding it short, first hands what
    it gathered to its worker thread, so every byte counted is in a write that will end; the
    S3 writer takes what one append can hold (its part and the copy being sent) at once,
    before it reads anything. A take larger than the whole budget is let through when
    nothing else is held.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        """How many takers wait for budget now (for tests and the curious)."""
        return len(self._waiters)

    def try_take(self, size: int) -> bool:
        if self._waiters or not self._fits(size):
            return False
        self.held += size
        return True

    async def take(self, size: int) -> None:
        if self.try_take(size):
            return
        entry = (size, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            await entry[1]
        except asyncio.CancelledError:
            if entry[1].done() and not entry[1].cancelled():
                self.give(size)  # granted as the cancel came: not kept
            elif entry in self._waiters:
                self._waiters.remove(entry)
                self._wake()
            raise

    @contextlib.asynccontextmanager
    async def holding(self, size: int) -> AsyncIterator[None]:
        """`size` bytes of budget for the block: taken (waiting, if need be) and given back."""
        await self.take(size)
        try:
            yield
        finally:
            self.give(size)

    def give(self, size: int) -> None:
        self.held -= size
        self._wake()

    def _fits(self, size: int) -> bool:
        return self.held + size <= self.limit or self.held == 0

    def _wake(self) -> None:
        while self._waiters and self._fits(self._waiters[0][0]):
            size, waiter = self._waiters.popleft()
            if not waiter.done():
                self.held += size
                waiter.set_result(None)
