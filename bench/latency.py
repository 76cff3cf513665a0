"""Record button to record LED: the time from a button edge on gpiozero's thread to the LED
pin turning on, through the real thread hop, button logic, device policy, recorder start and
indicator driver (MockFactory pins, real clock, a synthetic camera running).

Twice: with no pre-event buffer, and with a full one on a card whose fsync takes as long as
an SD card's (SD_FSYNC_SECONDS): the LED must not wait for the buffered footage and its
checkpoints to reach flash (it did: 2 s for 30 s of 10 Mbit/s footage at 30 ms a fsync)."""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from gpiozero.pins.mock import MockFactory, MockPWMPin

from bodycamd.config import GpioConfig, IndicatorConfig, RecorderConfig
from bodycamd.device import Caller
from bodycamd.panel import EdgeSink, PanelComponent
from hw.gpio import GpioPanel, load_board
from tests.device_rig import make_device
from tests.recorder.helpers import recorder_config

PRESSES = 20
PRE_EVENT_PRESSES = 5
PRE_EVENT_SECONDS = 5.0  # filled before each press: 10 checkpoints of footage
SD_FSYNC_SECONDS = 0.03


def slow_fsync(fd: int) -> None:
    """An SD card's fsync: the real one, then the rest of a typical card's 30 ms."""
    start = time.perf_counter()
    os.fsync(fd)
    time.sleep(max(0.0, SD_FSYNC_SECONDS - (time.perf_counter() - start)))


async def measure(root: Path, presses: int, recorder: RecorderConfig | None = None) -> list[float]:
    pre_event = recorder.pre_event_seconds if recorder else 0.0
    device, capture, _ = await make_device(
        root, recorder=recorder, fsync=slow_fsync if recorder else os.fsync
    )
    consumer = asyncio.create_task(capture.run())
    pins = load_board(GpioConfig())
    factory = MockFactory(pin_class=MockPWMPin)
    lit: dict[str, float] = {}
    on = asyncio.Event()

    def hardware(post: EdgeSink) -> GpioPanel:
        panel = GpioPanel(pins, factory, post)
        original = panel.set_output

        def timed(name: str, level: bool) -> None:
            if name == "record_led" and level:
                lit["at"] = time.perf_counter()
                on.set()
            original(name, level)

        panel.set_output = timed  # type: ignore[method-assign]
        return panel

    panel = PanelComponent(hardware, device, GpioConfig(), IndicatorConfig())
    await panel.start()
    running = asyncio.create_task(panel.run())
    await device.login("123456", Caller("bench"))
    button = factory.pin(pins.record_button)
    latencies = []
    for _ in range(presses):
        await asyncio.sleep(pre_event)  # the pre-event buffer fills (it empties at each start)
        lit.clear()
        on.clear()
        pressed = time.perf_counter()
        thread = threading.Thread(target=button.drive_low)  # lgpio's thread
        thread.start()
        thread.join()
        await on.wait()
        latencies.append(lit["at"] - pressed)
        await asyncio.to_thread(button.drive_high)
        await asyncio.sleep(0.1)
        await device.record_stop(Caller("bench"))
        await asyncio.sleep(0.1)
    await panel.stop()
    await capture.stop()
    await consumer
    running.cancel()
    factory.close()
    return latencies


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        latencies = asyncio.run(measure(Path(root), PRESSES))
    with tempfile.TemporaryDirectory() as root:
        config = recorder_config(pre_event_seconds=PRE_EVENT_SECONDS)
        buffered = asyncio.run(measure(Path(root), PRE_EVENT_PRESSES, config))
    for label, figures in (
        (f"no pre-event, {PRESSES} presses", latencies),
        (
            f"{PRE_EVENT_SECONDS:.0f} s pre-event buffer, fsync {SD_FSYNC_SECONDS * 1000:.0f} ms, "
            f"{PRE_EVENT_PRESSES} presses",
            buffered,
        ),
    ):
        ms = sorted(x * 1000 for x in figures)
        print(
            f"record button -> record LED on ({label}): median {statistics.median(ms):.1f} ms, "
            f"worst {ms[-1]:.1f} ms (target < 100 ms)"
        )


if __name__ == "__main__":
    main()
