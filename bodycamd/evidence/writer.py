"""The segment writer: plaintext in, an append-only, signed, encrypted file out.

What survives a power cut at any instant:
- before the creation fsync returns: nothing we promise (the file may be absent or short; the
  startup scan treats a file without a whole signed header as unrecoverable, not as footage);
- after that: the header, and every record up to the end of the last checkpoint whose fsync
  returned; the reader and the startup scan recover exactly that prefix, as `torn`;
- after `seal` returns: the whole segment, renamed to `.seg`, with its directory entry durable.

A failed write or fsync abandons the segment at once: the descriptor is closed, later calls
raise, and fsync is never retried on the same file (Linux may already have dropped the dirty
pages, so a second, successful fsync would vouch for bytes that are not on flash).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..clock import boot_id
from ..errors import SegmentAbandoned
from ..fsutil import fsync_directory, write_all
from . import format as fmt
from .keys import EvidencePublicKey, device_public_raw, hpke_suite

if TYPE_CHECKING:
    from .reader import Verdict

PART_SUFFIX = ".part"
SEALED_SUFFIX = ".seg"


@dataclass(frozen=True)
class SegmentInfo:
    """Who, what and when a segment records; all of it goes into the signed header."""

    recording_id: uuid.UUID
    segment_index: int
    prev_digest: bytes = b"\0" * 32
    device_name: str = ""
    wall_start_ns: int | None = None
    mono_start_ns: int | None = None
    clock_synced: bool = False
    metadata: bytes = b""  # encrypted METADATA record (JSON): officer, stream parameters…
    boot_id: bytes | None = None  # None: this boot's (/proc/sys/kernel/random/boot_id)


@dataclass(frozen=True)
class SealedSegment:
    path: Path
    digest: bytes  # SHA-256 of the whole file: the next segment's prev_digest, the receipt
    size: int
    plaintext_bytes: int
    end_of_recording: bool
    recording_id: uuid.UUID
    segment_index: int

    @classmethod
    def from_verdict(cls, path: Path, verdict: Verdict) -> SealedSegment:
        """A segment sealed earlier (recovery, adoption), described by its scan."""
        header = verdict.header
        return cls(
            path,
            verdict.digest,
            verdict.file_size,
            verdict.vouched_plaintext,
            verdict.end_of_recording,
            header.recording_id,
            header.segment_index,
        )


RECORD_OVERHEAD = fmt.FRAME.size + fmt.TAG_SIZE  # frame and tag around each record's payload
# Records encrypted into one buffer before one write(2) and one hash update: the recorder's
# 256 KiB batch. Per-record writes cost a third more kernel time (docs/performance.md).
WRITE_RECORDS = 4


def record_bytes(plaintext: int) -> int:
    """At most how many file bytes `plaintext` more payload bytes take as records (with
    whatever the writer already buffers counted in `plaintext`)."""
    return plaintext + (plaintext // fmt.MAX_PLAINTEXT + 1) * RECORD_OVERHEAD


def bytes_to_seal(pending: int = 0) -> int:
    """At most how many bytes sealing a segment still adds to its file, when `pending`
    plaintext bytes (held by the caller or buffered by the writer) go in first: their
    records, the FINAL record, the signed footer, and a checkpoint and the seal each padded
    to a block. Quota (the seal margin), the spool (room for the next segment) and the
    recorder (whether to roll) all ask this one function, so they cannot disagree."""
    return record_bytes(pending) + 2 * fmt.MAX_RECORD + 2 * fmt.ALIGN


class SegmentWriter:
    """Write one segment. Not thread-safe; blocking I/O, so the daemon runs it off the loop."""

    def __init__(
        self,
        part_path: Path,
        info: SegmentInfo,
        evidence_key: EvidencePublicKey,
        device_key: ed25519.Ed25519PrivateKey,
        *,
        fsync: Callable[[int], None] = os.fsync,
    ) -> None:
        if part_path.suffix != PART_SUFFIX:
            raise ValueError(f"{part_path}: a segment being written must end in {PART_SUFFIX}")
        self.path = part_path
        self._sign = device_key
        self._fsync = fsync
        self._hash = hashlib.sha256()
        self._offset = 0
        self._records = 0
        self._plaintext = 0
        self._checkpoints = 0
        self._durable = 0  # the file up to here is on flash: the last fsync that returned
        self._pending = bytearray()
        self._out = bytearray(WRITE_RECORDS * fmt.MAX_RECORD)  # encrypted, not yet written
        self._out_used = 0
        self._fd: int | None = None

        data_key = secrets.token_bytes(32)
        header = fmt.Header(
            kem_id=evidence_key.kem_id,
            segment_index=info.segment_index,
            recording_id=info.recording_id,
            device_key=device_public_raw(device_key),
            wall_start_ns=time.time_ns() if info.wall_start_ns is None else info.wall_start_ns,
            mono_start_ns=(
                time.monotonic_ns() if info.mono_start_ns is None else info.mono_start_ns
            ),
            clock_synced=info.clock_synced,
            device_name=info.device_name,
            prev_digest=info.prev_digest,
            salt=secrets.token_bytes(32),
            enc=b"",
            wrapped_key=b"",
            boot_id=boot_id() if info.boot_id is None else info.boot_id,
        )
        sealed_key = hpke_suite(evidence_key.kem).encrypt(
            data_key, evidence_key.key, info=fmt.data_key_info(header.fixed_bytes())
        )
        enc_len = len(sealed_key) - 48
        header = dataclasses.replace(
            header, enc=sealed_key[:enc_len], wrapped_key=sealed_key[enc_len:]
        )
        self.header = fmt.signed_header(header, device_key)
        self._aead: AESGCM | None = AESGCM(fmt.payload_key(data_key, self.header))
        del data_key

        self._fd = os.open(part_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._append(self.header.raw)
        if info.metadata:
            self._metadata(info.metadata)
        self._sync(directory=True)

    # -- public API -----------------------------------------------------------------------

    @property
    def plaintext_bytes(self) -> int:
        return self._plaintext + len(self._pending)

    @property
    def file_size(self) -> int:
        return self._offset

    @property
    def durable_offset(self) -> int:
        """How much of the file the last successful fsync made durable (the header, or the
        end of a checkpoint or of the footer). After a failed write or fsync, nothing past it
        may be trusted: the salvage cuts the file back to here."""
        return self._durable

    @property
    def buffered_bytes(self) -> int:
        """Plaintext accepted but not yet in a record (at most one record's worth)."""
        return len(self._pending)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Take plaintext of any size; emit full records. Nothing is durable until
        `checkpoint`. A record is emitted only when more data follows it, so the last one
        can always be FINAL."""
        self._check_open()
        chunk = fmt.MAX_PLAINTEXT
        view = memoryview(data)
        if len(self._pending) + len(view) <= chunk:
            self._pending += view
            return
        if self._pending:
            take = chunk - len(self._pending)
            self._pending += view[:take]
            view = view[take:]
            self._emit(fmt.RecordType.DATA, self._pending)
            self._pending.clear()
        while len(view) > chunk:  # straight from the caller's buffer, no copy
            self._emit(fmt.RecordType.DATA, view[:chunk])
            view = view[chunk:]
        self._pending += view
        self._flush()

    def checkpoint(self, mono_ns: int | None = None, wall_ns: int | None = None) -> None:
        """Make everything written so far durable and vouched for by a signed checkpoint."""
        self._check_open()
        if self._pending:
            self._emit(fmt.RecordType.DATA, self._pending)
            self._pending.clear()
        self._flush()  # the checkpoint vouches for the file as written
        point = fmt.Checkpoint(
            seq=self._checkpoints,
            records=self._records,
            plaintext=self._plaintext,
            offset=self._offset,
            file_sha256=self._hash.copy().digest(),
            mono_ns=time.monotonic_ns() if mono_ns is None else mono_ns,
            wall_ns=time.time_ns() if wall_ns is None else wall_ns,
            boot_id=self.header.boot_id,
        )
        self._frame(fmt.RecordType.CHECKPOINT, point.body(self.header, self._sign))
        self._checkpoints += 1
        self._sync()

    def seal(
        self, *, end_of_recording: bool, end_ns: tuple[int, int] | None = None
    ) -> SealedSegment:
        """Final record, signed footer, fsync, rename to .seg, fsync the directory.
        `end_ns` (wall, monotonic) is for test vectors; the clocks are read otherwise."""
        self._check_open()
        self._emit(fmt.RecordType.FINAL, self._pending)
        self._pending.clear()
        self._flush()  # the footer vouches for the file as written
        self._aead = None  # the payload key goes with the AEAD object
        footer = fmt.Footer(
            records=self._records,
            plaintext=self._plaintext,
            offset=self._offset,
            file_sha256=self._hash.copy().digest(),
            checkpoints=self._checkpoints,
            flags=fmt.FLAG_END_OF_RECORDING if end_of_recording else 0,
            wall_end_ns=time.time_ns() if end_ns is None else end_ns[0],
            mono_end_ns=time.monotonic_ns() if end_ns is None else end_ns[1],
        )
        self._frame(fmt.RecordType.FOOTER, footer.body(self.header, self._sign))
        self._sync()
        sealed_path = self.path.with_suffix(SEALED_SUFFIX)
        try:
            self.path.rename(sealed_path)
            fsync_directory(self.path.parent)
        except OSError as exc:
            self._abandon()
            raise SegmentAbandoned(
                f"{self.path}: sealing failed ({exc.strerror or exc}); segment abandoned"
            ) from exc
        self._close()
        return SealedSegment(
            sealed_path,
            self._hash.digest(),
            self._offset,
            self._plaintext,
            end_of_recording,
            self.header.recording_id,
            self.header.segment_index,
        )

    def abandon(self) -> None:
        """Give up on the segment without sealing (its durable prefix stays for recovery)."""
        self._abandon()

    # -- internals ------------------------------------------------------------------------

    def _emit(self, kind: fmt.RecordType, plaintext: bytes | bytearray | memoryview) -> None:
        """Encrypt into the reusable output buffer, after the records already there: no
        allocation, and `_flush` writes them all with one write(2)."""
        assert self._aead is not None
        size = fmt.FRAME.size + len(plaintext) + fmt.TAG_SIZE
        if self._out_used + size > len(self._out):
            self._flush()
        start, end = self._out_used, self._out_used + size
        fmt.FRAME.pack_into(self._out, start, size - fmt.FRAME.size, kind)
        last = kind is fmt.RecordType.FINAL
        with memoryview(self._out) as out:
            self._aead.encrypt_into(
                fmt.nonce(self._records, last),
                plaintext,
                out[start : start + fmt.FRAME.size],
                out[start + fmt.FRAME.size : end],
            )
        self._out_used = end
        self._records += 1
        self._plaintext += len(plaintext)

    def _flush(self) -> None:
        """Write the encrypted records `_emit` left in the output buffer. Everything that
        appends anything else flushes first, so the file's byte order is the records' order."""
        if self._out_used:
            used, self._out_used = self._out_used, 0
            with memoryview(self._out) as out:
                self._append(out[:used])

    def _metadata(self, metadata: bytes) -> None:
        if len(metadata) > fmt.MAX_PLAINTEXT:
            raise ValueError(
                f"segment metadata is {len(metadata)} bytes; at most {fmt.MAX_PLAINTEXT}"
            )
        assert self._aead is not None
        frame = fmt.FRAME.pack(len(metadata) + fmt.TAG_SIZE, fmt.RecordType.METADATA)
        self._append(frame, self._aead.encrypt(fmt.METADATA_NONCE, metadata, frame))

    def _frame(self, kind: fmt.RecordType, body: bytes) -> None:
        self._flush()
        self._append(fmt.FRAME.pack(len(body), kind), body)

    def _append(self, *parts: bytes | memoryview) -> None:
        assert self._fd is not None
        try:
            for part in parts:
                write_all(self._fd, part)
        except OSError as exc:
            self._abandon()
            raise SegmentAbandoned(
                f"{self.path}: write failed at byte {self._offset} ({exc.strerror or exc}); "
                "segment abandoned"
            ) from exc
        for part in parts:
            self._hash.update(part)
            self._offset += len(part)

    def _sync(self, *, directory: bool = False) -> None:
        assert self._fd is not None
        try:
            self._fsync(self._fd)
            if directory:
                fsync_directory(self.path.parent)
            self._durable = self._offset
        except OSError as exc:
            self._abandon()
            raise SegmentAbandoned(
                f"{self.path}: fsync failed ({exc.strerror or exc}); segment abandoned, "
                "never retried on the same file"
            ) from exc

    def _check_open(self) -> None:
        if self._fd is None:
            raise SegmentAbandoned(f"{self.path}: segment is closed or abandoned")

    def _abandon(self) -> None:
        self._aead = None
        self._out_used = 0
        self._pending = bytearray()  # rebind, not clear: write() may hold a view of it
        self._close()

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
