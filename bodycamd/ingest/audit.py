"""The ingest audit log: append-only, hash-chained, every entry signed by the ingest.

Each entry is one line of canonical JSON::

    {"at": RFC 3339, "event": "upload.completed", "fields": {...}, "key_id": "...",
     "prev": hex SHA-256 of the previous line (64 zeros for the first), "seq": n,
     "sig": base64 Ed25519 over AUDIT_LABEL ‖ canonical(entry without "sig")}

So a removed, reordered, altered or inserted line breaks the chain (`verify_audit` names the
first bad entry), and nobody without the ingest's key can write a valid one. The key is the
receipt key; the label keeps an audit signature from ever being taken for a receipt's.

What is audited: enrolments and revocations, refused TLS handshakes and refused devices,
uploads created, completed, rejected (with the reason) and terminated, and receipts issued.
Refused TLS handshakes come from anyone on the network, so they are rate-limited: beyond
`REFUSALS_PER_MINUTE` a minute they are counted and the count written with the next one.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from ..receipt import canonical_json, receipt_key_id
from .errors import AuditLogInvalid
from .store import IngestStore

AUDIT_LABEL = b"bodycamd-ingest audit v1\0"
REFUSALS_PER_MINUTE = 60
_ZERO = "0" * 64
AuditValue = str | int | float | bool | None


def rfc3339(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds")


def _signing_input(entry: Mapping[str, Any]) -> bytes:
    return AUDIT_LABEL + canonical_json({k: v for k, v in entry.items() if k != "sig"})


@dataclass(frozen=True)
class AuditSummary:
    entries: int
    last_hash: str


class AuditLog:
    """Writes entries to the store's audit log, chained and signed with `key`."""

    def __init__(
        self, store: IngestStore, key: ed25519.Ed25519PrivateKey, clock: Callable[[], float]
    ) -> None:
        self._store = store
        self._key = key
        self._key_id = receipt_key_id(key.public_key())
        self._clock = clock
        self._window_start = 0.0
        self._refusals = 0
        self._suppressed = 0

    async def record(self, event: str, **fields: AuditValue) -> None:
        at = rfc3339(self._clock())

        def make_entry(previous: bytes | None) -> bytes:
            if previous is None:
                seq, prev = 0, _ZERO
            else:
                seq = json.loads(previous)["seq"] + 1
                prev = hashlib.sha256(previous).hexdigest()
            entry: dict[str, Any] = {
                "at": at,
                "event": event,
                "fields": fields,
                "key_id": self._key_id,
                "prev": prev,
                "seq": seq,
            }
            entry["sig"] = base64.b64encode(self._key.sign(_signing_input(entry))).decode()
            return canonical_json(entry)

        await self._store.append_audit(make_entry)

    async def record_refusal(self, event: str, **fields: AuditValue) -> None:
        """Audit a refusal that anyone on the network can cause, within the rate limit."""
        now = self._clock()
        if now - self._window_start >= 60:
            self._window_start, self._refusals = now, 0
        self._refusals += 1
        if self._refusals > REFUSALS_PER_MINUTE:
            self._suppressed += 1
            return
        suppressed, self._suppressed = self._suppressed, 0
        await self.record(event, **fields, suppressed_before=suppressed)


async def verify_audit(
    store: IngestStore, trusted: Mapping[str, ed25519.Ed25519PublicKey]
) -> AuditSummary:
    """Check the whole log: sequence, chain and signatures. Raises AuditLogInvalid naming
    the first bad entry."""
    expected_prev, count = _ZERO, 0
    async for line in store.read_audit():
        where = f"audit entry {count}"
        try:
            entry = json.loads(line)
            signature = base64.b64decode(entry["sig"], validate=True)
            seq, prev, key_id = entry["seq"], entry["prev"], entry["key_id"]
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise AuditLogInvalid(f"{where}: malformed ({exc})") from exc
        if seq != count:
            raise AuditLogInvalid(f"{where}: sequence number {seq}; expected {count}")
        if prev != expected_prev:
            raise AuditLogInvalid(
                f"{where}: does not follow the entry before it (removed, reordered or altered)"
            )
        if canonical_json(entry) != line:
            raise AuditLogInvalid(f"{where}: not in canonical form (edited)")
        key = trusted.get(key_id)
        if key is None:
            raise AuditLogInvalid(f"{where}: signed by unknown key {key_id!r}")
        try:
            key.verify(signature, _signing_input(entry))
        except InvalidSignature as exc:
            raise AuditLogInvalid(f"{where}: bad signature (altered)") from exc
        expected_prev = hashlib.sha256(line).hexdigest()
        count += 1
    return AuditSummary(count, expected_prev)
