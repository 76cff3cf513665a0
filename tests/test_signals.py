"""Signal: waiters for either value wake on the flip and never miss one that came first."""

from __future__ import annotations

import asyncio

from bodycamd.signals import Signal


async def test_waiters_wake_on_their_value_and_late_waiters_return_at_once() -> None:
    signal = Signal("docked")
    heard: list[bool] = []
    signal.listen(heard.append)
    docked = asyncio.create_task(signal.wait_for(True))
    await asyncio.sleep(0)
    assert not docked.done()
    signal.set(True)
    signal.set(True)  # no change: nobody hears it twice
    await docked
    await signal.wait_for(True)  # already true: returns at once
    undocked = asyncio.create_task(signal.wait_for(False))
    await asyncio.sleep(0)
    signal.set(False)
    await undocked
    assert heard == [True, False]


async def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    signal = Signal("recording")
    waiter = asyncio.create_task(signal.wait_for(True))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert signal._waiters[True] == []
    signal.set(True)
    assert signal
