from __future__ import annotations

from pathlib import Path

import pytest

from bodycamd.config import GpioConfig
from hw.gpio import BoardError, load_board


def test_profiles_load_and_pins_override() -> None:
    pi4 = load_board(GpioConfig())
    pi5 = load_board(GpioConfig(board="pi5-prototype"))
    assert pi4.record_button == 17 and pi5.record_button == 5
    assert load_board(GpioConfig(buzzer=4)).buzzer == 4


def test_unknown_board_names_the_choices() -> None:
    with pytest.raises(
        BoardError,
        match=r"no board profile 'pi3'; available: pi4-prototype, "
        r"pi5-prototype",
    ):
        load_board(GpioConfig(board="pi3"))


def test_shared_pin_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="two roles share a pin"):
        load_board(GpioConfig(buzzer=17))
    (tmp_path / "bad.toml").write_text("record_button = 'seventeen'\n")
    with pytest.raises(BoardError, match=r"bad\.toml: record_button: expected a BCM pin 0-27"):
        load_board(GpioConfig(board="bad"), tmp_path)
