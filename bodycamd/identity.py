"""The device's identity at run time: its signing key and the evidence key it encrypts to.

With `evidence.development_keys = true` (config/dev.toml does this) and no file at
`evidence.public_key`, a development evidence key pair is made there (the private half beside
it, ending in .key) so a newcomer can decrypt what they just recorded. Its private half sits on
the same disk as the footage, so it protects nothing; it is named and logged as a development
key every time it is used.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from .config import EvidenceConfig
from .errors import KeyFileError
from .evidence.keys import (
    EvidencePublicKey,
    device_public_raw,
    fingerprint,
    generate_evidence_key,
    load_evidence_public_key,
    load_or_create_device_key,
    write_evidence_key_pair,
)
from .storage.layout import StateLayout

log = logging.getLogger(__name__)


def ensure_development_keys(public: Path) -> None:
    private = public.with_suffix(".key")
    if not public.exists():
        write_evidence_key_pair(generate_evidence_key(), private)
        log.warning("created a DEVELOPMENT evidence key pair: %s and %s", public, private)
    log.warning(
        "using DEVELOPMENT evidence key %s; its private half %s is on this machine, so this "
        "footage is NOT confidential",
        public,
        private,
    )


class IdentityComponent:
    name = "keys"

    def __init__(self, config: EvidenceConfig, layout: StateLayout) -> None:
        self._config = config
        self._layout = layout
        self.device_key: ed25519.Ed25519PrivateKey | None = None
        self.evidence_key: EvidencePublicKey | None = None

    def signing_key(self) -> ed25519.Ed25519PrivateKey:
        if self.device_key is None:
            raise KeyFileError("the device key is not loaded yet")
        return self.device_key

    async def start(self) -> None:
        await asyncio.to_thread(self._layout.prepare)
        self.device_key = await asyncio.to_thread(
            load_or_create_device_key, self._layout.device_key
        )
        path = self._config.public_key
        if self._config.development_keys:
            await asyncio.to_thread(ensure_development_keys, path)
        elif not path.exists():
            raise KeyFileError(
                f"{path}: evidence public key not found; install the back end's key "
                "(bodycamd keys init-evidence makes one) or set evidence.public_key"
            )
        self.evidence_key = await asyncio.to_thread(load_evidence_public_key, path)
        log.info("device key %s", fingerprint(device_public_raw(self.device_key)))

    async def run(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def status(self) -> str:
        if self.device_key is None or self.evidence_key is None:
            return "keys: not loaded"
        return f"keys: evidence {self.evidence_key.kem}"
