"""Upload receipts: the back end's signed proof that it holds a verified copy of a segment.

The camera deletes a segment from flash only when a receipt covers it (DESIGN §7), so this
module is the contract between the ingest (which signs) and the camera (which verifies).
Both sides import it; it depends on nothing but `cryptography`.

Wire form (docs/upload.md is normative)::

    {"receipt": {...fields...}, "signature": "<base64 Ed25519 over the canonical body>"}

The canonical body is the JSON of the fields with sorted keys, no whitespace, ASCII only,
so a verifier never depends on how a server happened to serialise it: the signature covers
exactly `canonical(fields)`, re-encoded from the parsed values. Unknown fields are refused
(a receipt that says more than we understand is not one we can act on).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from .errors import EvidenceError

RECEIPT_VERSION = 1
MAX_RECEIPT_BYTES = 16 * 1024  # a receipt is a few hundred bytes; anything larger is hostile
Verdict = Literal["complete", "torn"]
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ReceiptInvalid(EvidenceError):
    """A receipt that is malformed, signed by an untrusted key, or about other bytes."""


@dataclass(frozen=True)
class Receipt:
    """What the ingest vouches for. `digest` is SHA-256 (hex) of the whole sealed file."""

    digest: str
    size: int
    device_id: str
    recording_id: str
    index: int
    verdict: Verdict
    stored_at: str  # the store's name for the object, e.g. "s3://bucket/dev/rec/0003.seg"
    received_at: str  # RFC 3339 UTC, when the last byte was durably stored
    key_id: str  # receipt_key_id() of the signing key
    v: int = RECEIPT_VERSION

    def canonical(self) -> bytes:
        return canonical_json(asdict(self))


def canonical_json(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def receipt_key_id(public: ed25519.Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 of the raw public key: names the key in a receipt."""
    return hashlib.sha256(public.public_bytes_raw()).hexdigest()[:16]


def sign_receipt(receipt: Receipt, key: ed25519.Ed25519PrivateKey) -> bytes:
    """The wire form of `receipt` signed with `key` (whose id the receipt must carry)."""
    if receipt.key_id != receipt_key_id(key.public_key()):
        raise ValueError("receipt.key_id does not name the signing key")
    body = receipt.canonical()
    signature = base64.b64encode(key.sign(body)).decode()
    return canonical_json({"receipt": asdict(receipt), "signature": signature})


def parse_receipt(document: bytes, trusted: Mapping[str, ed25519.Ed25519PublicKey]) -> Receipt:
    """Parse and verify a receipt against `trusted` (key id → public key). Raises
    ReceiptInvalid naming what is wrong; never returns an unverified receipt."""
    if len(document) > MAX_RECEIPT_BYTES:
        raise ReceiptInvalid(f"receipt is {len(document)} bytes; at most {MAX_RECEIPT_BYTES}")
    try:
        outer = json.loads(document)
        fields = outer["receipt"]
        signature = base64.b64decode(outer["signature"], validate=True)
        if set(outer) != {"receipt", "signature"} or not isinstance(fields, dict):
            raise ValueError("unexpected top-level fields")
        receipt = Receipt(**fields)
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError) as exc:
        raise ReceiptInvalid(f"receipt is malformed: {exc}") from exc
    _check_fields(receipt)
    key = trusted.get(receipt.key_id)
    if key is None:
        raise ReceiptInvalid(f"receipt signed by untrusted key {receipt.key_id!r}")
    try:
        key.verify(signature, receipt.canonical())
    except InvalidSignature as exc:
        raise ReceiptInvalid(f"receipt signature by key {receipt.key_id} is bad") from exc
    return receipt


def check_covers(receipt: Receipt, *, digest: str, size: int, device_id: str) -> None:
    """Raise ReceiptInvalid unless `receipt` is about exactly these bytes from this device."""
    for name, want, got in (
        ("digest", digest, receipt.digest),
        ("size", size, receipt.size),
        ("device_id", device_id, receipt.device_id),
    ):
        if want != got:
            raise ReceiptInvalid(f"receipt {name} is {got!r}; expected {want!r}")


def _check_fields(r: Receipt) -> None:
    problems = []
    if r.v != RECEIPT_VERSION or type(r.v) is not int:
        problems.append(f"version {r.v!r} (expected {RECEIPT_VERSION})")
    if not isinstance(r.digest, str) or not _HEX64.fullmatch(r.digest):
        problems.append("digest is not 64 lowercase hex digits")
    for name in ("size", "index"):
        value = getattr(r, name)
        if type(value) is not int or value < 0:
            problems.append(f"{name} is not a non-negative integer")
    if r.verdict not in ("complete", "torn"):
        problems.append(f"verdict {r.verdict!r} (expected complete or torn)")
    for name in ("device_id", "recording_id", "stored_at", "received_at", "key_id"):
        if not isinstance(getattr(r, name), str):
            problems.append(f"{name} is not a string")
    if problems:
        raise ReceiptInvalid("receipt fields: " + "; ".join(problems))
