"""GPIO on gpiozero: the record button, the LEDs, the buzzer and the dock contact."""

from .boards import BoardError, PanelPins, load_board, pins_for, read_board_model
from .panel import GpioPanel, make_pin_factory

__all__ = [
    "BoardError",
    "GpioPanel",
    "PanelPins",
    "load_board",
    "make_pin_factory",
    "pins_for",
    "read_board_model",
]
