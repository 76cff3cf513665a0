"""Writing configs back out: TOML for `check-config --show`, and the generated reference
(docs/configuration.md's table, config/bodycamd.example.toml) that tests keep equal to the
files, so the documentation cannot drift from the schema."""

from __future__ import annotations

import dataclasses
import textwrap
import typing
from typing import Any

from .schema import Config, all_keys, public_fields


def to_toml(config: Config) -> str:
    """Render a config back to TOML (used by `check-config --show` and the round-trip test)."""
    lines: list[str] = []
    tables: list[str] = []
    for f in public_fields(Config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            tables.append(f"\n[{f.name}]")
            tables.extend(
                f"{s.name} = {_toml_value(getattr(value, s.name))}"
                for s in public_fields(type(value))
            )
        else:
            lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines + tables) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def reference_rows() -> list[str]:
    """The key table of docs/configuration.md, generated from the schema (a test keeps the
    document equal to it)."""
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    defaults = iter_defaults(Config())
    for key in all_keys():
        field_ = _field_for(key)
        rows.append(f"| `{key}` | `{_toml_value(defaults[key])}` | {field_.metadata['doc']} |")
    return rows


def iter_defaults(config: Config) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in all_keys():
        value: Any = config
        for part in key.split("."):
            value = getattr(value, part)
        values[key] = value
    return values


def _field_for(dotted: str) -> dataclasses.Field[Any]:
    cls: type[Any] = Config
    parts = dotted.split(".")
    for part in parts[:-1]:
        cls = typing.get_type_hints(cls)[part]
    return next(f for f in dataclasses.fields(cls) if f.name == parts[-1])


def example_toml() -> str:
    """config/bodycamd.example.toml: every key commented out at its default, with its doc
    (generated, and a test keeps the file equal to it)."""
    lines = [
        "# bodycamd configuration: every key, commented out at its default.",
        "# Install as /etc/bodycamd/bodycamd.toml. Reference: docs/configuration.md.",
        "# Relative paths are resolved against the directory of this file.",
    ]
    defaults = iter_defaults(Config())
    section = ""
    for key in all_keys():
        head, _, name = key.rpartition(".")
        if head != section:
            section = head
            lines += ["", f"[{section}]"]
        elif not head and len(lines) == 3:
            lines.append("")
        doc = _field_for(key).metadata["doc"]
        lines += [f"# {line}" for line in textwrap.wrap(doc, 94)]
        lines.append(f"# {name} = {_toml_value(defaults[key])}")
    return "\n".join(lines) + "\n"
