"""The DockComponent: sources sampled on an injected clock, a debounced settled state
published as a Signal, and a pending value while a new level settles."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bodycamd.config import DockConfig
from bodycamd.dock import DockComponent
from bodycamd.errors import ConfigError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_power_supply_source_publishes_the_settled_state(tmp_path: Path) -> None:
    online = tmp_path / "online"
    online.write_text("0\n")
    clock = Clock()
    seen: list[tuple[float, bool, str | None]] = []

    async def sleep(seconds: float) -> None:
        clock.now += seconds
        if clock.now == 1002.0:
            online.write_text("1\n")  # the camera goes into a charging dock
        seen.append((clock.now, dock.docked.value, dock.pending))
        if dock.docked.value:
            await dock.stop()
        await asyncio.sleep(0)

    config = DockConfig(source="power_supply", power_supply_online=str(online))
    dock = DockComponent(config, clock=clock, sleep=sleep)
    await dock.start()
    await asyncio.wait_for(dock.run(), 20)
    assert dock.docked.value and dock.pending is None
    assert (1003.0, False, "docking") in seen  # sampled docked at 1002, not yet settled
    assert (1004.0, False, "docking") in seen
    assert seen[-1] == (1005.0, True, None)  # sampled at 1004, held 2 s: settled


async def test_a_bad_endpoint_fails_the_start_by_name() -> None:
    dock = DockComponent(DockConfig(source="endpoint", endpoint="no-port"))
    with pytest.raises(ConfigError, match=r'dock\.endpoint: expected "host:port", got "no-port"'):
        await dock.start()


async def test_contact_edges_from_another_thread_are_debounced() -> None:
    clock = Clock()
    dock = DockComponent(DockConfig(stable_seconds=2.0), clock=clock)
    dock.attach_contact(lambda: True)  # docked at start
    await dock.start()
    assert dock.pending == "docking" and not dock.docked.value
    assert dock.tick(1002.0) is None and dock.docked.value
    forwarded: list[tuple[str, bool, float]] = []
    sink = dock.route_edges(lambda kind, level, t: forwarded.append((kind, level, t)))
    await asyncio.to_thread(sink, "dock", False, 1003.0)  # gpiozero's thread
    await asyncio.to_thread(sink, "button", True, 1003.1)
    await asyncio.sleep(0)
    assert forwarded == [("button", True, 1003.1)]
    assert dock.pending == "undocking"
    assert dock.tick(1005.0) is None and not dock.docked.value
