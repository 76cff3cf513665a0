"""Configuration: one TOML file parsed into frozen, typed dataclasses.

`schema` holds the dataclasses (every field documented, with its bounds), `loader` turns a
file into a Config or one clear error line, and `render` writes configs and the generated
reference documentation back out.
"""

from .loader import load_config, parse_config
from .render import example_toml, iter_defaults, reference_rows, to_toml
from .schema import (
    DEFAULT_CONFIG_PATH,
    CameraConfig,
    Config,
    ControlConfig,
    DaemonConfig,
    DeviceConfig,
    DockConfig,
    EvidenceConfig,
    GpioConfig,
    Hardware,
    IndicatorConfig,
    RecorderConfig,
    SessionConfig,
    StorageConfig,
    UploadConfig,
    all_keys,
    parse_size,
    public_fields,
)

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
