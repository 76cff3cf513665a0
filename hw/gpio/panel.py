"""The panel's gpiozero devices, on a pin factory passed in (never gpiozero's global one).

Handlers run on gpiozero's thread (lgpio's callback thread on a Pi, or whichever thread drives
a mock pin). Each does one thing: hand the edge, with its time, to `post`, which schedules it
onto the event loop with call_soon_threadsafe. Each is wrapped in try/except, because an
exception escaping one gpiozero callback silently ends all later callbacks.

Closing clears the handlers first, then closes the devices (releasing their pins and
stopping their threads), so no callback can arrive for a device that is gone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from gpiozero import LED, Buzzer, DigitalInputDevice
from gpiozero.pins import Factory
from gpiozero.pins.mock import MockFactory, MockPWMPin

from .boards import PanelPins

log = logging.getLogger(__name__)

# (kind, level, monotonic seconds): kind is "button" or "dock"; level True = pressed/docked
EdgeSink = Callable[[str, bool, float], None]


def make_pin_factory(hardware: str) -> Factory:
    """gpiozero's MockFactory (PWM-capable mock pins) when simulated; lgpio on a Pi."""
    if hardware == "simulated":
        return MockFactory(pin_class=MockPWMPin)
    from gpiozero.pins.lgpio import LGPIOFactory

    return LGPIOFactory()


class GpioPanel:
    def __init__(
        self,
        pins: PanelPins,
        factory: Factory,
        post: EdgeSink,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pins = pins
        self.factory = factory
        self._post = post
        self._clock = clock
        self.handler_errors = 0
        # a plain input, not gpiozero's Button: a Button runs a hold-detection thread that
        # wakes ten times a second for ever (0.08 % of a core on an idle daemon), and hold
        # timing is bodycamd/button.py's, from the edges
        self.button = DigitalInputDevice(
            pins.record_button, pull_up=True, bounce_time=None, pin_factory=factory
        )
        self.outputs: dict[str, Any] = {
            "record_led": LED(pins.record_led, pin_factory=factory),
            "announce_led": LED(pins.announce_led, pin_factory=factory),
            "status_green": LED(pins.status_green, pin_factory=factory),
            "status_amber": LED(pins.status_amber, pin_factory=factory),
            "buzzer": Buzzer(pins.buzzer, pin_factory=factory),
        }
        self.dock = DigitalInputDevice(
            pins.dock_sense, pull_up=True, bounce_time=None, pin_factory=factory
        )
        self.button.when_activated = lambda: self._edge("button", True)
        self.button.when_deactivated = lambda: self._edge("button", False)
        self.dock.when_activated = lambda: self._edge("dock", True)
        self.dock.when_deactivated = lambda: self._edge("dock", False)

    @property
    def docked(self) -> bool:
        return bool(self.dock.is_active)

    def _edge(self, kind: str, level: bool) -> None:
        try:
            self._post(kind, level, self._clock())
        except Exception:
            self.handler_errors += 1
            log.exception("GPIO %s handler failed; later edges still arrive", kind)

    def set_output(self, name: str, level: bool) -> None:
        device = self.outputs[name]
        if level:
            device.on()
        else:
            device.off()

    def close(self) -> None:
        self.button.when_activated = self.button.when_deactivated = None
        self.dock.when_activated = self.dock.when_deactivated = None
        for device in [*self.outputs.values(), self.dock, self.button]:
            device.close()

    # -- the simulator's hands: drive the mock input pins as a person (or dock) would -------

    def push(self, down: bool) -> None:
        self._drive(self.pins.record_button, low=down)

    def set_dock(self, docked: bool) -> None:
        self._drive(self.pins.dock_sense, low=docked)

    def _drive(self, pin: int, *, low: bool) -> None:
        mock = self.factory.pin(pin)
        # a separate thread, as lgpio's would be, so the handlers are exercised for real
        thread = threading.Thread(target=mock.drive_low if low else mock.drive_high)
        thread.start()
        thread.join()
