"""The demo's receipt check: every receipt the camera kept (in its journal, beside the deleted
segment's row) is verified again with the ingest's receipt key and compared with the file the
ingest stored, hashed here.

Why again, when the uploader already checked each one before deleting: the demo shows, from
the outside, that what left the camera's flash is exactly what the back end holds.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..receipt import ReceiptInvalid, check_covers, parse_receipt
from ..upload.settings import load_receipt_keys
from .setup import DEVICE_NAME


@dataclass(frozen=True)
class ReceiptCheck:
    recording: str
    index: int
    size: int
    problem: str | None  # None: signed by the ingest's key and covers the stored file


def check_receipts(journal: Path, ingest: Path) -> list[ReceiptCheck]:
    """One check per segment row in the camera's journal (a row without a receipt fails)."""
    trusted = load_receipt_keys(str(ingest / "receipt.pub"), ingest, "receipt_keys")
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=10) as db:
        rows = list(db.execute("SELECT recording_id, segment_index, receipt FROM segments"))
    return [_check(ingest, str(r), int(i), w, trusted) for r, i, w in rows]


def _check(
    ingest: Path,
    recording: str,
    index: int,
    wire: str | None,
    trusted: Mapping[str, Ed25519PublicKey],
) -> ReceiptCheck:
    if not wire:
        return ReceiptCheck(recording, index, 0, "no receipt")
    try:
        receipt = parse_receipt(wire.encode(), trusted)
    except ReceiptInvalid as exc:
        return ReceiptCheck(recording, index, 0, str(exc))
    stored = ingest / "store" / "segments" / DEVICE_NAME / receipt.recording_id
    path = stored / f"{receipt.index:06d}.seg"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return ReceiptCheck(recording, index, receipt.size, f"{path}: {exc.strerror or exc}")
    try:
        check_covers(
            receipt, digest=hashlib.sha256(data).hexdigest(), size=len(data), device_id=DEVICE_NAME
        )
    except ReceiptInvalid as exc:
        return ReceiptCheck(recording, index, receipt.size, str(exc))
    return ReceiptCheck(recording, index, receipt.size, None)
