"""A boolean that tasks can wait on: the settled dock state, "recording", "logged in".

Why not `asyncio.Event`: an Event can only be waited on to become set, while the uploader
must wait both for the dock (True) and for the undock (False) and must never miss a flip
that happened between two checks. `Signal` keeps the value and a generation counter, so a
waiter that arrives late sees the current value at once. Loop-only: set it from the event
loop (a foreign thread hops first, DESIGN §3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Signal:
    def __init__(self, name: str, value: bool = False) -> None:
        self.name = name
        self._value = value
        self._waiters: dict[bool, list[asyncio.Future[None]]] = {True: [], False: []}
        self._listeners: list[Callable[[bool], None]] = []

    def __bool__(self) -> bool:
        return self._value

    @property
    def value(self) -> bool:
        return self._value

    def set(self, value: bool) -> None:
        """Set the value; waiters and listeners hear only real changes, synchronously."""
        if value == self._value:
            return
        self._value = value
        waiters, self._waiters[value] = self._waiters[value], []
        for future in waiters:
            if not future.done():
                future.set_result(None)
        for listener in list(self._listeners):
            listener(value)

    def listen(self, listener: Callable[[bool], None]) -> None:
        """Call `listener(value)` on every change (on the loop, inside `set`)."""
        self._listeners.append(listener)

    async def wait_for(self, value: bool) -> None:
        """Return as soon as the signal holds `value` (at once if it already does)."""
        if self._value == value:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[value].append(future)
        try:
            await future
        finally:
            if future in self._waiters[value]:
                self._waiters[value].remove(future)

    def __repr__(self) -> str:
        return f"Signal({self.name!r}, {self._value})"
