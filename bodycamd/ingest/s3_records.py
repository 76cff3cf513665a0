"""Receipts, quarantine notes, the device registry and the audit log as objects in the bucket.

Layout (under the store's prefix)::

    receipts/<digest>.json       the segment record and the signed receipt (as the filesystem)
    quarantine/<device>/<upload>.json   why the upload next to it was kept apart
    devices/<device>.json        registry entries
    audit/<seq:012d>             one audit entry per object, seq 1, 2, 3, ...
    audit.head                   a hint: the seq of an entry known to exist

Who may write what, when several nodes and the operator's CLI share the bucket:

- A receipt is written with If-None-Match: *, so the first receipt for a digest stays. Two
  nodes only race for one digest when the same segment arrived as two uploads at once; both
  receipts are signed by the same key over the same digest, so the camera may keep either.
- Registry entries have a single writer, the operator (`enroll`, `revoke`); a PutObject
  replaces an entry as one step. Nodes only read them.
- The audit log is a hash chain, so entry n+1 must be built from entry n: an appender reads
  the last entry and writes the next seq with If-None-Match: *. Of two appenders only one
  gets a seq; the other rebuilds its entry on the new last one and tries the next seq. The
  seqs stay gap-free because entry n+1 is only written by someone who read entry n. A
  write whose answer was lost and which botocore retried shows up as 412 on our own bytes,
  recognised by comparing them. A node's own appenders take turns (a lock) and it keeps
  the last entry it wrote or read as a hint: only another node's append costs a retry. A
  node starting cold finds the last entry by listing after `audit.head`, a seq moved forward
  every 100 entries (a stale hint only costs a longer list).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import asdict
from typing import TypeVar

from .errors import StoreError
from .fs_records import segment_record_fromjson_bytes
from .s3_objects import Bucket
from .store import DEVICE_ID, DeviceRecord, Quarantined, SegmentRecord, StoredReceipt

_HEX = frozenset("0123456789abcdef")
_AUDIT_ATTEMPTS = 50
_AUDIT_MAX = 1 << 16
_READ_AHEAD = 16
_HINT_EVERY = 100  # entries between moves of audit.head (the list after it stays one page)
T = TypeVar("T")


async def _in_order(items: Iterable[str], load: Callable[[str], Awaitable[T]]) -> list[T]:
    """`load` every item, at most `_READ_AHEAD` at once, results in the items' order."""
    gate = asyncio.Semaphore(_READ_AHEAD)

    async def one(item: str) -> T:
        async with gate:
            return await load(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


class Records:
    def __init__(self, bucket: Bucket) -> None:
        self._bucket = bucket
        self._appending = asyncio.Lock()  # this node's appenders take turns, not race
        self._last: tuple[int, bytes] | None = None  # a hint, checked by the conditional write

    # -- receipts ---------------------------------------------------------------------------
    async def put_receipt(self, record: SegmentRecord, wire: bytes) -> None:
        document = {"record": asdict(record), "receipt": wire.decode()}
        body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        await self._bucket.put(f"receipts/{record.digest}.json", body, if_none_match=True)

    async def get_receipt(self, digest: str) -> StoredReceipt | None:
        if len(digest) != 64 or not _HEX.issuperset(digest):
            return None
        return await self._load_receipt(f"receipts/{digest}.json")

    async def _load_receipt(self, key: str) -> StoredReceipt | None:
        fetched = await self._bucket.get(key)
        if fetched is None:
            return None
        try:
            document = json.loads(fetched.body)
            record = segment_record_fromjson_bytes(document["record"])
            return StoredReceipt(record, document["receipt"].encode())
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{self._bucket.url(key)}: unreadable receipt ({exc})") from exc

    async def receipts(self) -> list[StoredReceipt]:
        names = [key async for key in self._bucket.keys("receipts/") if key.endswith(".json")]
        found = await _in_order(names, self._load_receipt)
        return [receipt for receipt in found if receipt is not None]

    # -- quarantine notes -------------------------------------------------------------------
    async def quarantined(self) -> list[Quarantined]:
        names = [key async for key in self._bucket.keys("quarantine/") if key.endswith(".json")]

        async def load(key: str) -> Quarantined | None:
            fetched = await self._bucket.get(key)
            if fetched is None:
                return None
            note = json.loads(fetched.body)
            location = self._bucket.url(key.removesuffix(".json"))
            return Quarantined(
                note["upload_id"], note["device_id"], note["reason"], location, note["metadata"]
            )

        return [note for note in await _in_order(names, load) if note is not None]

    # -- device registry --------------------------------------------------------------------
    async def get_device(self, device_id: str) -> DeviceRecord | None:
        if not DEVICE_ID.fullmatch(device_id):
            return None
        return await self._load_device(f"devices/{device_id}.json")

    async def _load_device(self, key: str) -> DeviceRecord | None:
        fetched = await self._bucket.get(key)
        return None if fetched is None else DeviceRecord(**json.loads(fetched.body))

    async def put_device(self, record: DeviceRecord) -> None:
        body = json.dumps(asdict(record), sort_keys=True).encode()
        await self._bucket.put(f"devices/{record.device_id}.json", body)

    async def devices(self) -> list[DeviceRecord]:
        names = [key async for key in self._bucket.keys("devices/") if key.endswith(".json")]
        return [d for d in await _in_order(names, self._load_device) if d is not None]

    # -- audit log --------------------------------------------------------------------------
    async def _last_audit(self) -> tuple[int, bytes | None]:
        hint = await self._bucket.get("audit.head")
        seq = int(hint.body) if hint is not None else 0
        start = f"audit/{seq:012d}" if seq else ""
        async for key in self._bucket.keys("audit/", start_after=start):
            seq = max(seq, int(key.removeprefix("audit/")))
        if seq == 0:
            return 0, None
        fetched = await self._bucket.get(f"audit/{seq:012d}")
        if fetched is None:
            raise StoreError(f"{self._bucket.url('audit/')}: entry {seq} listed but missing")
        return seq, fetched.body

    async def append_audit(self, make_entry: Callable[[bytes | None], bytes]) -> bytes:
        async with self._appending:
            seq, previous = self._last or await self._last_audit()
            entry = await self._append_after(seq, previous, make_entry)
        return entry

    async def _append_after(
        self, seq: int, previous: bytes | None, make_entry: Callable[[bytes | None], bytes]
    ) -> bytes:
        for _ in range(_AUDIT_ATTEMPTS):
            entry = make_entry(previous)
            if b"\n" in entry or len(entry) >= _AUDIT_MAX:
                raise ValueError("an audit entry must be one line under 64 KiB")
            seq += 1
            key = f"audit/{seq:012d}"
            if await self._bucket.put(key, entry, if_none_match=True) is None:
                won = await self._bucket.get(key)
                if won is None:
                    raise StoreError(f"{self._bucket.url(key)}: taken, then gone")
                if won.body != entry:  # another node appended: build on the real last entry
                    seq, previous = await self._last_audit()
                    continue
            self._last = (seq, entry)
            if seq % _HINT_EVERY == 0:
                await self._bucket.put("audit.head", str(seq).encode())
            return entry
        raise StoreError(
            f"{self._bucket.url('audit/')}: {_AUDIT_ATTEMPTS} appends in a row lost to others"
        )

    async def read_audit(self) -> AsyncIterator[bytes]:
        names = [key async for key in self._bucket.keys("audit/")]
        for start in range(0, len(names), _READ_AHEAD):
            batch = await _in_order(names[start : start + _READ_AHEAD], self._bucket.get)
            for name, fetched in zip(names[start:], batch, strict=False):
                if fetched is None:
                    raise StoreError(f"{self._bucket.url(name)}: audit entry vanished")
                yield fetched.body
