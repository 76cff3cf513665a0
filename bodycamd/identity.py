"""The device's identity at run time: its signing key and the evidence key it encrypts to.

With `evidence.development_keys = true` (config/dev.toml does this) and no file at
`evidence.public_key`, a development evidence key pair is made there (the private half beside
it, ending in .key) so a newcomer can decrypt what they just recorded. Its private half sits on
the same disk as the footage, so it protects nothing; it is named and logged as a development
key every time it is used.

The device key is made only on a state directory with no footage and no journal. Anywhere
else a missing key means it was lost or deleted, and a new one would make every earlier
segment and audit event look foreign, so the daemon refuses to start; `bodycamd keys rotate`
replaces a key on purpose, and says so in the audit trail signed by the key it retires.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from .config import EvidenceConfig
from .errors import KeyFileError
from .evidence.keys import (
    EvidencePublicKey,
    create_device_key,
    device_public_raw,
    fingerprint,
    generate_evidence_key,
    load_device_key,
    load_evidence_public_key,
    write_evidence_key_pair,
)
from .fsutil import fsync_directory
from .instance import StateLock
from .journal import Journal
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


def history(layout: StateLayout) -> list[str]:
    """What in the state directory was made under some device key (empty: a fresh one)."""
    found = [str(layout.journal)] if layout.journal.exists() else []
    for directory in (layout.spool, layout.ready, layout.quarantine):
        if directory.is_dir() and any(p.is_file() for p in directory.rglob("*")):
            found.append(f"files in {directory}")
    return found


def device_key_for(layout: StateLayout) -> tuple[ed25519.Ed25519PrivateKey, bool]:
    """Load the device key; make one only on a fresh state directory. Returns (key, made)."""
    if layout.device_key.exists():
        return load_device_key(layout.device_key), False
    made_under_a_key = history(layout)
    if made_under_a_key:
        raise KeyFileError(
            f"{layout.device_key}: device key missing, but {layout.root} holds "
            f"{' and '.join(made_under_a_key)}; refusing to make a new key (restore the key, "
            "or replace it on purpose with `bodycamd keys rotate`)"
        )
    return create_device_key(layout.device_key), True


class IdentityComponent:
    name = "keys"

    def __init__(self, config: EvidenceConfig, layout: StateLayout) -> None:
        self._config = config
        self._layout = layout
        self.device_key: ed25519.Ed25519PrivateKey | None = None
        self.evidence_key: EvidencePublicKey | None = None
        self.lock = StateLock(layout.root)

    def signing_key(self) -> ed25519.Ed25519PrivateKey:
        if self.device_key is None:
            raise KeyFileError("the device key is not loaded yet")
        return self.device_key

    async def start(self) -> None:
        await asyncio.to_thread(self._layout.prepare)
        await asyncio.to_thread(self.lock.acquire)  # before anything else touches the state
        device_key, made = await asyncio.to_thread(device_key_for, self._layout)
        self.device_key = device_key
        if made:
            log.warning("created device key %s on a fresh state directory", self._layout.device_key)
        path = self._config.public_key
        if self._config.development_keys:
            await asyncio.to_thread(ensure_development_keys, path)
        elif not path.exists():
            raise KeyFileError(
                f"{path}: evidence public key not found; install the back end's key "
                "(bodycamd keys init-evidence makes one) or set evidence.public_key"
            )
        self.evidence_key = await asyncio.to_thread(load_evidence_public_key, path)
        log.info("device key %s", fingerprint(device_public_raw(device_key)))

    async def run(self) -> None:
        return None

    async def stop(self) -> None:
        self.lock.release()  # the first component to start is the last to stop

    def status(self) -> str:
        if self.device_key is None or self.evidence_key is None:
            return "keys: not loaded"
        return f"keys: evidence {self.evidence_key.kem}"


AuditWriter = Callable[[ed25519.Ed25519PrivateKey, dict[str, str | None]], None]


def rotate_device_key(layout: StateLayout, audit: AuditWriter) -> tuple[str | None, str]:
    """Replace the device key on purpose; returns (old fingerprint or None, new fingerprint).

    The event is signed by the key it retires when that key is still there (so the trail
    itself says which key comes next), by the new key when the old one is lost. It carries
    both public keys (`old_public` null when lost), so `audit verify` can check every event
    against the key in force without the key files (bodycamd/journal/signers.py). The old key
    is kept as keys/device.key.retired-<ns> (a hard link: never overwritten). A crash before
    the final rename leaves the old key in place and a staged device.key.new that the next
    rotation discards; a crash after it leaves the new key in force, the event recorded.
    """
    path = layout.device_key
    old = load_device_key(path) if path.exists() else None
    staged = path.with_name(f"{path.name}.new")
    staged.unlink(missing_ok=True)
    new = create_device_key(staged)
    new_raw = device_public_raw(new)
    old_raw = None if old is None else device_public_raw(old)
    old_print = None if old_raw is None else fingerprint(old_raw)
    audit(
        old or new,
        {
            "old_key": old_print,
            "old_public": None if old_raw is None else base64.b64encode(old_raw).decode(),
            "new_key": fingerprint(new_raw),
            "new_public": base64.b64encode(new_raw).decode(),
        },
    )
    if old is not None:
        os.link(path, path.with_name(f"{path.name}.retired-{time.time_ns()}"))
    staged.replace(path)
    fsync_directory(path.parent)
    return old_print, fingerprint(new_raw)


def rotate_command(layout: StateLayout) -> int:
    """`bodycamd keys rotate`: the event goes into the journal of the state directory;
    refused while a daemon holds the state directory."""
    layout.prepare()
    lock = StateLock(layout.root)
    lock.acquire()
    try:
        return _rotate(layout)
    finally:
        lock.release()


def _rotate(layout: StateLayout) -> int:

    def audit(key: ed25519.Ed25519PrivateKey, fields: dict[str, str | None]) -> None:
        journal = Journal(layout.journal, key)
        try:
            journal.audit("device_key_rotated", **fields)
        finally:
            journal.close()

    old, new = rotate_device_key(layout, audit)
    print(f"device key replaced: {old or 'none (the old key was lost)'} -> {new}")
    print("re-enrol the device: bodycamd keys show prints the new public key")
    return 0
