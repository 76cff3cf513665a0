"""The audit trail: append-only events, each hash-chained to the one before and signed by the
device key, so an edited, deleted or reordered event is detected by `bodycamd audit verify`.

    hash_n      = SHA-256(hash_{n-1} ‖ canonical JSON of {seq, time_ns, mono_ns, kind, fields})
    signature_n = Ed25519(device key, "bodycamd/v1 audit\\0" ‖ hash_n)
    hash_0      = 32 zero bytes

Across a device-key rotation the trail names its own signers, and a verifier's trusted keys
vouch for it as signers.py describes (each event's hash covers the one before, so an event
signed by a trusted key vouches for all before it; a rotation signed by a trusted key hands
trust on to the new key; one after a lost key does not).

What the chain cannot show on its own: the newest events being cut off the end. Nothing
anchors the head yet: the uploader does not send the trail, so only an export kept
elsewhere (`bodycamd audit export`, compared with a later one) shows a cut end
(docs/storage.md says so; an upload of the trail with each dock is future work).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from .signers import LABEL_AUDIT, Signed, Signers, assess_signers

GENESIS = b"\0" * 32


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    time_ns: int
    mono_ns: int
    kind: str
    fields: dict[str, Any]
    prev_hash: bytes
    hash: bytes
    signature: bytes

    def to_json(self) -> str:
        return json.dumps(
            {
                "seq": self.seq,
                "time_ns": self.time_ns,
                "mono_ns": self.mono_ns,
                "kind": self.kind,
                "fields": self.fields,
                "prev_hash": self.prev_hash.hex(),
                "hash": self.hash.hex(),
                "signature": self.signature.hex(),
            },
            sort_keys=True,
        )


def canonical(seq: int, time_ns: int, mono_ns: int, kind: str, fields: str) -> bytes:
    body = {
        "seq": seq,
        "time_ns": time_ns,
        "mono_ns": mono_ns,
        "kind": kind,
        "fields": json.loads(fields),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def append_event(
    db: sqlite3.Connection, key: ed25519.Ed25519PrivateKey, kind: str, fields: dict[str, Any]
) -> AuditEvent:
    """Append within the caller's transaction (so the event commits with what it records)."""
    last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    now, mono = time.time_ns(), time.monotonic_ns()
    digest = hashlib.sha256(prev + canonical(seq, now, mono, kind, text)).digest()
    signature = key.sign(LABEL_AUDIT + digest)
    db.execute(
        "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, now, mono, kind, text, prev, digest, signature),
    )
    return AuditEvent(seq, now, mono, kind, json.loads(text), prev, digest, signature)


def read_events(db: sqlite3.Connection) -> Iterator[AuditEvent]:
    for row in db.execute(
        "SELECT seq, time_ns, mono_ns, kind, fields, prev_hash, hash, "
        "signature FROM audit ORDER BY rowid"
    ):
        yield AuditEvent(
            row[0],
            row[1],
            row[2],
            row[3],
            json.loads(row[4]),
            bytes(row[5]),
            bytes(row[6]),
            bytes(row[7]),
        )


@dataclass(frozen=True)
class AuditReport:
    events: int
    problems: list[str]
    signers: Signers = field(default_factory=Signers)

    @property
    def ok(self) -> bool:
        return not self.problems

    def key_lines(self) -> list[str]:
        """The key sequence and the trust anchor, as `bodycamd audit verify` prints them."""
        lines = [f"signer {i}: {span.describe()}" for i, span in enumerate(self.signers.spans, 1)]
        if self.signers.anchor is not None:
            lines.append(
                f"trust anchor: key {self.signers.anchor}; it vouches for events "
                f"1 to {self.signers.vouched}"
            )
        return lines


PublicKeys = ed25519.Ed25519PublicKey | Sequence[ed25519.Ed25519PublicKey]


def verify_audit(
    db: sqlite3.Connection,
    trusted: PublicKeys,
    known: Sequence[ed25519.Ed25519PublicKey] = (),
) -> AuditReport:
    """Walk the trail in storage order and name every event that breaks the chain; then
    check each signature against the key the trail says is in force, and which of the
    `trusted` keys vouch for it (signers.py). `known` are further keys (retired copies)
    that an older rotation event names only by fingerprint."""
    problems: list[str] = []
    signed: list[Signed] = []
    prev, expected_seq = GENESIS, 1
    for row in db.execute(
        "SELECT rowid, seq, time_ns, mono_ns, kind, fields, prev_hash, hash, "
        "signature FROM audit ORDER BY rowid"
    ):
        if not _as_written(row[1:]):
            # SQLite keeps whatever type an edit puts in a column: named, not a traceback
            problems.append(f"audit row {row[0]}: its columns are not of the types written")
            continue
        seq, time_ns, mono_ns, kind, fields = row[1], row[2], row[3], row[4], row[5]
        prev_hash, digest, signature = bytes(row[6]), bytes(row[7]), bytes(row[8])
        where = f"event {seq} ({kind})"
        if seq != expected_seq:
            problems.append(
                f"{where}: expected event {expected_seq} here (events deleted or reordered)"
            )
        if prev_hash != prev:
            problems.append(f"{where}: does not follow the event before it")
        try:
            parsed = json.loads(fields)
            recomputed = hashlib.sha256(
                prev_hash + canonical(seq, time_ns, mono_ns, kind, fields)
            ).digest()
        except json.JSONDecodeError:
            parsed, recomputed = {}, b""
        if recomputed != digest:
            problems.append(f"{where}: contents do not match its hash (edited)")
        signed.append(
            Signed(seq, kind, parsed if isinstance(parsed, dict) else {}, digest, signature)
        )
        prev, expected_seq = digest, seq + 1
    keys = [trusted] if isinstance(trusted, ed25519.Ed25519PublicKey) else list(trusted)
    signers = assess_signers(
        signed, [k.public_bytes_raw() for k in keys], [k.public_bytes_raw() for k in known]
    )
    return AuditReport(len(signed), problems + signers.problems, signers)


_COLUMN_TYPES = (int, int, int, str, str, bytes, bytes, bytes)


def _as_written(columns: tuple[Any, ...]) -> bool:
    """seq, times, kind, fields, hashes and signature of the types `append_event` writes."""
    return all(type(value) is kind for value, kind in zip(columns, _COLUMN_TYPES, strict=True))
