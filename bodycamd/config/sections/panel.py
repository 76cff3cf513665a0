"""The sections of the officer-facing hardware: the GPIO pins and button timing, dock
sensing, and the indicators; and the keys that moved out of [gpio] (refused by name)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..fields import doc

DockSource = Literal["gpio", "power_supply", "endpoint"]


@dataclass(frozen=True)
class GpioConfig:
    board: str = field(
        default="",
        metadata=doc(
            'Wiring profile from hw/boards/: "pi4-prototype" or "pi5-prototype"; empty takes '
            "the profile wired for the model in /proc/device-tree/model. A profile wired for "
            "another model is refused."
        ),
    )
    record_button: int = field(
        default=-1,
        metadata=doc("BCM pin of the record button; -1 takes the board's.", minimum=-1, maximum=27),
    )
    record_led: int = field(
        default=-1,
        metadata=doc("BCM pin of the record LED (faces the officer).", minimum=-1, maximum=27),
    )
    announce_led: int = field(
        default=-1,
        metadata=doc(
            "BCM pin of the announce LED (faces the person filmed).", minimum=-1, maximum=27
        ),
    )
    status_green: int = field(
        default=-1, metadata=doc("BCM pin of the green status LED.", minimum=-1, maximum=27)
    )
    status_amber: int = field(
        default=-1, metadata=doc("BCM pin of the amber status LED.", minimum=-1, maximum=27)
    )
    buzzer: int = field(default=-1, metadata=doc("BCM pin of the buzzer.", minimum=-1, maximum=27))
    dock_sense: int = field(
        default=-1,
        metadata=doc("BCM pin of the dock contact (low when docked).", minimum=-1, maximum=27),
    )
    debounce_seconds: float = field(
        default=0.05,
        metadata=doc("Button edges closer than this are contact bounce.", minimum=0.0, maximum=1.0),
    )
    hold_seconds: float = field(
        default=3.0,
        metadata=doc("Holding the button this long stops a recording.", minimum=0.5, maximum=10.0),
    )
    double_press_seconds: float = field(
        default=0.5,
        metadata=doc(
            "Two presses within this while recording add a marker.", minimum=0.1, maximum=2.0
        ),
    )


@dataclass(frozen=True)
class DockConfig:
    source: DockSource = field(
        default="gpio",
        metadata=doc(
            'How docking is sensed: "gpio" (the gpio.dock_sense contact), "power_supply" (the '
            'file power_supply_online reads "1") or "endpoint" (endpoint accepts a TCP '
            "connection; benches without a dock contact)."
        ),
    )
    stable_seconds: float = field(
        default=2.0,
        metadata=doc("A dock level must hold this long to count.", minimum=0.0, maximum=60.0),
    )
    power_supply_online: str = field(
        default="/sys/class/power_supply/usb/online",
        metadata=doc('File read by source = "power_supply".', path=True),
    )
    endpoint: str = field(default="", metadata=doc('host:port probed by source = "endpoint".'))


# Keys that moved to another section: refused with one line naming the new key (a silently
# ignored dock setting would leave a camera that never uploads).
MOVED_KEYS = {
    "gpio.dock_source": "dock.source",
    "gpio.dock_stable_seconds": "dock.stable_seconds",
    "gpio.power_supply_online": "dock.power_supply_online",
    "gpio.dock_endpoint": "dock.endpoint",
}


@dataclass(frozen=True)
class IndicatorConfig:
    announce_blink_hz: float = field(
        default=0.0,
        metadata=doc(
            "Blink the announce LED at this rate while recording; 0 keeps it lit.",
            minimum=0.0,
            maximum=10.0,
        ),
    )
    reminder_seconds: float = field(
        default=120.0,
        metadata=doc(
            "A short reminder tone this often while recording.", minimum=10.0, maximum=3600.0
        ),
    )
    stealth_allowed: bool = field(
        default=False,
        metadata=doc(
            "Policy allows stealth (all indicators off while recording); every change is audited."
        ),
    )
