"""ingest.toml: where the ingest's keys and store are, and its limits.

`bodycamd-ingest init DIR` writes one; relative paths are taken from the file's directory.
Every key is optional except what `init` writes; an unknown key is an error (a misspelt limit
must not silently fall back to its default). Sizes are integers in bytes, times in seconds.
`[store]` keys other than `kind` and `path` belong to the store kind (the S3 store reads its
bucket and endpoint there).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError

CONFIG_NAME = "ingest.toml"


@dataclass(frozen=True)
class ServerConfig:
    listen: str = "0.0.0.0"  # noqa: S104 - a server is meant to be reached
    port: int = 8443
    hosts: list[str] = field(default_factory=list)  # names in the server certificate


@dataclass(frozen=True)
class TlsConfig:
    ca_certificate: Path = Path("ca.pem")
    ca_key: Path = Path("ca.key")
    server_certificate: Path = Path("server.pem")
    server_key: Path = Path("server.key")
    handshake_timeout: float = 10.0


@dataclass(frozen=True)
class ReceiptsConfig:
    key: Path = Path("receipt.key")


@dataclass(frozen=True)
class LimitsConfig:
    max_upload_bytes: int = 2 << 30  # Tus-Max-Size; a 60 s segment at 10 Mbit/s is ~75 MB
    max_uploads_per_device: int = 8  # incomplete uploads one device may hold at once
    max_request_body_bytes: int = 256 << 20  # one PATCH or creation-with-upload body
    # body bytes all PATCHes together hold in memory (filesystem: up to 8 MiB each; S3: twice
    # part_size each)
    max_buffered_bytes: int = 256 << 20
    max_header_bytes: int = 8190  # one header line or field
    max_headers: int = 32  # header lines in one request (tus needs about a dozen)
    # a whole request head, counted from the TLS handshake or the previous answer (so also
    # how long an idle keep-alive connection stays open): a client trickling its head
    # (slowloris) is cut off, whatever its pace
    header_timeout: float = 30.0
    read_timeout: float = 60.0  # longest wait for the next bytes of a request body
    max_connections: int = 1024  # TCP connections held at once (handshakes included)
    upload_expiry: float = 86400.0  # an incomplete upload untouched this long is removed
    sweep_interval: float = 300.0


@dataclass(frozen=True)
class IngestConfig:
    directory: Path
    server: ServerConfig
    tls: TlsConfig
    receipts: ReceiptsConfig
    store_kind: str
    store_path: Path
    store_options: dict[str, Any]
    limits: LimitsConfig

    def path(self, relative: Path) -> Path:
        return relative if relative.is_absolute() else self.directory / relative


def _section(cls: type[Any], table: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r}; expected one of {sorted(known)}")
        default = getattr(cls(), key)
        expected: type[Any] = type(default)
        if isinstance(default, Path):
            if not isinstance(value, str):
                raise ConfigError(f"{where}.{key}: expected a path string, got {value!r}")
            value = Path(value)
        elif expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
            raise ConfigError(
                f"{where}.{key}: expected {expected.__name__}, got {type(value).__name__}"
            )
        if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
            raise ConfigError(f"{where}.{key}: expected a positive number, got {value}")
        values[key] = value
    return cls(**values)


def load_config(path: Path) -> IngestConfig:
    """Read ingest.toml (or DIR/ingest.toml); raise ConfigError naming file and key."""
    if path.is_dir():
        path = path / CONFIG_NAME
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    sections = {"server", "tls", "receipts", "store", "limits"}
    for name, value in data.items():
        if name not in sections or not isinstance(value, dict):
            raise ConfigError(f"{path}: unknown section [{name}]; expected {sorted(sections)}")
    store = dict(data.get("store", {}))
    kind = store.pop("kind", "filesystem")
    store_path = store.pop("path", "store")
    if kind not in ("filesystem", "s3") or not isinstance(store_path, str):
        raise ConfigError(f"{path}: [store] kind: expected 'filesystem' or 's3', got {kind!r}")
    config = IngestConfig(
        directory=path.parent.resolve(),
        server=_section(ServerConfig, data.get("server", {}), f"{path}: [server]"),
        tls=_section(TlsConfig, data.get("tls", {}), f"{path}: [tls]"),
        receipts=_section(ReceiptsConfig, data.get("receipts", {}), f"{path}: [receipts]"),
        store_kind=kind,
        store_path=Path(store_path),
        store_options=store,
        limits=_section(LimitsConfig, data.get("limits", {}), f"{path}: [limits]"),
    )
    if kind == "filesystem" and store:
        raise ConfigError(f"{path}: [store]: unknown keys {sorted(store)} for the filesystem")
    if not 0 < config.server.port < 65536 and config.server.port != 0:
        raise ConfigError(f"{path}: [server] port: expected 1 to 65535")
    return config


def render_config(hosts: list[str], port: int, listen: str) -> str:
    """The ingest.toml that `init` writes: every key with its default, commented."""
    limits = LimitsConfig()
    names = ", ".join(f'"{h}"' for h in hosts)
    return f"""\
# bodycamd-ingest configuration; relative paths are from this file's directory.
[server]
listen = "{listen}"
port = {port}
hosts = [{names}]   # names and addresses in the server certificate

[tls]
ca_certificate = "ca.pem"          # the device CA: issues client and server certificates
ca_key = "ca.key"
server_certificate = "server.pem"
server_key = "server.key"
handshake_timeout = 10.0

[receipts]
key = "receipt.key"                # Ed25519; signs receipts and the audit log

[store]
kind = "filesystem"                # or "s3"
path = "store"

[limits]
max_upload_bytes = {limits.max_upload_bytes}
max_uploads_per_device = {limits.max_uploads_per_device}
max_request_body_bytes = {limits.max_request_body_bytes}
max_buffered_bytes = {limits.max_buffered_bytes}
max_header_bytes = {limits.max_header_bytes}
max_headers = {limits.max_headers}
header_timeout = {limits.header_timeout}
read_timeout = {limits.read_timeout}
max_connections = {limits.max_connections}
upload_expiry = {limits.upload_expiry}
sweep_interval = {limits.sweep_interval}
"""
