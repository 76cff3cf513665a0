from __future__ import annotations

from pathlib import Path

import pytest

from bodycamd.config import GpioConfig
from hw.gpio import BoardError, load_board, pins_for, read_board_model


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


PI5 = "Raspberry Pi 5 Model B Rev 1.0"
PI4 = "Raspberry Pi 4 Model B Rev 1.5"


def device_tree_model(tmp_path: Path, model: str) -> Path:
    path = tmp_path / "model"
    path.write_bytes(model.encode() + b"\x00")  # as the firmware writes it, NUL-terminated
    return path


def test_model_read_from_the_device_tree(tmp_path: Path) -> None:
    assert read_board_model(device_tree_model(tmp_path, PI5)) == PI5
    assert read_board_model(tmp_path / "absent") is None


def test_default_profile_follows_the_model(tmp_path: Path) -> None:
    pi5 = pins_for(GpioConfig(), "pi", device_tree_model(tmp_path, PI5))
    assert pi5 == load_board(GpioConfig(board="pi5-prototype"))
    pi4 = pins_for(GpioConfig(), "pi", device_tree_model(tmp_path, PI4))
    assert pi4 == load_board(GpioConfig(board="pi4-prototype"))


def test_a_profile_for_another_model_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(BoardError) as caught:
        pins_for(GpioConfig(board="pi4-prototype"), "pi", device_tree_model(tmp_path, PI5))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("gpio.board: profile 'pi4-prototype' is wired for Raspberry Pi 4")
    assert f"not this {PI5!r}; use 'pi5-prototype'" in message


def test_unknown_models_and_unreadable_device_trees_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match=r"no board profile is wired for 'Raspberry Pi 3 Model B"):
        pins_for(GpioConfig(), "pi", device_tree_model(tmp_path, "Raspberry Pi 3 Model B Rev 1.2"))
    with pytest.raises(BoardError, match=r"cannot read the board model from .*absent"):
        pins_for(GpioConfig(), "pi", tmp_path / "absent")
    # simulated hardware has no device tree to go by: the configured or fallback profile
    assert pins_for(GpioConfig(), "simulated", tmp_path / "absent").record_button == 17
