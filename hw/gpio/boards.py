"""Board profiles: which BCM pin does what, per prototype wiring (hw/boards/*.toml), with any
pin overridable from the config."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from bodycamd.config import GpioConfig
from bodycamd.errors import ConfigError

BOARDS = Path(__file__).resolve().parent.parent / "boards"


class BoardError(ConfigError):
    """A board profile that is missing or malformed."""


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


def available_boards() -> list[str]:
    return sorted(p.stem for p in BOARDS.glob("*.toml"))


def load_board(config: GpioConfig, directory: Path = BOARDS) -> PanelPins:
    path = directory / f"{config.board}.toml"
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise BoardError(
            f"gpio.board: no board profile {config.board!r}; available: "
            f"{', '.join(available_boards())}"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"{path}: TOML syntax error: {exc}") from exc
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
