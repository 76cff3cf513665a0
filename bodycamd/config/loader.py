"""Reading a config file: TOML in, a validated Config out, or one clear ConfigError line
naming the file, the key and what was expected (with a did-you-mean for unknown keys)."""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from .fields import parse_size
from .schema import Config, all_keys, public_fields
from .sections.panel import MOVED_KEYS


def load_config(path: Path) -> Config:
    """Read and validate `path`; any problem is one ConfigError line naming file and key."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from exc
    return parse_config(raw, path)


def parse_config(raw: bytes, path: Path) -> Config:
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from exc
    config: Config = _build(Config, data, path, "")
    return dataclasses.replace(config, source=path)


def _build(cls: type[Any], data: dict[str, Any], path: Path, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in public_fields(cls)}
    for key in data:
        if key not in known:
            dotted = prefix + key
            if dotted in MOVED_KEYS:
                new = MOVED_KEYS[dotted]
                raise ConfigError(
                    f"{path}: {dotted}: moved; write it as {new.split('.')[1]} in the "
                    f"[{new.split('.')[0]}] section ({new})"
                )
            value = data[key]
            if isinstance(value, dict) and value:  # a misspelt section: name a key inside it
                dotted += "." + next(iter(value))
            raise ConfigError(f"{path}: {dotted}: unknown key{_suggest(dotted)}")
    values: dict[str, Any] = {}
    for name, f in known.items():
        if name not in data:
            continue
        dotted = prefix + name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(data[name], dict):
                raise ConfigError(
                    f"{path}: {dotted}: expected a [{dotted}] table, got {_show(data[name])}"
                )
            values[name] = _build(typing.cast(type[Any], hint), data[name], path, dotted + ".")
        else:
            values[name] = _convert(data[name], hint, f, path, dotted)
    return cls(**values)


def _convert(value: Any, hint: Any, f: dataclasses.Field[Any], path: Path, key: str) -> Any:
    where = f"{path}: {key}"
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            wanted = " or ".join(f'"{c}"' for c in choices)
            raise ConfigError(f"{where}: expected {wanted}, got {_show(value)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_show(value)}")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {_show(value)}")
        if hint is int and not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {_show(value)}")
        if not math.isfinite(value):  # NaN passes any range check; inf is never meant
            raise ConfigError(f"{where}: expected a finite number, got {_show(value)}")
        low, high = f.metadata.get("min"), f.metadata.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(f"{where}: {value} is out of range; expected {low} to {high}")
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_show(value)}")
        if f.metadata.get("size"):
            try:
                parse_size(value, 1)
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from exc
        if f.metadata.get("regex"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ConfigError(f"{where}: not a valid regular expression ({exc})") from exc
        if f.metadata.get("path") and value and not Path(value).is_absolute():
            return str((path.parent / value).resolve())
        return value
    if hint is Path or (isinstance(hint, types.UnionType) and Path in typing.get_args(hint)):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: expected a path string, got {_show(value)}")
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else (path.parent / candidate).resolve()
    raise ConfigError(f"{where}: schema error: unsupported type {hint!r}")  # pragma: no cover


def _suggest(dotted: str) -> str:
    sections = sorted({key.split(".")[0] for key in all_keys() if "." in key})
    candidates = all_keys() if "." in dotted else all_keys() + sections
    matches = difflib.get_close_matches(dotted, candidates, n=1, cutoff=0.6)
    return f"; did you mean {matches[0]}?" if matches else f"; valid keys: {', '.join(all_keys())}"


def _show(value: Any) -> str:
    kind = {
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
        dict: "table",
        list: "array",
    }.get(type(value), type(value).__name__)
    text = repr(value) if not isinstance(value, dict | list) else ""
    if isinstance(value, str):
        text = '"' + value + '"'
    return f"{kind} {text}".strip()
