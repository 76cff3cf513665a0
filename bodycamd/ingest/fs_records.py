"""The filesystem store's records: receipts, the device registry and the audit log.

Split from fs_store.py (uploads and segments) to keep each module one concern; the
`FilesystemStore` inherits these methods, and the crash notes in fs_store.py cover them: a
receipt or registry entry is one atomically replaced file, the audit log is appended under an
exclusive flock and fsynced, and a torn last line (never acknowledged) is dropped by the next
append.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..evidence.keys import atomic_write
from ..fsutil import fsync_directory, write_all
from .errors import StoreError
from .store import DEVICE_ID, DeviceRecord, SegmentKey, SegmentRecord, StoredReceipt

_AUDIT_TAIL = 1 << 16  # an audit entry is far shorter; the last one is found in this tail


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def make_dirs(path: Path) -> None:
    """Create `path` and fsync every parent whose entry we added."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
        fsync_directory(directory.parent)


def segment_record_fromjson_bytes(data: dict[str, Any]) -> SegmentRecord:
    return SegmentRecord(**{**data, "key": SegmentKey(**data["key"])})


class FilesystemRecords:
    """Receipts, registry and audit log under `root` (the store's root)."""

    root: Path

    def _receipt_path(self, digest: str) -> Path:
        return self.root / "receipts" / digest[:2] / f"{digest}.json"

    # -- receipts ------------------------------------------------------------------------
    async def put_receipt(self, record: SegmentRecord, wire: bytes) -> None:
        document = json_bytes({"record": asdict(record), "receipt": wire.decode()})
        path = self._receipt_path(record.digest)
        await asyncio.to_thread(make_dirs, path.parent)
        await asyncio.to_thread(atomic_write, path, document, 0o644)

    async def get_receipt(self, digest: str) -> StoredReceipt | None:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            return None
        return await asyncio.to_thread(self._load_receipt, self._receipt_path(digest))

    @staticmethod
    def _load_receipt(path: Path) -> StoredReceipt | None:
        try:
            document = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}: unreadable receipt ({exc})") from exc
        record = segment_record_fromjson_bytes(document["record"])
        return StoredReceipt(record, document["receipt"].encode())

    async def receipts(self) -> list[StoredReceipt]:
        def load_all() -> list[StoredReceipt]:
            paths = sorted((self.root / "receipts").glob("*/*.json"))
            return [r for r in map(self._load_receipt, paths) if r is not None]

        return await asyncio.to_thread(load_all)

    # -- device registry ------------------------------------------------------------------
    async def get_device(self, device_id: str) -> DeviceRecord | None:
        if not DEVICE_ID.fullmatch(device_id):
            return None
        path = self.root / "devices" / f"{device_id}.json"
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        return DeviceRecord(**json.loads(data))

    async def put_device(self, record: DeviceRecord) -> None:
        path = self.root / "devices" / f"{record.device_id}.json"
        await asyncio.to_thread(make_dirs, path.parent)
        await asyncio.to_thread(atomic_write, path, json_bytes(asdict(record)), 0o644)

    async def devices(self) -> list[DeviceRecord]:
        def load_all() -> list[DeviceRecord]:
            paths = sorted((self.root / "devices").glob("*.json"))
            return [DeviceRecord(**json.loads(p.read_bytes())) for p in paths]

        return await asyncio.to_thread(load_all)

    # -- audit log ------------------------------------------------------------------------
    async def append_audit(self, make_entry: Callable[[bytes | None], bytes]) -> bytes:
        return await asyncio.to_thread(self._append_audit, make_entry)

    def _append_audit(self, make_entry: Callable[[bytes | None], bytes]) -> bytes:
        path = self.root / "audit.log"
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if created:
                fsync_directory(self.root)
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            start = max(0, size - _AUDIT_TAIL)
            tail = os.pread(fd, size - start, start)
            cut = tail.rfind(b"\n")
            end = start + cut + 1  # what follows the last newline was never acknowledged
            if end != size:
                os.ftruncate(fd, end)
            before = tail[:cut] if cut >= 0 else b""
            if end > 0 and start > 0 and b"\n" not in before:
                raise StoreError(f"{path}: last entry longer than {_AUDIT_TAIL} bytes")
            previous = before.rsplit(b"\n", 1)[-1] if end > 0 else None
            entry = make_entry(previous)
            if b"\n" in entry or len(entry) >= _AUDIT_TAIL:
                raise ValueError("an audit entry must be one line under 64 KiB")
            write_all(fd, entry + b"\n", end)  # a short pwrite would tear an acked entry
            os.fsync(fd)
            return entry
        finally:
            os.close(fd)

    async def read_audit(self) -> AsyncIterator[bytes]:
        path = self.root / "audit.log"
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return
        for line in data.split(b"\n")[:-1]:
            yield line
