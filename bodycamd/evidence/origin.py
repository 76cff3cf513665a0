"""Proof of origin: which device key a segment must carry.

A segment's signatures prove only that whoever made it held the key its header names. That it
came from an enrolled camera needs the enrolled key, from `--device-key` (one device) or a
registry file (a fleet). Without either, the tools check each recording against the key of
its segment 0 and say plainly "origin not checked".

Registry file: UTF-8 text, one device per line, `#` starts a comment line, blank lines are
ignored. A line is the device name (the header's `device_name`, no spaces) followed by what
`bodycamd keys show` prints for it, on one line:

    cam-0012 device public key: 3q2+7w…= fingerprint: 1a2b 3c4d 5e6f 7081 92a3 b4c5 d6e7 f809
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from ..errors import IntegrityError, KeyFileError
from .format import Header
from .keys import fingerprint, load_device_public_key, parse_device_public_key

_REGISTRY_LIMIT = 16 << 20  # a registry of 100,000 devices is about 15 MiB


@dataclass(frozen=True)
class Origin:
    """Where the enrolled keys come from: one key, a registry, or nothing (not checked)."""

    key: ed25519.Ed25519PublicKey | None = None
    registry: dict[str, ed25519.Ed25519PublicKey] = field(default_factory=dict)
    source: str = ""

    @property
    def checked(self) -> bool:
        return self.key is not None or bool(self.registry)

    def key_for(self, header: Header, name: str) -> ed25519.Ed25519PublicKey | None:
        """The enrolled key the segment `name` must be signed with (None: not checked)."""
        if self.key is not None or not self.registry:
            return self.key
        enrolled = self.registry.get(header.device_name)
        if enrolled is None:
            raise IntegrityError(
                f"{name}: device {header.device_name!r} is not enrolled in {self.source}"
            )
        return enrolled

    def describe(self) -> str:
        if self.key is not None:
            return f"origin checked against the device key given ({self.source})"
        if self.registry:
            return f"origin checked against the registry {self.source}"
        return (
            "origin not checked: no --device-key or --registry given, so signatures were "
            "checked only against the key each recording's segment 0 carries"
        )


def load_registry(path: Path) -> dict[str, ed25519.Ed25519PublicKey]:
    try:
        with path.open("rb") as stream:
            data = stream.read(_REGISTRY_LIMIT + 1)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the device registry: {exc.strerror}") from exc
    if len(data) > _REGISTRY_LIMIT:
        raise KeyFileError(f"{path}: device registry larger than {_REGISTRY_LIMIT} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KeyFileError(f"{path}: device registry is not UTF-8 text") from exc
    registry: dict[str, ed25519.Ed25519PublicKey] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, rest = line.strip().partition(" ")
        where = f"{path}:{number}"
        if name in registry:
            raise KeyFileError(f"{where}: device {name!r} is listed twice")
        if not rest.strip():
            raise KeyFileError(f"{where}: expected a device name, then its public key")
        registry[name] = parse_device_public_key(rest, where=where)
    if not registry:
        raise KeyFileError(f"{path}: device registry lists no devices")
    return registry


def origin_from(device_key: str | None, registry: Path | None) -> Origin:
    if device_key and registry:
        raise KeyFileError("give --device-key or --registry, not both")
    if device_key:
        key = load_device_public_key(device_key)
        return Origin(key=key, source=f"fingerprint {fingerprint(key.public_bytes_raw())}")
    if registry:
        return Origin(registry=load_registry(registry), source=str(registry))
    return Origin()
