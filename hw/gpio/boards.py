"""Board profiles: which BCM pin does what, per prototype wiring (hw/boards/*.toml), with any
pin overridable from the config.

Each profile names the Raspberry Pi models it was wired for (`models`, prefixes of the
device tree's model string). The pins of a Pi 4 profile on a Pi 5 are silently wrong (the
header is the same, the wiring is not), so a profile that does not fit the board is refused,
and with `gpio.board = ""` the profile is chosen by the model.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from bodycamd.config import GpioConfig
from bodycamd.errors import ConfigError

BOARDS = Path(__file__).resolve().parent.parent / "boards"
DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
FALLBACK_BOARD = "pi4-prototype"  # no model to go by: simulated hardware, benches


class BoardError(ConfigError):
    """A board profile that is missing, malformed, or wired for another model."""


@dataclass(frozen=True)
class PanelPins:
    record_button: int
    record_led: int
    announce_led: int
    status_green: int
    status_amber: int
    buzzer: int
    dock_sense: int

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def available_boards(directory: Path = BOARDS) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.toml"))


def read_board_model(path: Path = DEVICE_TREE_MODEL) -> str | None:
    """The model string the firmware put in the device tree ("Raspberry Pi 5 Model B Rev
    1.0"), or None where there is none (not a Pi, or /proc hidden by a sandbox)."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    return raw.rstrip(b"\x00").decode("ascii", "replace").strip() or None


def _read_profile(name: str, directory: Path) -> tuple[Path, dict[str, Any]]:
    path = directory / f"{name}.toml"
    try:
        return path, tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise BoardError(
            f"gpio.board: no board profile {name!r}; available: "
            f"{', '.join(available_boards(directory))}"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"{path}: TOML syntax error: {exc}") from exc


def _models(path: Path, data: dict[str, Any]) -> list[str]:
    models = data.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise BoardError(f"{path}: models: expected a list of model names, got {models!r}")
    return models


def fits(path: Path, data: dict[str, Any], model: str) -> bool:
    return any(model.startswith(prefix) for prefix in _models(path, data))


def board_for_model(model: str | None, directory: Path = BOARDS) -> str:
    """The first profile wired for `model`; the Pi 4 prototype when there is no model."""
    if model is None:
        return FALLBACK_BOARD
    for name in available_boards(directory):
        path, data = _read_profile(name, directory)
        if fits(path, data, model):
            return name
    raise BoardError(
        f"gpio.board: no board profile is wired for {model!r}; available: "
        f"{', '.join(available_boards(directory))}"
    )


def load_board(
    config: GpioConfig, directory: Path = BOARDS, *, model: str | None = None
) -> PanelPins:
    """Pins of `config.board` (or of the profile for `model` when the board is ""). With a
    `model`, a profile wired for another model is refused in one line."""
    name = config.board or board_for_model(model, directory)
    path, data = _read_profile(name, directory)
    if model is not None and not fits(path, data, model):
        raise BoardError(
            f"gpio.board: profile {name!r} is wired for {', '.join(_models(path, data))}, "
            f"not this {model!r}; use {board_for_model(model, directory)!r} or empty for "
            "the profile of this model"
        )
    pins: dict[str, int] = {}
    for f in fields(PanelPins):
        override = getattr(config, f.name)
        value = override if override >= 0 else data.get(f.name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 27:
            raise BoardError(f"{path}: {f.name}: expected a BCM pin 0-27, got {value!r}")
        pins[f.name] = value
    if len(set(pins.values())) != len(pins):
        raise BoardError(f"{path}: two roles share a pin: {pins}")
    return PanelPins(**pins)


def pins_for(config: GpioConfig, hardware: str, model_path: Path = DEVICE_TREE_MODEL) -> PanelPins:
    """The daemon's choice: on a Pi the profile must fit the model the device tree names;
    simulated hardware has no model and takes the configured (or fallback) profile."""
    if hardware != "pi":
        return load_board(config)
    model = read_board_model(model_path)
    if model is None:
        raise BoardError(
            f"gpio: cannot read the board model from {model_path}; on a Raspberry Pi it is "
            'always there (is /proc hidden?), elsewhere set hardware = "simulated"'
        )
    return load_board(config, model=model)
