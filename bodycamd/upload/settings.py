"""The `[upload]` section turned into what the uploader needs, checked once, in one place:
`bodycamd check-config` and the daemon both call `upload_settings`, so a bench that passes
check-config starts uploading with exactly what was checked. Every problem is one
ConfigError line naming the key (docs/configuration.md, docs/upload.md §1)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ..config import Config, parse_size
from ..errors import ConfigError, KeyFileError
from ..evidence.keys import check_private_mode
from ..receipt import receipt_key_id
from ..storage import StateLayout

MIN_CHUNK = 64 * 1024
MAX_CHUNK = 256 * 2**20


@dataclass(frozen=True)
class UploadSettings:
    endpoint: str
    receipts_url: str  # GET {receipts_url}/{digest}
    ca_file: Path | None  # None only for a development http:// endpoint
    client_cert: Path | None
    client_key: Path | None
    receipt_keys: Mapping[str, ed25519.Ed25519PublicKey]  # key id → key
    chunk_size: int
    max_rate: int  # bytes per second; 0 unlimited
    retry_min: float
    retry_max: float

    @property
    def tls(self) -> bool:
        return self.endpoint.startswith("https://")


def client_key_path(config: Config) -> Path:
    """Where the device's TLS client key lives: upload.client_key, or the state dir's."""
    if config.upload.client_key:
        return Path(config.upload.client_key)
    return StateLayout(config.device.state_dir).keys / "tls-client.key"


def upload_settings(config: Config) -> UploadSettings | None:
    """None when no endpoint is configured (footage stays on flash); else checked settings."""
    section = config.upload
    where = f"{config.source or 'config'}: upload"
    if not section.endpoint:
        return None
    parts = urlsplit(section.endpoint)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{where}.endpoint: expected an https:// URL, got {section.endpoint!r}")
    if parts.scheme == "http" and not section.development:
        raise ConfigError(
            f"{where}.endpoint: {section.endpoint} is plain http; footage goes over https "
            "with mutual TLS (set upload.development = true only on a bench)"
        )
    receipts_url = section.receipts_url or section.endpoint.rstrip("/") + "/receipts"
    receipts = urlsplit(receipts_url)
    if receipts.scheme not in ("https", "http") or not receipts.hostname:
        raise ConfigError(f"{where}.receipts_url: expected an https:// URL, got {receipts_url!r}")
    if receipts.scheme != parts.scheme:
        raise ConfigError(f"{where}.receipts_url: {receipts_url} must be {parts.scheme}:// too")
    chunk = parse_size(section.chunk_size, 0)
    if not MIN_CHUNK <= chunk <= MAX_CHUNK:
        raise ConfigError(f"{where}.chunk_size: {chunk} bytes; expected 64KiB to 256MiB")
    if section.retry_max < section.retry_min:
        raise ConfigError(f"{where}.retry_max: {section.retry_max} is below retry_min")
    tls = parts.scheme == "https"
    ca = _existing(section.ca_file, f"{where}.ca_file", required=tls)
    cert = _existing(section.client_cert, f"{where}.client_cert", required=tls)
    key_file = section.client_key or (str(client_key_path(config)) if tls else "")
    if tls and not section.client_key and not Path(key_file).is_file():
        raise ConfigError(
            f"{where}.client_key: {key_file} does not exist; make it with `bodycamd keys csr`"
        )
    key = _existing(key_file, f"{where}.client_key", required=tls)
    if key is not None:
        try:
            check_private_mode(key)  # OpenSSL reads it, not us: the same check as our keys
        except KeyFileError as exc:
            raise ConfigError(f"{where}.client_key: {exc}") from exc
    base = config.source.parent if config.source else Path.cwd()
    keys = load_receipt_keys(section.receipt_keys, base, f"{where}.receipt_keys")
    return UploadSettings(
        endpoint=section.endpoint,
        receipts_url=receipts_url.rstrip("/"),
        ca_file=ca,
        client_cert=cert,
        client_key=key,
        receipt_keys=keys,
        chunk_size=chunk,
        max_rate=parse_size(section.max_rate, 0),
        retry_min=section.retry_min,
        retry_max=section.retry_max,
    )


def _existing(value: str, key: str, *, required: bool) -> Path | None:
    if not value:
        if required:
            raise ConfigError(f"{key}: required for an https endpoint")
        return None
    path = Path(value)
    if not path.is_file():
        raise ConfigError(f"{key}: {path} does not exist or is not a file")
    return path


def load_receipt_keys(text: str, base: Path, key: str) -> dict[str, ed25519.Ed25519PublicKey]:
    """Comma-separated entries, each a file (PEM public key, or the 32 raw bytes, or their
    base64) or the base64 of the 32-byte raw key itself. At least one is required: without
    a trusted key no receipt verifies and nothing would ever leave the flash."""
    trusted: dict[str, ed25519.Ed25519PublicKey] = {}
    for entry in (e.strip() for e in text.split(",")):
        if entry:
            public = _receipt_key(entry, base, key)
            trusted[receipt_key_id(public)] = public
    if not trusted:
        raise ConfigError(f"{key}: expected at least one receipt public key (file or base64)")
    return trusted


def _receipt_key(entry: str, base: Path, key: str) -> ed25519.Ed25519PublicKey:
    raw = _base64_key(entry)
    if raw is None:
        path = Path(entry).expanduser()
        path = path if path.is_absolute() else base / path
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{key}: {path}: {exc.strerror or exc}") from exc
        if data.lstrip().startswith(b"-----BEGIN"):
            try:
                public = load_pem_public_key(data)
            except ValueError as exc:
                raise ConfigError(f"{key}: {path}: not a PEM public key") from exc
            if not isinstance(public, ed25519.Ed25519PublicKey):
                raise ConfigError(f"{key}: {path}: not an Ed25519 public key")
            return public
        raw = data if len(data) == 32 else _base64_key(data.decode("ascii", "replace").strip())
        if raw is None:
            raise ConfigError(f"{key}: {path}: expected an Ed25519 public key (PEM, raw, base64)")
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


def _base64_key(text: str) -> bytes | None:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None
