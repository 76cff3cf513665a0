"""Configuration: one TOML file parsed into frozen, typed dataclasses.

Plain dataclasses rather than pydantic or msgspec: the schema is small, the daemon runs on a
Pi where every dependency costs start-up time and RAM, and the error messages this product
needs ("file: key: what was expected", with a did-you-mean for unknown keys) are easier to get
exactly right by walking the fields ourselves than by rewording another library's errors.

This module is the root: the top-level keys and which section dataclass (sections/, one
module per part of the device) each [table] is. Each field carries its documentation and
bounds in ``metadata`` (config/fields.py); `docs/configuration.md` and
`config/bodycamd.example.toml` are checked against them by the tests so they cannot drift.
Relative paths in a file are resolved against the directory holding that file, so a config
means the same thing whatever the working directory of whoever starts the daemon.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .fields import doc
from .sections.capture import (
    CameraConfig,
    DeviceConfig,
    EvidenceConfig,
    RecorderConfig,
    StorageConfig,
)
from .sections.panel import DockConfig, GpioConfig, IndicatorConfig
from .sections.service import ControlConfig, DaemonConfig, SessionConfig, UploadConfig

DEFAULT_CONFIG_PATH = Path("/etc/bodycamd/bodycamd.toml")

Hardware = Literal["pi", "simulated"]


@dataclass(frozen=True)
class Config:
    hardware: Hardware = field(
        default="pi",
        metadata=doc(
            'Default backends: "pi" (picamera2, lgpio pins) or "simulated" (synthetic camera, '
            "gpiozero MockFactory pins)."
        ),
    )
    device: DeviceConfig = field(default_factory=DeviceConfig)
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    recorder: RecorderConfig = field(default_factory=RecorderConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    gpio: GpioConfig = field(default_factory=GpioConfig)
    dock: DockConfig = field(default_factory=DockConfig)
    indicators: IndicatorConfig = field(default_factory=IndicatorConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    upload: UploadConfig = field(default_factory=UploadConfig)
    source: Path | None = field(default=None, compare=False, metadata={"internal": True})


def public_fields(cls: type[Any]) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


def all_keys(cls: type[Any] = Config, prefix: str = "") -> list[str]:
    """Every dotted key the schema accepts, for suggestions and documentation checks."""
    keys: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in public_fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            keys.extend(all_keys(typing.cast(type[Any], hint), f"{prefix}{f.name}."))
        else:
            keys.append(prefix + f.name)
    return keys
