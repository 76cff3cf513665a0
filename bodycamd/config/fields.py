"""How a config field carries its documentation and bounds, and the size values ("90%",
"512MiB") several sections take: shared by every section module (sections/) and the loader.

Each field's ``metadata`` holds its doc line, bounds and kind; the loader enforces them and
config/render.py writes docs/configuration.md and config/bodycamd.example.toml from them, so
the documentation cannot drift from the schema.
"""

from __future__ import annotations

import re
from typing import Any


def doc(
    text: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    size: bool = False,
    path: bool = False,
) -> Any:
    """A field's `metadata`: its doc line, bounds, and whether it is a size or a path."""
    return {"doc": text, "min": minimum, "max": maximum, "size": size, "path": path}


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%|B|kB|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$")
_UNITS = {
    None: 1,
    "B": 1,
    "kB": 10**3,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}


def parse_size(text: str, total: int) -> int:
    """Bytes from "64GB", "500 MiB", "123456" or "90%" (of `total`)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f'expected a size like "90%", "32GB" or "512MiB", got "{text}"')
    number, unit = float(match.group(1)), match.group(2)
    if unit == "%":
        if not 0 < number <= 100:
            raise ValueError(f"expected a percentage above 0 and at most 100, got {text}")
        return int(total * number / 100)
    return int(number * _UNITS[unit])
