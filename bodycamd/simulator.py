"""The bench simulator behind `bodycamctl sim`: it works the mock pins like a person would,
so a simulated shift goes through exactly the code paths of real hardware (gpiozero's
callbacks on another thread, debouncing, hold timing, dock debouncing). Only with
hardware = "simulated"; on real hardware the control API refuses these requests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol

from .errors import Refused
from .panel import ButtonOutcome, PanelComponent

PRESS_SECONDS = 0.15
SETTLE_SECONDS = 2.0  # the most the panel takes to handle the edges we made


class MockPinHands(Protocol):
    def push(self, down: bool) -> None: ...

    def set_dock(self, docked: bool) -> None: ...


class PanelSimulator:
    def __init__(
        self, panel: PanelComponent, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        self._panel = panel
        self._sleep = sleep

    def _hands(self) -> MockPinHands:
        hardware = self._panel.hardware
        if hardware is None:
            raise Refused("unavailable", "the panel is not running")
        return hardware  # type: ignore[return-value]  # GpioPanel on mock pins

    async def press(self) -> list[ButtonOutcome]:
        """A press as a thumb makes it: down for 150 ms, then up."""
        return await self.hold(PRESS_SECONDS)

    async def hold(self, seconds: float) -> list[ButtonOutcome]:
        """Hold the button `seconds`; returns what the button did (started, stopped, a
        marker, or a refusal with its code), once the panel has handled both edges. An
        empty list: the press did nothing (a short press while recording)."""
        hands = self._hands()
        edges, seen = self._panel.button_edges, self._panel.outcome_count
        await asyncio.to_thread(hands.push, True)
        try:
            await self._sleep(seconds)
        finally:
            await asyncio.to_thread(hands.push, False)
        with contextlib.suppress(TimeoutError):  # an edge lost before the panel (a handler error)
            async with asyncio.timeout(SETTLE_SECONDS):
                await self._panel.button_handled(edges + 2)
        return self._panel.outcomes_since(seen)

    async def dock(self, docked: bool) -> None:
        await asyncio.to_thread(self._hands().set_dock, docked)
