"""Configuration: one TOML file parsed into frozen, typed dataclasses.

`schema` holds the root Config, assembled from the section dataclasses in `sections/` (one
module per part of the device; every field documented, with its bounds, through `fields`),
`loader` turns a file into a Config or one clear error line, and `render` writes configs and
the generated reference documentation back out.
"""

from .fields import parse_size
from .loader import load_config, parse_config
from .render import example_toml, iter_defaults, reference_rows, to_toml
from .schema import DEFAULT_CONFIG_PATH, Config, Hardware, all_keys, public_fields
from .sections.capture import (
    CameraConfig,
    DeviceConfig,
    EvidenceConfig,
    RecorderConfig,
    StorageConfig,
)
from .sections.panel import DockConfig, GpioConfig, IndicatorConfig
from .sections.service import ControlConfig, DaemonConfig, SessionConfig, UploadConfig

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "CameraConfig",
    "Config",
    "ControlConfig",
    "DaemonConfig",
    "DeviceConfig",
    "DockConfig",
    "EvidenceConfig",
    "GpioConfig",
    "Hardware",
    "IndicatorConfig",
    "RecorderConfig",
    "SessionConfig",
    "StorageConfig",
    "UploadConfig",
    "all_keys",
    "example_toml",
    "iter_defaults",
    "load_config",
    "parse_config",
    "parse_size",
    "public_fields",
    "reference_rows",
    "to_toml",
]
