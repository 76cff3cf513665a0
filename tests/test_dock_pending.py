"""The dock's debounce is visible: while a dock level is being waited out the state says
"docking…"/"undocking…" (and an event says so), and an undock too short to count shows as a
pending undock that ended, not as nothing (issue #12, item 8)."""

from __future__ import annotations

from bodycamd.state import DeviceState
from tests.test_panel import PINS, Rig, rig  # noqa: F401  (the panel rig fixture)


async def test_docking_shows_pending_until_it_settles(rig: Rig) -> None:  # noqa: F811
    events = rig.device.events.subscribe()
    rig.drive(PINS.dock_sense, low=True, at=1000.0)
    await rig.settle()
    state = rig.device.state
    assert state.dock_pending is True and not state.docked
    assert "docking…" in state.summary()
    await rig.tick(1001.0)
    assert rig.device.state.dock_pending is True  # still settling
    await rig.tick(1002.0)
    state = rig.device.state
    assert state.docked and state.dock_pending is None
    assert "docked" in state.summary() and "docking…" not in state.summary()
    # a 1 s undock: shown while it lasts, then gone; the dock never undocked
    rig.drive(PINS.dock_sense, low=False, at=1003.0)
    await rig.settle()
    assert rig.device.state.dock_pending is False
    assert "undocking…" in rig.device.state.summary()
    rig.drive(PINS.dock_sense, low=True, at=1004.0)
    await rig.settle()
    await rig.tick(1006.0)
    assert rig.device.state.docked and rig.device.state.dock_pending is None
    reasons = []
    while events._items:
        change = await events.next()
        reasons.append((change.reason, change.new.dock_pending, change.new.docked))
    pending = [r for r in reasons if r[0] == "dock_pending"]
    assert pending == [
        ("dock_pending", True, False),
        ("dock_pending", False, True),
        ("dock_pending", None, True),
    ]


def test_summary_of_a_pending_state() -> None:
    assert DeviceState(dock_pending=True).summary() == "nobody logged in, idle, docking…"
    assert DeviceState(docked=True, dock_pending=False).summary() == (
        "nobody logged in, idle, undocking…"
    )
