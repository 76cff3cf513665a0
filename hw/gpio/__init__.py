"""GPIO on gpiozero: the record button, the LEDs, the buzzer and the dock contact."""

from .boards import BoardError, PanelPins, load_board
from .panel import GpioPanel, make_pin_factory

__all__ = ["BoardError", "GpioPanel", "PanelPins", "load_board", "make_pin_factory"]
