"""The receipt contract between ingest and camera: only a trusted, intact receipt parses."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from bodycamd.receipt import (
    Receipt,
    ReceiptInvalid,
    check_covers,
    parse_receipt,
    receipt_key_id,
    sign_receipt,
)


def _receipt(key: ed25519.Ed25519PrivateKey, **over: object) -> Receipt:
    fields: dict[str, object] = {
        "digest": "ab" * 32,
        "size": 4096,
        "device_id": "cam-1",
        "recording_id": "0f" * 16,
        "index": 3,
        "verdict": "complete",
        "stored_at": "fs:cam-1/rec/3.seg",
        "received_at": "2026-11-30T12:00:00Z",
        "key_id": receipt_key_id(key.public_key()),
    }
    fields.update(over)
    return Receipt(**fields)  # type: ignore[arg-type]


def test_signed_receipt_round_trips_and_covers() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    wire = sign_receipt(_receipt(key), key)
    trusted = {receipt_key_id(key.public_key()): key.public_key()}
    got = parse_receipt(wire, trusted)
    assert got == _receipt(key)
    check_covers(got, digest="ab" * 32, size=4096, device_id="cam-1")
    with pytest.raises(ReceiptInvalid, match="size"):
        check_covers(got, digest="ab" * 32, size=4097, device_id="cam-1")
    with pytest.raises(ReceiptInvalid, match="device_id"):
        check_covers(got, digest="ab" * 32, size=4096, device_id="cam-2")


def test_untrusted_key_and_altered_field_are_refused() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    other = ed25519.Ed25519PrivateKey.generate()
    wire = sign_receipt(_receipt(key), key)
    with pytest.raises(ReceiptInvalid, match="untrusted"):
        parse_receipt(wire, {receipt_key_id(other.public_key()): other.public_key()})
    doc = json.loads(wire)
    doc["receipt"]["size"] = 1
    trusted = {receipt_key_id(key.public_key()): key.public_key()}
    with pytest.raises(ReceiptInvalid, match="signature"):
        parse_receipt(json.dumps(doc).encode(), trusted)


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"[" * 100_000,
        b'{"receipt": {}, "signature": "AA=="}',
        b'{"receipt": 1, "signature": "AA=="}',
        b"x" * 20_000,
    ],
)
def test_malformed_receipts_are_refused(document: bytes) -> None:
    with pytest.raises(ReceiptInvalid):
        parse_receipt(document, {})


def test_bad_field_values_are_named() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    bad = _receipt(key, verdict="maybe", size=-1, digest="XY")
    body = bad.canonical()
    wire = json.dumps(
        {"receipt": json.loads(body), "signature": base64.b64encode(key.sign(body)).decode()}
    ).encode()
    with pytest.raises(ReceiptInvalid, match="verdict"):
        parse_receipt(wire, {receipt_key_id(key.public_key()): key.public_key()})
