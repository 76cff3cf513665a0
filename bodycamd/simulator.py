"""The bench simulator behind `bodycamctl sim`: it works the mock pins like a person would,
so a simulated shift goes through exactly the code paths of real hardware (gpiozero's
callbacks on another thread, debouncing, hold timing, dock debouncing). Only with
hardware = "simulated"; on real hardware the control API refuses these requests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from .errors import Refused
from .panel import PanelComponent

PRESS_SECONDS = 0.15


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

    async def press(self) -> None:
        """A press as a thumb makes it: down for 150 ms, then up."""
        await self.hold(PRESS_SECONDS)

    async def hold(self, seconds: float) -> None:
        hands = self._hands()
        await asyncio.to_thread(hands.push, True)
        try:
            await self._sleep(seconds)
        finally:
            await asyncio.to_thread(hands.push, False)

    async def dock(self, docked: bool) -> None:
        await asyncio.to_thread(self._hands().set_dock, docked)
