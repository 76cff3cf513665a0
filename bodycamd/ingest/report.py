"""The operator's views of the store: `list` (what arrived) and `verify` (is it still good).

`list` works from the segment records written with each receipt, without reading footage:
per device and recording, the segments, their sizes, when they arrived, and the chain status:

- complete     segments 0..n all present, each naming the one before, the last ends the recording
- interrupted  no gap so far, but no end-of-recording yet (still uploading) or a torn end
               (the camera lost power; the last segment was sealed torn)
- ended early  no gap, and the last segment is the empty one the camera seals when its
               journal says that segment could not be opened (I/O error or no room)
- gap          an index is missing or a segment names a previous one that is not the one stored

`verify` re-reads every stored segment, re-hashes it, re-runs the keyless scan with the
enrolled key, checks each receipt's signature, and checks each recording's chain with the
evidence package's `check_chain`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from typing import TextIO

from cryptography.hazmat.primitives.asymmetric import ed25519

from ..errors import ChainError, EvidenceError
from ..evidence import ChainLink, Verdict, check_chain
from ..receipt import ReceiptInvalid, parse_receipt
from .store import IngestStore, SegmentRecord, StoredReceipt
from .verify import decode_device_key, scan_file, spooled


def chain_status(records: list[SegmentRecord]) -> str:
    """complete, interrupted, ended early or gap, for one recording's records sorted by index.

    Not `evidence.chain.assess_chain`, on purpose: that judges scanned segment files (signed
    headers, footers, device keys) and is what `verify` runs. `list` must answer from the
    receipt records alone, without reading (on S3: downloading) any footage, and while a
    recording is still uploading its last segment is simply not there yet, which assess_chain
    rightly calls "missing" but `list` reports as "no end of recording yet". The kinds of
    ending follow assess_chain's.
    """
    for position, record in enumerate(records):
        if record.key.index != position:
            return f"gap (segment {position} missing)"
        if position and record.prev_digest != records[position - 1].digest:
            return f"gap (segment {position} does not follow segment {position - 1})"
    last = records[-1]
    if last.end_of_recording:
        return "complete"
    if last.open_failed:
        return f"ended early (segment {last.key.index} could not be opened)"
    if last.sealed_torn:
        return "interrupted (torn end: power lost)"
    return "interrupted (no end of recording yet)"


def _by_recording(
    receipts: list[StoredReceipt],
) -> dict[str, dict[str, list[SegmentRecord]]]:
    grouped: dict[str, dict[str, list[SegmentRecord]]] = defaultdict(lambda: defaultdict(list))
    for stored in receipts:
        key = stored.record.key
        grouped[key.device_id][key.recording_id].append(stored.record)
    for recordings in grouped.values():
        for records in recordings.values():
            records.sort(key=lambda r: r.key.index)
    return grouped


async def list_store(store: IngestStore, out: TextIO) -> None:
    grouped = _by_recording(await store.receipts())
    for device in await store.devices():
        state = "revoked" if device.revoked else "enrolled"
        print(f"device {device.device_id} ({state} {device.enrolled_at})", file=out)
        for recording, records in sorted(grouped.get(device.device_id, {}).items()):
            size = sum(r.size for r in records)
            print(
                f"  recording {recording}: {len(records)} segment(s), {size} bytes, "
                f"{chain_status(records)}",
                file=out,
            )
            for r in records:
                print(
                    f"    {r.key.index:6d}  {r.size:>12d} B  {r.verdict:8s}  received "
                    f"{r.received_at}  {r.digest[:16]}",
                    file=out,
                )
        for upload in await store.uploads(device.device_id):
            print(
                f"  upload {upload.upload_id} in progress: {upload.offset}/{upload.length} bytes",
                file=out,
            )
    for kept in await store.quarantined():
        print(f"quarantined {kept.device_id}/{kept.upload_id}: {kept.reason}", file=out)


async def _rescan(
    store: IngestStore, stored: StoredReceipt, key: ed25519.Ed25519PublicKey
) -> tuple[Verdict, str]:
    local = store.local_segment_path(stored.record.key)
    if local is not None:
        verdict, digest, _ = await asyncio.to_thread(scan_file, local, key)
        return verdict, digest
    async with spooled(store.read_segment(stored.record.key)) as path:
        verdict, digest, _ = await asyncio.to_thread(scan_file, path, key)
        return verdict, digest


async def verify_store(
    store: IngestStore, trusted: Mapping[str, ed25519.Ed25519PublicKey], out: TextIO
) -> int:
    """Print one line per segment and per recording; return 1 if anything fails, else 0."""
    failures = 0
    devices = {d.device_id: d for d in await store.devices()}
    grouped: dict[tuple[str, str], list[tuple[SegmentRecord, Verdict]]] = defaultdict(list)
    for stored in await store.receipts():
        record = stored.record
        name = record.key.path()
        try:
            receipt = parse_receipt(stored.wire, trusted)
            if (receipt.digest, receipt.size) != (record.digest, record.size):
                raise ReceiptInvalid("receipt does not describe the stored record")
            device = devices.get(record.key.device_id)
            if device is None:
                raise EvidenceError(f"device {record.key.device_id} is not in the registry")
            verdict, digest = await _rescan(store, stored, decode_device_key(device.signing_key))
            if digest != record.digest:
                raise EvidenceError(f"stored bytes hash to {digest}; receipt says {record.digest}")
        except (EvidenceError, OSError) as exc:
            failures += 1
            print(f"FAIL {name}: {exc}", file=out)
            continue
        print(f"ok   {name}: {verdict.status}, {record.size} bytes", file=out)
        grouped[(record.key.device_id, record.key.recording_id)].append((record, verdict))
    for (device_id, recording), pairs in sorted(grouped.items()):
        pairs.sort(key=lambda pair: pair[0].key.index)
        links = [ChainLink(record.key.path(), verdict) for record, verdict in pairs]
        try:
            report = check_chain(links)
            print(
                f"ok   {device_id}/{recording}: chain of {report.segments}, {report.ending}",
                file=out,
            )
        except ChainError as exc:
            status = chain_status([record for record, _ in pairs])
            if status.startswith("interrupted (no end"):
                print(f"ok   {device_id}/{recording}: {status}", file=out)
                continue
            failures += 1
            print(f"FAIL {device_id}/{recording}: {exc}", file=out)
    print(f"{'FAILED' if failures else 'verified'}: {failures} problem(s)", file=out)
    return 1 if failures else 0
