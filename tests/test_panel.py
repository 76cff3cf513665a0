"""The GPIO panel on gpiozero's MockFactory: pins driven from another thread (as lgpio's
would be), a virtual clock, the real device, recorder and storage behind it."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from bodycamd.config import DockConfig, GpioConfig, IndicatorConfig
from bodycamd.device import Caller, Device
from bodycamd.dock import DockComponent
from bodycamd.indicators import (
    DARK,
    SOLID,
    IndicatorDriver,
    IndicatorPolicy,
    indicator_table,
    patterns,
    table_states,
)
from bodycamd.panel import EVENT_LIMIT, EdgeSink, PanelComponent
from bodycamd.recorder.component import CaptureComponent
from bodycamd.state import DeviceState
from bodycamd.storage.spool import Spool
from hw.gpio import GpioPanel, load_board
from tests.device_rig import make_device
from tests.storage.helpers import audit_kinds

ROOT = Path(__file__).resolve().parent.parent
PINS = load_board(GpioConfig())


class VirtualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    panel: PanelComponent
    device: Device
    factory: MockFactory
    clock: VirtualClock
    capture: CaptureComponent
    spool: Spool
    dock: DockComponent

    @property
    def gpio(self) -> GpioPanel:
        assert isinstance(self.panel.hardware, GpioPanel)
        return self.panel.hardware

    def level(self, name: str) -> bool:
        return bool(self.factory.pin(getattr(PINS, name)).state)

    def drive(self, pin: int, *, low: bool, at: float) -> None:
        """Set the virtual time, then drive the pin from another thread (lgpio's role)."""
        self.clock.now = at
        mock = self.factory.pin(pin)
        thread = threading.Thread(target=mock.drive_low if low else mock.drive_high)
        thread.start()
        thread.join()

    async def button(self, down: bool, at: float) -> None:
        self.drive(PINS.record_button, low=down, at=at)
        await self.settle()

    async def tick(self, t: float) -> None:
        self.clock.now = t
        await self.panel.tick(t)

    async def settle(self) -> None:
        for _ in range(3):  # let call_soon_threadsafe callbacks run
            await asyncio.sleep(0)
        await self.panel.drain()

    def audit(self) -> list[str]:
        return audit_kinds(self.spool)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = VirtualClock()
    dock = DockComponent(DockConfig(), clock=clock)
    device, capture, spool = await make_device(tmp_path, dock=dock)
    consuming = asyncio.create_task(capture.run())
    factory = MockFactory(pin_class=MockPWMPin)

    def hardware(post: EdgeSink) -> GpioPanel:
        gpio = GpioPanel(PINS, factory, dock.route_edges(post), clock=clock)
        dock.attach_contact(lambda: gpio.docked)
        return gpio

    panel = PanelComponent(hardware, device, GpioConfig(), IndicatorConfig(), clock=clock)
    await panel.start()
    await dock.start()
    await device.login("123456", Caller("test"))
    yield Rig(panel, device, factory, clock, capture, spool, dock)
    await dock.stop()
    await panel.stop()
    await capture.stop()
    await consuming
    factory.close()


async def test_press_starts_recording_and_lights_both_leds(rig: Rig) -> None:
    assert not rig.level("record_led") and not rig.level("announce_led")
    await rig.button(True, at=1000.0)
    assert rig.device.state.recording == "recording"
    assert rig.level("record_led") and rig.level("announce_led")  # no tick needed
    assert rig.level("buzzer")  # the first of two short beeps
    await rig.tick(1000.15)
    assert not rig.level("buzzer")
    await rig.button(False, at=1000.2)
    await rig.tick(1000.25)
    assert rig.level("buzzer") and rig.level("record_led")  # second beep at 0.2-0.3 s
    await rig.tick(1000.35)
    assert not rig.level("buzzer")
    buzzer = rig.factory.pin(PINS.buzzer)
    assert [s.state for s in buzzer.states] == [False, True, False, True, False]


async def test_short_press_while_recording_does_nothing_hold_stops(rig: Rig) -> None:
    await rig.button(True, at=1000.0)
    await rig.button(False, at=1000.2)
    await rig.button(True, at=1005.0)
    await rig.button(False, at=1005.3)
    assert rig.device.state.recording == "recording"
    await rig.button(True, at=1010.0)
    await rig.tick(1012.9)
    assert rig.device.state.recording == "recording"
    await rig.tick(1013.0)
    assert rig.device.state.recording == "buffering"
    assert not rig.level("record_led") and not rig.level("announce_led")
    assert rig.level("buzzer")  # one long beep
    await rig.button(False, at=1013.5)
    assert rig.audit().count("recording_stop") == 1


async def test_hold_begun_right_after_the_start_press_stops(rig: Rig) -> None:
    """`sim hold 3` right after `sim press`: the hold's down edge comes 2 ms after the press's
    release, inside its bounce window, so it is taken when the window closes; it is timed
    from its edge, and a 3 s hold stops the recording."""
    await rig.button(True, at=1000.0)
    await rig.button(False, at=1000.15)
    await rig.button(True, at=1000.152)
    await rig.tick(1000.21)  # the window has closed: the press is taken
    await rig.tick(1003.1)
    assert rig.device.state.recording == "recording"
    await rig.button(False, at=1003.153)
    assert rig.device.state.recording == "buffering"
    assert rig.audit().count("recording_stop") == 1


async def test_press_right_after_a_hold_starts_again(rig: Rig) -> None:
    """The symmetric case: the hold's release, a quick press 2 ms later and its release all
    wait in the queue (the panel was busy stopping): the press is not lost."""
    await rig.button(True, at=1000.0)
    await rig.button(False, at=1000.2)
    await rig.button(True, at=1010.0)
    await rig.tick(1013.0)
    assert rig.device.state.recording == "buffering"
    for down, t in [(False, 1013.2), (True, 1013.202), (False, 1013.352)]:
        rig.drive(PINS.record_button, low=down, at=t)
    await rig.settle()
    assert rig.device.state.recording == "recording"
    assert rig.audit().count("recording_start") == 2


async def test_a_queued_release_ends_the_press_before_a_hold_is_judged(rig: Rig) -> None:
    """A tick late enough to complete a hold, with the press's release already queued: the
    release is taken first, so a 0.3 s press while recording does nothing."""
    await rig.button(True, at=1000.0)
    await rig.button(False, at=1000.2)
    await rig.button(True, at=1005.0)
    rig.drive(PINS.record_button, low=False, at=1005.3)
    for _ in range(3):  # the edge reaches the panel's queue, not yet handled
        await asyncio.sleep(0)
    await rig.tick(1008.5)
    assert rig.device.state.recording == "recording"
    assert rig.audit().count("recording_stop") == 0


async def test_double_press_adds_a_marker(rig: Rig) -> None:
    await rig.button(True, at=1000.0)
    await rig.button(False, at=1000.2)
    for t in (1002.0, 1002.4):
        await rig.button(True, at=t)
        await rig.button(False, at=t + 0.1)
    assert rig.audit().count("marker") == 1
    assert rig.device.state.recording == "recording"


async def test_bouncing_press_counts_once(rig: Rig) -> None:
    for down, t in [
        (True, 1000.000),
        (False, 1000.004),
        (True, 1000.008),
        (False, 1000.012),
        (True, 1000.020),
    ]:
        rig.drive(PINS.record_button, low=down, at=t)
    await rig.settle()
    assert rig.audit().count("recording_start") == 1
    await rig.tick(1000.1)
    await rig.button(False, at=1000.3)
    assert rig.device.state.recording == "recording"


async def test_a_flood_of_edges_while_busy_keeps_the_final_release(rig: Rig) -> None:
    """A bouncy press and release, 202 edges, while the device is busy with the recording's
    start (its change lock held: a slow journal write, say): far more than the panel queues
    (EVENT_LIMIT). The queue coalesces but keeps the latest edge, so the button ends
    released and no hold stops the recording 3 s later. (Before, the newest edges were
    dropped, the final release among them, and a hold fired at 1003.0.)"""
    busy = rig.device._changing  # the device's one-change-at-a-time lock
    await busy.acquire()
    try:
        rig.drive(PINS.record_button, low=True, at=1000.0)
        consumer = asyncio.create_task(rig.panel.drain())
        for _ in range(3):  # the press is taken: its START waits for the device
            await asyncio.sleep(0)
        assert rig.panel.button_edges == 0 and rig.device.state.recording != "recording"
        press = [(i % 2 == 0, 1000.0 + i / 10000) for i in range(1, 101)]  # ends down
        release = [(j % 2 == 1, 1000.3 + j / 10000) for j in range(101)]  # ends up
        for down, t in press + release:
            rig.drive(PINS.record_button, low=down, at=t)
        for _ in range(3):  # every edge reaches the queue while the consumer is blocked
            await asyncio.sleep(0)
        assert rig.panel.button_edges == 0
    finally:
        busy.release()
    await consumer
    assert rig.device.state.recording == "recording"
    assert rig.panel.button_edges == 1 + len(press + release)  # coalesced ones count too
    await rig.tick(1003.5)
    await rig.tick(1010.0)
    assert rig.device.state.recording == "recording"
    assert rig.audit().count("recording_stop") == 0
    assert not rig.panel.button_pressed
    assert rig.panel.coalesced_edges == len(press + release) - EVENT_LIMIT
    # the logic is in step with the pin: a real hold still stops
    await rig.button(True, at=1020.0)
    await rig.tick(1023.0)
    assert rig.device.state.recording == "buffering"
    await rig.button(False, at=1023.5)
    assert rig.audit().count("recording_stop") == 1


async def test_exception_in_handler_does_not_stop_later_presses(rig: Rig) -> None:
    original = rig.gpio._post
    calls = {"n": 0}

    def flaky(kind: str, level: bool, t: float) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("handler bug")
        original(kind, level, t)

    rig.gpio._post = flaky
    await rig.button(True, at=1000.0)  # lost to the bug
    await rig.button(False, at=1000.2)
    assert rig.gpio.handler_errors == 1
    await rig.button(True, at=1001.0)  # still arrives
    assert rig.device.state.recording == "recording"


async def test_dock_sense_debounce(rig: Rig) -> None:
    """The contact's edges reach the DockComponent (not the panel); its settled state is a
    Signal the device follows."""
    heard: list[bool] = []
    rig.dock.docked.listen(heard.append)
    dock = PINS.dock_sense
    rig.drive(dock, low=True, at=1000.0)
    await rig.settle()
    assert rig.dock.pending == "docking"
    rig.drive(dock, low=False, at=1000.5)  # wobbling in the cradle
    rig.drive(dock, low=True, at=1001.0)
    await rig.settle()
    rig.dock.tick(1002.9)
    await rig.device.settle()
    assert not rig.dock.docked.value and not rig.device.state.docked
    assert rig.device.state.dock_pending == "docking" and "docking…" in rig.device.status()
    assert rig.dock.tick(1003.0) is None and heard == [True]
    await rig.device.settle()  # the device's run loop does this when the Signal flips
    await rig.tick(1003.0)
    assert rig.device.state.docked and rig.dock.pending is None
    assert rig.device.state.officer is None  # docking ended the shift
    assert rig.level("status_amber")  # nobody logged in
    assert "dock" in rig.audit() and rig.dock.status() == "dock: docked (gpio)"


@pytest.mark.parametrize(("name", "state"), table_states(), ids=[n for n, _ in table_states()])
def test_each_documented_state_drives_exactly_its_pins(name: str, state: DeviceState) -> None:
    """Render each table state on mock pins over 4 s: the levels and the number of changes
    are what the documented pattern implies."""
    factory = MockFactory(pin_class=MockPWMPin)
    panel = GpioPanel(PINS, factory, lambda *a: None)
    try:
        driver = IndicatorDriver(panel.set_output, IndicatorPolicy(reminder_seconds=1000))
        driver.update(state, 0.0)
        for pin in ("record_led", "announce_led", "status_green", "status_amber"):
            factory.pin(getattr(PINS, pin)).clear_states()
        steps = [i / 100 for i in range(400)]
        for t in steps:
            driver.render(t)
        expected = patterns(state)
        for pin in ("record_led", "announce_led", "status_green", "status_amber"):
            blink = getattr(expected, pin)
            levels = [blink.level_at(t) for t in steps]
            changes = sum(1 for a, b in itertools.pairwise(levels) if a != b)
            history = factory.pin(getattr(PINS, pin)).states
            assert history[-1].state == levels[-1], pin
            assert len(history) - 1 == changes + (1 if levels[0] else 0), pin
    finally:
        panel.close()
        factory.close()


def test_indicator_doc_is_the_generated_table() -> None:
    doc = (ROOT / "docs" / "indicators.md").read_text().splitlines()
    assert [line for line in doc if line.startswith("| ")][
        : len(indicator_table())
    ] == indicator_table()


def test_shutdown_leaves_no_threads_and_no_pins() -> None:
    before = {t.ident for t in threading.enumerate()}
    factory = MockFactory(pin_class=MockPWMPin)
    panel = GpioPanel(PINS, factory, lambda *a: None)
    panel.close()
    assert all(not refs for refs in factory._reservations.values())
    leftover = [t for t in threading.enumerate() if t.ident not in before]
    assert leftover == []
    factory.close()


async def test_power_supply_dock_source(tmp_path: Path) -> None:
    from bodycamd.dock import DockDebouncer, poll_dock, power_supply_online

    online = tmp_path / "online"
    online.write_text("0\n")
    clock = VirtualClock()
    changes: list[bool] = []

    async def read() -> bool:
        return power_supply_online(online)

    async def changed(docked: bool) -> None:
        changes.append(docked)

    async def sleep(seconds: float) -> None:
        clock.now += seconds
        if clock.now == 1002.0:
            online.write_text("1\n")
        if clock.now >= 1010.0:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await poll_dock(read, DockDebouncer(2.0), changed, interval=1.0, clock=clock, sleep=sleep)
    assert changes == [True]


async def test_endpoint_dock_source() -> None:
    from bodycamd.dock import endpoint_reachable

    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    assert await endpoint_reachable("127.0.0.1", port)
    server.close()
    await server.wait_closed()
    assert not await endpoint_reachable("127.0.0.1", port)


def test_tones_follow_recording_and_respect_stealth() -> None:
    from bodycamd.indicators import LONG_BEEP, SHORT_BEEPS, tones

    idle = DeviceState(officer="1", recording="buffering")
    recording = DeviceState(officer="1", recording="recording")
    assert tones(idle, recording) == SHORT_BEEPS
    assert tones(recording, idle) == LONG_BEEP
    quiet = DeviceState(officer="1", recording="recording", stealth=True)
    assert tones(idle, quiet) == ()
    assert tones(quiet, DeviceState(officer="1", recording="buffering", stealth=True)) == ()
    assert tones(recording, recording) == ()


def test_reminder_tone_while_recording() -> None:
    levels: list[tuple[str, bool]] = []
    driver = IndicatorDriver(
        lambda name, level: levels.append((name, level)), IndicatorPolicy(reminder_seconds=120.0)
    )
    driver.update(DeviceState(officer="1", recording="recording"), 0.0)
    for t in (0.0, 0.15, 0.25, 0.35, 60.0, 119.9):
        driver.render(t)
    assert driver.render(119.95) == 120.0  # next change: the reminder
    levels.clear()
    driver.render(120.0)
    assert ("buzzer", True) in levels
    driver.render(120.06)
    assert levels[-1] == ("buzzer", False)


@pytest.mark.parametrize("flag", ["upload_rejected", "recorder_error", "journal_error"])
def test_a_flag_that_asks_someone_to_act_never_shows_all_is_well(flag: str) -> None:
    """Docked with nothing awaiting upload is solid green ("all uploaded"); a segment the
    ingest refused is not awaiting upload but is not uploaded either, and it showed exactly
    that. Every such flag turns green off and blinks amber."""
    docked = DeviceState(officer="1", recording="buffering", docked=True, awaiting_upload=0)
    assert patterns(docked).status_green == SOLID
    flagged = patterns(dataclasses.replace(docked, health=frozenset({flag})))
    assert flagged.status_green == DARK and flagged.status_amber not in (DARK, SOLID)
