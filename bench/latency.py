"""Record button to record LED: the time from a button edge on gpiozero's thread to the LED
pin turning on, through the real thread hop, button logic, device policy, recorder start and
indicator driver (MockFactory pins, real clock, a synthetic camera running)."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

from gpiozero.pins.mock import MockFactory, MockPWMPin

from bodycamd.config import GpioConfig, IndicatorConfig
from bodycamd.device import Caller
from bodycamd.panel import EdgeSink, PanelComponent
from hw.gpio import GpioPanel, load_board
from tests.device_rig import make_device

PRESSES = 20


async def measure(root: Path) -> list[float]:
    device, capture, _ = await make_device(root)
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
    for _ in range(PRESSES):
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
        latencies = asyncio.run(measure(Path(root)))
    ms = sorted(x * 1000 for x in latencies)
    print(
        f"record button -> record LED on, {PRESSES} presses: median "
        f"{statistics.median(ms):.1f} ms, worst {ms[-1]:.1f} ms (target < 100 ms)"
    )


if __name__ == "__main__":
    main()
