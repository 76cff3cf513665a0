"""The refusal signal: pips and an amber flash at exact instants, then the state's pattern."""

from __future__ import annotations

from bodycamd.device import Caller
from bodycamd.indicators import REFUSAL_SECONDS, IndicatorDriver, IndicatorPolicy
from bodycamd.panel import ButtonOutcome
from bodycamd.state import DeviceState
from tests.test_panel import Rig, rig  # noqa: F401  (the panel rig fixture)


def levels_over(
    driver: IndicatorDriver, start: float, end: float
) -> dict[str, list[tuple[float, bool]]]:
    """Every pin change between start and end, by rendering at each instant due."""
    changes: dict[str, list[tuple[float, bool]]] = {}

    def record(name: str, level: bool) -> None:
        changes.setdefault(name, []).append((round(t, 3), level))

    driver._set = record
    t = start
    while t < end:
        due = driver.render(t)
        t = min(max(due, t + 1e-6), end)
    return changes


def test_refusal_pips_and_flashes_amber_then_the_pattern_returns() -> None:
    driver = IndicatorDriver(lambda name, level: None, IndicatorPolicy())
    logged_in = DeviceState(officer="123456", recording="buffering")
    driver.update(logged_in, 10.0)
    driver.render(10.0)
    driver.refused(10.5)
    changes = levels_over(driver, 10.5, 13.0)
    buzzer = changes["buzzer"]
    assert buzzer[:6] == [
        (10.5, True),
        (10.55, False),
        (10.6, True),
        (10.65, False),
        (10.7, True),
        (10.75, False),
    ]
    amber = [(t, level) for t, level in changes["status_amber"] if t < 10.5 + REFUSAL_SECONDS]
    assert amber[0] == (10.5, True) and len(amber) >= 19  # 0.05 s on / 0.05 s off for 1 s
    assert changes["status_green"][0] == (10.5, False)
    # after the second, the logged-in pattern (green blinking, amber off) is back
    last_time, last_level = changes["status_amber"][-1]
    assert last_time <= 10.5 + REFUSAL_SECONDS and last_level is False
    assert (12.0, True) in changes["status_green"]  # blinking from its epoch again


def test_no_refusal_signal_in_a_stealth_recording() -> None:
    driver = IndicatorDriver(lambda name, level: None, IndicatorPolicy())
    stealthy = DeviceState(officer="123456", recording="recording", stealth=True)
    driver.update(stealthy, 0.0)
    driver.render(0.0)
    driver.refused(1.0)
    changes = levels_over(driver, 1.0, 3.0)
    assert not any(level for _, level in changes.get("buzzer", []))
    assert not any(level for _, level in changes.get("status_amber", []))


async def test_a_refused_press_pips_and_flashes_on_the_pins(rig: Rig) -> None:  # noqa: F811
    """The panel's own pins: a press while nobody is logged in sounds the refusal pips and
    flashes amber, and the outcome is kept for the simulator with its code."""
    await rig.device.logout(Caller("test"))
    await rig.tick(1000.0)
    await rig.button(True, at=1000.0)
    assert rig.device.state.recording != "recording"
    assert rig.level("buzzer") and rig.level("status_amber")
    await rig.tick(1000.07)  # mid-gap, clear of float rounding at the edges
    assert not rig.level("buzzer") and not rig.level("status_amber")
    await rig.tick(1000.12)
    assert rig.level("buzzer") and rig.level("status_amber")
    await rig.button(False, at=1000.2)
    await rig.tick(1001.0)  # the flash is over: nobody logged in shows amber solid again
    assert rig.level("status_amber") and not rig.level("buzzer")
    assert rig.panel.outcomes_since(0) == [
        ButtonOutcome("start", "not_logged_in", "log in with a personnel number to record")
    ]
