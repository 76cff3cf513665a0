"""Crossing between the event loop and threads, in one place (DESIGN.md §3).

Three small pieces that every component uses instead of writing its own:

- `LoopHop`: post a call onto the loop from any thread. It never blocks and never raises into
  the calling thread (picamera2's encoder thread, gpiozero's lgpio thread); once the loop has
  closed the call is dropped and `post` says so.
- `Inbox`: a queue filled from any thread (or the loop) and emptied on the loop. The loop is
  woken only when a waking item lands in an inbox whose consumer is not already awake, so a
  burst of items costs one wake-up, not one each; the consumer drains with `pop()` (no await
  per item). `close()` lets the consumer finish what is queued and then end.
- `WorkerThread`: one long-lived thread that runs blocking calls for the loop, one at a
  time in order, fed by a bounded queue. Awaiting `run(fn)` is what `asyncio.to_thread(fn)`
  would be, minus a pool and a context copy per call.
- `sleep_unless(event, seconds, sleep)`: an interruptible sleep through an injectable sleep
  function, which awaits what it cancelled, so no task or future is left behind.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")


class LoopHop:
    """Schedules calls on one event loop from any thread. Made unbound where no loop runs yet
    (a component's constructor) and bound by `bind()` on the loop when it starts."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop

    @classmethod
    def here(cls) -> LoopHop:
        """The hop onto the running loop (call on the loop)."""
        return cls(asyncio.get_running_loop())

    def bind(self) -> None:
        """Bind to the running loop (call on the loop)."""
        self._loop = asyncio.get_running_loop()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "LoopHop used before bind() on the loop"
        return self._loop

    def post(self, call: Callable[..., object], *args: Any) -> bool:
        """Run `call(*args)` on the loop soon; False (and nothing run) when unbound or once
        the loop closed."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(call, *args)
        except RuntimeError:  # closed between the check and the call
            return False
        return True


class Inbox(Generic[_T]):
    """Items from any thread, taken on the loop in arrival order, one wake-up per batch.

    Unbounded by itself: the owner bounds it (PacketChannel by bytes, under its own lock,
    before it pushes), because only the owner knows what may be dropped.
    """

    def __init__(self, hop: LoopHop, *, coalesce_seconds: float = 0.0) -> None:
        self._hop = hop
        self._coalesce_ns = int(coalesce_seconds * 1e9)
        self._last_wake_ns = 0
        self._items: deque[_T] = deque()
        self._lock = threading.Lock()
        self._ready = asyncio.Event()  # touched on the loop only
        self._wake_posted = False  # a wake-up is on its way: do not post another
        self._closed = False
        self._watchers: list[asyncio.Future[None]] = []  # loop-only
        self.wakeups = 0

    def __len__(self) -> int:
        return len(self._items)

    def push(self, item: _T, *, wake: bool = True) -> None:
        """Queue `item` (any thread). With `wake=False`, or within `coalesce_seconds` of the
        last wake-up, the item rides along with the next waking one; an owner that may stop
        pushing calls `nudge` now and then (the capture watchdog does, twice a second)."""
        with self._lock:
            self._items.append(item)
            if not wake or self._wake_posted:
                return
            if self._coalesce_ns:
                now = time.monotonic_ns()
                if now - self._last_wake_ns < self._coalesce_ns:
                    return
                self._last_wake_ns = now
            self._wake_posted = True
            self.wakeups += 1
        self._hop.post(self._wake)

    def _wake(self) -> None:
        with self._lock:
            self._wake_posted = False
        self._ready.set()
        self._tell_watchers()

    def _tell_watchers(self) -> None:
        watchers, self._watchers = self._watchers, []
        for future in watchers:
            if not future.done():
                future.set_result(None)

    async def next_wakeup(self) -> None:
        """Until the next wake-up (or close), whoever consumes the items: for watching that
        something arrives without taking it."""
        if self._closed:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._watchers.append(future)
        try:
            await future
        finally:
            if future in self._watchers:
                self._watchers.remove(future)

    def nudge(self) -> None:
        """Wake the consumer now for items queued without a wake-up (on the loop)."""
        self._ready.set()

    def pop(self) -> _T | None:
        """The oldest item, or None when empty (on the loop, no await)."""
        with self._lock:
            return self._items.popleft() if self._items else None

    async def wait(self) -> bool:
        """Return True once an item is queued, False once closed and empty."""
        while True:
            with self._lock:
                if self._items:
                    return True
                if self._closed:
                    return False
            self._ready.clear()
            await self._ready.wait()

    def close(self) -> None:
        """No more waiting: the consumer takes what is queued, then `wait` returns False
        (on the loop)."""
        self._closed = True
        self._ready.set()
        self._tell_watchers()

    def clear(self) -> list[_T]:
        """Take everything queued at once (what shutdown gives up on)."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
        return items


_Job = tuple[Callable[[], Any], "asyncio.Future[Any]"]


class WorkerThread:
    """One thread for one component's blocking calls (file writes, fsync, SQLite), fed by a
    queue of at most `depth` calls; `run` waits for room, so a slow card slows the caller,
    never the loop, and nothing piles up. Calls run in submission order, which is also what
    keeps a segment's writes, checkpoints and seal in order.

    Lifetime: `start()` on the loop, `await stop()` before the loop ends; a call queued
    before `stop` still runs, none after it.
    """

    def __init__(self, name: str, depth: int = 4) -> None:
        self._name = name
        self._queue: queue.Queue[_Job | None] = queue.Queue()  # None: stop
        self._slots: asyncio.Semaphore | None = None
        self._depth = depth
        self._thread: threading.Thread | None = None
        self._hop: LoopHop | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._hop = LoopHop.here()
        self._slots = asyncio.Semaphore(self._depth)
        self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
        self._thread.start()

    async def run(self, call: Callable[[], _T]) -> _T:
        """`call()` on the worker thread; its result or exception comes back here."""
        if self._thread is None:
            self.start()
        assert self._hop is not None and self._slots is not None
        async with self._slots:
            future: asyncio.Future[_T] = self._hop.loop.create_future()
            self._queue.put((call, future))
            return await future

    async def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(None)
        await asyncio.to_thread(thread.join)

    def _serve(self) -> None:
        assert self._hop is not None
        while True:
            job = self._queue.get()
            if job is None:
                return
            call, future = job
            try:
                result = call()
            except BaseException as exc:  # handed to the awaiting caller, never lost
                self._hop.post(_settle, future, None, exc)
            else:
                self._hop.post(_settle, future, result, None)


def _settle(future: asyncio.Future[Any], result: object, error: BaseException | None) -> None:
    if future.done():  # the caller was cancelled: nobody to tell
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


async def sleep_unless(
    event: asyncio.Event,
    seconds: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> bool:
    """Sleep `seconds` with `sleep` (injectable, for tests), cut short when `event` is set;
    True when the event is set. Both waits are awaited to their end, even when cancelled."""
    if event.is_set():
        return True
    sleeper: asyncio.Future[Any] = asyncio.ensure_future(sleep(seconds))
    waiter: asyncio.Future[Any] = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait([sleeper, waiter], return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        waiter.cancel()
        await asyncio.gather(sleeper, waiter, return_exceptions=True)
    return event.is_set()
