"""The filesystem store: one machine, one directory tree (the default and the tests' store).

Layout under the root::

    uploads/<device>/<upload>/info.json   length, metadata, created (written once, at creation)
    uploads/<device>/<upload>/state.json  durable offset and expiry (replaced atomically)
    uploads/<device>/<upload>/data        the bytes; anything past state.json's offset is junk
    segments/<device>/<recording>/<index>.seg
    receipts/<dd>/<digest>.json           the segment record and the signed receipt (fs_records)
    quarantine/<device>/<upload>/         the upload as it was, plus reason.json
    devices/<device>.json                 registry entries
    audit.log                             one JSON entry per line
    staging.lock                          flock: creations (shared), start-up clean-up (exclusive)

What survives a power cut (the Protocol's contract, made concrete): an append writes the
data file, fsyncs it, then atomically replaces state.json (temp, fsync, rename, fsync the
directory); the offset in state.json is the acknowledged one and the data before it was
fsynced first, so a crash anywhere leaves a consistent (offset, bytes) pair — bytes past the
offset are cut off by the next append. Every other change is a rename or a link of a
complete, fsynced file or directory followed by an fsync of the parent directory. The audit
log is appended under an exclusive flock (several processes: the server and the operator's
CLI) and fsynced; a torn last line was never acknowledged and is dropped by the next append.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict
from pathlib import Path

from ..evidence.keys import atomic_write
from ..fsutil import fsync_directory
from .budget import ByteBudget
from .errors import (
    ChecksumMismatch,
    OffsetMismatch,
    SegmentExists,
    StoreError,
    UploadBusy,
    UploadNotFound,
    UploadTooLarge,
)
from .fs_batch import BatchWriter
from .fs_records import FilesystemRecords, json_bytes, make_dirs
from .store import (
    DEVICE_ID,
    UPLOAD_ID,
    Quarantined,
    SegmentKey,
    UploadInfo,
)

_READ = 1 << 20


class FilesystemStore(FilesystemRecords):
    """`IngestStore` on a local filesystem that honours fsync and rename (ext4, xfs, btrfs)."""

    def __init__(self, root: Path, buffered_bytes: int = 256 << 20) -> None:
        self.root = root.resolve()
        self._locks: dict[str, asyncio.Lock] = {}
        # request-body bytes held in memory by all appends at once ([limits] max_buffered_bytes)
        self._budget = ByteBudget(buffered_bytes)
        make_dirs(self.root)
        self._remove_leftovers()

    def describe(self) -> str:
        return f"file://{self.root}"

    async def close(self) -> None:
        self._locks.clear()

    # -- paths ----------------------------------------------------------------------------
    def _upload_dir(self, device_id: str, upload_id: str) -> Path:
        if not DEVICE_ID.fullmatch(device_id) or not UPLOAD_ID.fullmatch(upload_id):
            raise UploadNotFound(f"upload {upload_id!r} of device {device_id!r}: no such upload")
        return self.root / "uploads" / device_id / upload_id

    def _segment_path(self, key: SegmentKey) -> Path:
        return self.root / "segments" / f"{key.path()}.seg"

    @contextlib.contextmanager
    def _staging(self, mode: int) -> Iterator[bool]:
        """The staging lock (flock on `staging.lock`): creations hold it shared, the start-up
        clean-up exclusive; True when taken (a non-blocking try may find it held)."""
        fd = os.open(self.root / "staging.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, mode)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def _remove_leftovers(self) -> None:
        """Remove the staging directories of creations a crash or error interrupted, and the
        uploads a crash left half deleted. Neither was ever visible (listings skip dot names;
        a `.gone-` one was already finished or terminated). Skipped while another process
        (the server, when the operator's CLI opens the store) is creating an upload: its
        staging directory is not a leftover, and the next start-up cleans."""
        with self._staging(fcntl.LOCK_EX | fcntl.LOCK_NB) as taken:
            if not taken:
                return
            uploads = self.root / "uploads"
            for leftover in [*uploads.glob("*/.new-*"), *uploads.glob("*/.gone-*")]:
                shutil.rmtree(leftover, ignore_errors=True)

    # -- uploads --------------------------------------------------------------------------
    async def create_upload(
        self, device_id: str, length: int, metadata: dict[str, str], expires_at: float
    ) -> UploadInfo:
        upload_id = secrets.token_urlsafe(18)
        info = UploadInfo(upload_id, device_id, length, 0, metadata, time.time(), expires_at)
        await asyncio.to_thread(self._create, info)
        return info

    def _create(self, info: UploadInfo) -> None:
        final = self._upload_dir(info.device_id, info.upload_id)
        make_dirs(final.parent)
        staging = final.with_name(f".new-{info.upload_id}")
        fixed = {k: v for k, v in asdict(info).items() if k not in ("offset", "expires_at")}
        state = json_bytes({"offset": 0, "expires_at": info.expires_at})
        with self._staging(fcntl.LOCK_SH):
            staging.mkdir(mode=0o700)
            try:
                # the staging directory is invisible (listings skip dot names) until the
                # rename, so its files need no rename of their own: written and fsynced,
                # then the directory
                for name, content in (("info.json", json_bytes(fixed)), ("state.json", state)):
                    _write_new(staging / name, content)
                _write_new(staging / "data", b"")
                fsync_directory(staging)
                staging.rename(final)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        fsync_directory(final.parent)

    def _read_info(self, directory: Path) -> UploadInfo:
        try:
            fixed = json.loads((directory / "info.json").read_bytes())
            state = json.loads((directory / "state.json").read_bytes())
        except FileNotFoundError:
            raise UploadNotFound(f"upload {directory.name}: no such upload") from None
        except (OSError, ValueError) as exc:
            raise StoreError(f"{directory}: unreadable upload state ({exc})") from exc
        return UploadInfo(**fixed, offset=state["offset"], expires_at=state["expires_at"])

    async def upload_info(self, device_id: str, upload_id: str) -> UploadInfo:
        return await asyncio.to_thread(self._read_info, self._upload_dir(device_id, upload_id))

    async def uploads(self, device_id: str | None = None) -> list[UploadInfo]:
        return await asyncio.to_thread(self._uploads, device_id)

    def _uploads(self, device_id: str | None) -> list[UploadInfo]:
        base = self.root / "uploads"
        devices = [base / device_id] if device_id else sorted(base.glob("*"))
        found = []
        for directory in devices:
            for upload in sorted(directory.glob("*")):
                if upload.name.startswith("."):
                    continue
                with contextlib.suppress(UploadNotFound):
                    found.append(self._read_info(upload))
        return found

    async def append(
        self,
        device_id: str,
        upload_id: str,
        offset: int,
        chunks: AsyncIterator[bytes],
        *,
        expect_sha256: bytes | None = None,
    ) -> int:
        directory = self._upload_dir(device_id, upload_id)
        lock = self._locks.setdefault(upload_id, asyncio.Lock())
        if lock.locked():
            raise UploadBusy(f"upload {upload_id}: another request is writing it")
        async with lock:
            try:
                return await self._append_locked(directory, offset, chunks, expect_sha256)
            finally:
                self._locks.pop(upload_id, None)

    async def _append_locked(
        self,
        directory: Path,
        offset: int,
        chunks: AsyncIterator[bytes],
        expect_sha256: bytes | None,
    ) -> int:
        opening = asyncio.ensure_future(
            asyncio.to_thread(self._open_for_append, directory, offset)
        )
        try:
            info, fd = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # the thread goes on and opens (and flocks) the file anyway: closed when it is
            # done, or the lock would answer 423 for this upload until the server restarts
            opening.add_done_callback(_close_opened)
            raise
        # hashed only for Upload-Checksum: the segment's hash is verification's, computed once
        digest = hashlib.sha256() if expect_sha256 is not None else None
        writer = BatchWriter(fd, digest, info.offset, f"upload {info.upload_id}", self._budget)
        try:
            return await self._receive(directory, info, chunks, writer, expect_sha256)
        finally:
            writer.close()  # the fd closes after the writer's last job, not under it

    async def _receive(
        self,
        directory: Path,
        info: UploadInfo,
        chunks: AsyncIterator[bytes],
        writer: BatchWriter,
        expect_sha256: bytes | None,
    ) -> int:
        room = info.length - info.offset
        try:
            async for chunk in chunks:
                if len(chunk) > room:
                    await writer.add(chunk[:room])
                    raise UploadTooLarge(
                        f"upload {info.upload_id}: more than its Upload-Length {info.length} bytes"
                    )
                room -= len(chunk)
                await writer.add(chunk)
        except BaseException:
            if expect_sha256 is None:  # what arrived is kept: write it and commit it
                await writer.finish(lambda: self._commit_written(directory, writer, None))
            raise
        return await writer.finish(lambda: self._commit_written(directory, writer, expect_sha256))

    def _open_for_append(self, directory: Path, offset: int) -> tuple[UploadInfo, int]:
        """Check the offset and open the data file for appending, in one thread hop."""
        info = self._read_info(directory)
        if offset != info.offset:
            raise OffsetMismatch(
                f"upload {info.upload_id}: Upload-Offset {offset}; the upload is at {info.offset}",
                offset=info.offset,
            )
        fd = os.open(directory / "data", os.O_WRONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UploadBusy(f"upload {directory.name}: another process is writing it") from None
        os.ftruncate(fd, info.offset)  # drop bytes never acknowledged
        os.lseek(fd, info.offset, os.SEEK_SET)
        return info, fd

    def _commit_written(
        self, directory: Path, writer: BatchWriter, expect_sha256: bytes | None
    ) -> int:
        """The checksum check and the commit, in the worker right after the last batch (one
        thread hop at the end of a request), and the only fsyncs of it. On a checksum
        mismatch nothing is committed (the next append cuts the bytes off).

        After a failed write (the writer stopped there) the bytes it wrote without a hole are
        committed, unless the append is checksummed (all or nothing), and StoreError raised.
        The fsync before the commit reports a page that never reached the disk, and then
        nothing is committed: either way state.json names only bytes that are there."""
        written = writer.written
        if writer.failure is not None:
            if expect_sha256 is None and written > writer.start:
                with contextlib.suppress(OSError):  # the error below says what failed first
                    self._commit(directory, writer.fd, written)
            raise writer.error() from writer.failure
        if expect_sha256 is not None and writer.sha256() != expect_sha256:
            raise ChecksumMismatch(
                f"upload {directory.name}: the chunk does not match its Upload-Checksum; discarded"
            )
        self._commit(directory, writer.fd, written)
        return written

    def _commit(self, directory: Path, fd: int, offset: int) -> None:
        os.fsync(fd)
        state = json.loads((directory / "state.json").read_bytes())
        atomic_write(directory / "state.json", json_bytes({**state, "offset": offset}))

    async def _iterate(self, path: Path, end: int) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            position = 0
            while position < end:
                block = await asyncio.to_thread(handle.read, min(_READ, end - position))
                if not block:
                    raise StoreError(f"{path}: ends at {position} bytes; expected {end}")
                position += len(block)
                yield block
        finally:
            handle.close()

    async def read_upload(self, device_id: str, upload_id: str) -> AsyncIterator[bytes]:
        directory = self._upload_dir(device_id, upload_id)
        info = await asyncio.to_thread(self._read_info, directory)
        async for block in self._iterate(directory / "data", info.offset):
            yield block

    def local_upload_path(self, device_id: str, upload_id: str) -> Path | None:
        return self._upload_dir(device_id, upload_id) / "data"

    async def finish(self, device_id: str, upload_id: str, key: SegmentKey, digest: str) -> str:
        directory = self._upload_dir(device_id, upload_id)
        await asyncio.to_thread(self._finish, directory, key, digest)
        return f"{self.describe()}/segments/{key.path()}.seg"

    def _finish(self, directory: Path, key: SegmentKey, digest: str) -> None:
        target = self._segment_path(key)
        make_dirs(target.parent)
        try:
            os.link(directory / "data", target)
        except FileExistsError:
            if _file_sha256(target) != digest:
                raise SegmentExists(
                    f"{key.path()}: already holds a different segment; refusing to replace it"
                ) from None
        except FileNotFoundError:
            raise UploadNotFound(f"upload {directory.name}: no such upload") from None
        fsync_directory(target.parent)
        self._remove(directory)

    def _remove(self, directory: Path) -> None:
        trash = directory.with_name(f".gone-{directory.name}")
        with contextlib.suppress(FileNotFoundError):
            directory.rename(trash)
            fsync_directory(directory.parent)
        shutil.rmtree(trash, ignore_errors=True)

    async def quarantine(self, device_id: str, upload_id: str, reason: str) -> str:
        directory = self._upload_dir(device_id, upload_id)
        target = self.root / "quarantine" / device_id / upload_id
        await asyncio.to_thread(self._quarantine, directory, target, reason)
        return f"{self.describe()}/quarantine/{device_id}/{upload_id}"

    def _quarantine(self, directory: Path, target: Path, reason: str) -> None:
        if not directory.exists():
            raise UploadNotFound(f"upload {directory.name}: no such upload")
        atomic_write(directory / "reason.json", json_bytes({"reason": reason, "at": time.time()}))
        make_dirs(target.parent)
        directory.rename(target)
        fsync_directory(target.parent)
        fsync_directory(directory.parent)

    async def terminate(self, device_id: str, upload_id: str) -> None:
        directory = self._upload_dir(device_id, upload_id)
        if not await asyncio.to_thread(directory.exists):
            raise UploadNotFound(f"upload {upload_id} of device {device_id}: no such upload")
        await asyncio.to_thread(self._remove, directory)

    # -- segments ------------------------------------------------------------------------
    async def read_segment(self, key: SegmentKey) -> AsyncIterator[bytes]:
        path = self._segment_path(key)
        size = (await asyncio.to_thread(path.stat)).st_size
        async for block in self._iterate(path, size):
            yield block

    def local_segment_path(self, key: SegmentKey) -> Path | None:
        return self._segment_path(key)

    # -- quarantine -----------------------------------------------------------------------
    async def quarantined(self) -> list[Quarantined]:
        def load_all() -> list[Quarantined]:
            found = []
            for directory in sorted((self.root / "quarantine").glob("*/*")):
                info = json.loads((directory / "info.json").read_bytes())
                reason = json.loads((directory / "reason.json").read_bytes())["reason"]
                location = f"{self.describe()}/quarantine/{directory.parent.name}/{directory.name}"
                found.append(
                    Quarantined(
                        directory.name, directory.parent.name, reason, location, info["metadata"]
                    )
                )
            return found

        return await asyncio.to_thread(load_all)


def _write_new(path: Path, content: bytes) -> None:
    """A new file, written and fsynced (its directory entry is the caller's to make durable)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    with open(os.open(path, flags, 0o600), "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_READ), b""):
            digest.update(block)
    return digest.hexdigest()


def _close_opened(opening: asyncio.Future[tuple[UploadInfo, int]]) -> None:
    """The descriptor an abandoned `_open_for_append` returned, closed (its flock with it)."""
    if not opening.cancelled() and opening.exception() is None:
        os.close(opening.result()[1])
