"""Reading segments back: the keyless scan (device side) and the decrypting reader (back end).

Both walk the file with one state machine, so "how far do the signatures vouch for this file"
is computed the same way on the device that truncates a torn segment and in the back end that
shows it to a court. The reader never yields a byte that has not been authenticated, and it
only says `complete` for a final record, a valid footer and the exact end of the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import FormatError, IntegrityError, WrongKeyError
from . import format as fmt
from .keys import EvidencePrivateKey, hpke_suite, kem_by_id

Status = Literal["complete", "torn"]
_READ = 1 << 20
_DIAGNOSE_LIMIT = 64  # how far past the expected position to look for a moved record


@dataclass(frozen=True)
class Verdict:
    status: Status
    header: fmt.Header
    file_size: int
    plaintext_bytes: int  # authenticated plaintext (keyless scan: as framed, unauthenticated)
    data_records: int
    checkpoints: int
    vouched_offset: int  # the file up to here is covered by a device signature
    vouched_plaintext: int
    vouched_records: int
    vouched_sha256: bytes  # SHA-256 of file[0:vouched_offset]
    vouched_mono_ns: int  # the time of the last checkpoint (or the header's start)
    vouched_wall_ns: int
    end_of_recording: bool
    sealed_torn: bool  # the device sealed it as torn after power loss
    tail: str  # what the end of the file looks like, in words
    digest: bytes  # SHA-256 of the whole file as read
    placeholder: bool = False  # sealed by recovery for a segment the power cut never began
    open_failed: bool = False  # sealed by recovery: the journal says opening it failed
    end_wall_ns: int | None = None  # the footer's end (a torn footer's: its last checkpoint)
    end_mono_ns: int | None = None
    recovered_wall_ns: int = 0  # when recovery sealed it (v2 footers), else 0

    @property
    def records_after_checkpoint(self) -> int:
        return self.data_records - self.vouched_records


def read_header(stream: BinaryIO, device_key: ed25519.Ed25519PublicKey | None) -> fmt.Header:
    header = fmt.parse_header(stream.read(fmt.HEADER_SIZE))
    fmt.verify_header(header, device_key)
    return header


class _Walk:
    """One pass over the records after the header."""

    def __init__(
        self,
        stream: BinaryIO,
        header: fmt.Header,
        device_key: ed25519.Ed25519PublicKey,
        aead: AESGCM | None,
        *,
        unvouched_tail: bool = False,
    ) -> None:
        self.stream = stream
        # recovery of a `.part`: what follows the last checkpoint was never vouched for, and
        # a power cut can leave anything there (a block of zeros the filesystem had
        # allocated, half a flash page), so a malformed record there ends the walk as the
        # torn tail instead of failing the whole file
        self.unvouched_tail = unvouched_tail
        self.header = header
        self.key = device_key
        self.aead = aead
        self.hash = hashlib.sha256(header.raw)
        self.offset = fmt.HEADER_SIZE
        self.frames = 0
        self.records = 0
        self.plaintext = 0
        self.checkpoints = 0
        self.vouched = (fmt.HEADER_SIZE, 0, 0, self.hash.digest())
        # the times the last checkpoint (or the header) vouches for: a torn footer's end
        self.last_times = (header.mono_start_ns, header.wall_start_ns)
        self.since_checkpoint = (fmt.HEADER_SIZE, 0)  # byte and record where it began
        self.final_seen = False
        self.footer: fmt.Footer | None = None
        self.metadata = b""
        self.tail = ""

    def _where(self) -> str:
        return f"record {self.frames} (byte {self.offset})"

    def _fail(self, why: str) -> IntegrityError:
        return IntegrityError(f"{self._where()}: {why}", record=self.frames, offset=self.offset)

    def run(self) -> Iterator[bytes]:
        try:
            yield from self._records()
        except IntegrityError as exc:
            if not self.unvouched_tail or self.footer is not None:
                raise
            self.tail = (
                f"unreadable after the last valid checkpoint, at {exc}; nothing after that "
                "checkpoint is kept"
            )

    def _records(self) -> Iterator[bytes]:
        while True:
            frame = self.stream.read(fmt.FRAME.size)
            if self.footer is not None:
                if frame:
                    extra = len(frame) + len(self.stream.read())
                    raise self._fail(f"{extra} bytes after the footer")
                self.tail = (
                    "sealed"
                    if not self.footer.torn
                    else "sealed empty by the device: it could not be opened (I/O error or no "
                    "room, in the device's audit trail)"
                    if self.footer.open_failed
                    else "sealed empty by the device: power lost before it began"
                    if self.footer.placeholder
                    else "sealed as torn by the device"
                )
                return
            if not frame:
                self.tail = (
                    "ends after the final record; footer missing"
                    if self.final_seen
                    else "ends at a record boundary; final record and footer missing"
                )
                return
            if len(frame) < fmt.FRAME.size:
                self.tail = f"ends inside the frame of {self._where()}"
                return
            length, kind_raw = fmt.FRAME.unpack(frame)
            if any(frame[5:]):
                raise self._fail("reserved frame bytes are not zero")
            try:
                kind = fmt.RecordType(kind_raw)
            except ValueError:
                raise self._fail(f"unknown record type {kind_raw}") from None
            self._check_length(kind, length)
            body = self.stream.read(length)
            if len(body) < length:
                self.tail = (
                    f"ends inside {self._where()}, a {kind.name} record cut after "
                    f"{len(body)} of {length} bytes"
                )
                return
            if kind in (fmt.RecordType.DATA, fmt.RecordType.FINAL):
                plain = self._data(kind, frame, body)
                if plain:
                    yield plain
            elif kind is fmt.RecordType.CHECKPOINT:
                self._checkpoint(body)
            elif kind is fmt.RecordType.METADATA:
                self._metadata(frame, body)
            else:
                self._footer(body)
            self.hash.update(frame)
            self.hash.update(body)
            self.offset += fmt.FRAME.size + length
            self.frames += 1
            if kind is fmt.RecordType.CHECKPOINT:
                self.vouched = (self.offset, self.plaintext, self.records, self.hash.digest())
                self.since_checkpoint = (self.offset, self.frames)

    def _check_length(self, kind: fmt.RecordType, length: int) -> None:
        low, high = {
            fmt.RecordType.DATA: (fmt.TAG_SIZE + 1, fmt.MAX_PLAINTEXT + fmt.TAG_SIZE),
            fmt.RecordType.FINAL: (fmt.TAG_SIZE, fmt.MAX_PLAINTEXT + fmt.TAG_SIZE),
            fmt.RecordType.CHECKPOINT: (
                fmt.CHECKPOINT_BODY_MIN[self.header.version],
                fmt.CHECKPOINT_BODY_MIN[self.header.version] + fmt.ALIGN,
            ),
            fmt.RecordType.FOOTER: (
                fmt.FOOTER_BODY[self.header.version],
                fmt.FOOTER_BODY[self.header.version],
            ),
            fmt.RecordType.METADATA: (fmt.TAG_SIZE, fmt.MAX_PLAINTEXT + fmt.TAG_SIZE),
        }[kind]
        if kind is fmt.RecordType.METADATA and self.frames != 0:
            raise self._fail("METADATA record anywhere but first")
        if not low <= length <= high:
            raise self._fail(f"{kind.name} record of {length} bytes; expected {low} to {high}")
        if self.final_seen and kind is not fmt.RecordType.FOOTER:
            raise self._fail(f"{kind.name} record after the final record")

    def _data(self, kind: fmt.RecordType, frame: bytes, body: bytes) -> bytes:
        last = kind is fmt.RecordType.FINAL
        size = len(body) - fmt.TAG_SIZE
        plain = b""
        if self.aead is not None:
            try:
                plain = self.aead.decrypt(fmt.nonce(self.records, last), body, frame)
            except InvalidTag:
                raise self._fail(self._diagnose(kind, body)) from None
        self.records += 1
        self.plaintext += size
        self.final_seen = last
        return plain

    def _metadata(self, frame: bytes, body: bytes) -> None:
        if self.aead is None:
            return
        try:
            self.metadata = self.aead.decrypt(fmt.METADATA_NONCE, body, frame)
        except InvalidTag:
            raise self._fail("bad tag on the METADATA record (altered)") from None

    def _diagnose(self, kind: fmt.RecordType, body: bytes) -> str:
        """Name what happened to a record that fails its tag: try the other positions."""
        assert self.aead is not None
        for index in range(min(self.records + _DIAGNOSE_LIMIT, 1 << 32)):
            for last in (False, True):
                other = fmt.RecordType.FINAL if last else fmt.RecordType.DATA
                frame = fmt.FRAME.pack(len(body), other)
                try:
                    self.aead.decrypt(fmt.nonce(index, last), body, frame)
                except InvalidTag:
                    continue
                if index == self.records:
                    return f"{kind.name} record was relabelled (it was written as {other.name})"
                if index < self.records:
                    return (
                        f"bad tag: this is data record {index} again (duplicated or "
                        f"replayed); expected data record {self.records}"
                    )
                return (
                    f"bad tag: this is data record {index}; expected data record "
                    f"{self.records} (records dropped or reordered)"
                )
        return "bad tag: the record was altered (or the segment has the wrong key)"

    def _checkpoint(self, body: bytes) -> None:
        point = fmt.Checkpoint.parse(body, self.header, self.key)
        expected = (self.checkpoints, self.records, self.plaintext, self.offset, self.hash.digest())
        found = (point.seq, point.records, point.plaintext, point.offset, point.file_sha256)
        if found != expected:
            names = ("sequence", "record count", "plaintext bytes", "offset", "file hash")
            wrong = [n for n, a, b in zip(names, found, expected, strict=True) if a != b]
            since_byte, since_record = self.since_checkpoint
            where = ""
            if wrong == ["file hash"]:
                where = (
                    f": records {since_record} to {self.frames - 1} (bytes {since_byte} to "
                    f"{self.offset - 1}) were altered after the device wrote them"
                )
            raise self._fail(
                f"checkpoint does not match the file before it ({', '.join(wrong)}){where}"
            )
        if (self.offset + fmt.FRAME.size + len(body)) % fmt.ALIGN:
            raise self._fail("checkpoint does not end on a 4096-byte boundary")
        if self.header.version >= 2 and point.boot_id != self.header.boot_id:
            raise self._fail("checkpoint names another boot than the header")
        if point.mono_ns < self.last_times[0]:
            raise self._fail(
                "checkpoint's monotonic time goes back (before the header or the previous "
                "checkpoint)"
            )
        wall = point.wall_ns if self.header.version >= 2 else self.header.wall_start_ns
        self.last_times = (point.mono_ns, wall)
        self.checkpoints += 1

    def _footer(self, body: bytes) -> None:
        footer = fmt.Footer.parse(body, self.header, self.key)
        expected = (self.records, self.plaintext, self.offset, self.hash.digest(), self.checkpoints)
        found = (
            footer.records,
            footer.plaintext,
            footer.offset,
            footer.file_sha256,
            footer.checkpoints,
        )
        if found != expected:
            raise self._fail("footer does not match the file before it (replayed or altered)")
        if footer.torn == self.final_seen:
            raise self._fail("footer's torn flag contradicts the records before it")
        if footer.torn and self.offset != self.vouched[0]:
            raise self._fail("torn footer does not follow a checkpoint")
        # v1 torn footers carried the recovery's clocks (maybe of the next boot): unchecked
        if self.header.version >= 2 and footer.mono_end_ns < self.last_times[0]:
            raise self._fail("footer's monotonic end is before the last checkpoint")
        torn_times = (footer.mono_end_ns, footer.wall_end_ns)
        if self.header.version >= 2 and footer.torn and torn_times != self.last_times:
            raise self._fail("torn footer's end is not the time of its last checkpoint")
        if footer.placeholder and (self.records or self.checkpoints or self.frames):
            raise self._fail("placeholder footer on a segment that holds records")
        self.footer = footer

    def verdict(self) -> Verdict:
        footer = self.footer
        complete = footer is not None and not footer.torn and self.final_seen
        return Verdict(
            status="complete" if complete else "torn",
            header=self.header,
            file_size=self.offset,
            plaintext_bytes=self.plaintext,
            data_records=self.records,
            checkpoints=self.checkpoints,
            vouched_offset=self.offset if footer is not None else self.vouched[0],
            vouched_plaintext=self.plaintext if footer is not None else self.vouched[1],
            vouched_records=self.records if footer is not None else self.vouched[2],
            vouched_sha256=self.hash.digest() if footer is not None else self.vouched[3],
            vouched_mono_ns=self.last_times[0],
            vouched_wall_ns=self.last_times[1],
            end_of_recording=footer is not None and footer.end_of_recording,
            sealed_torn=footer is not None and footer.torn,
            tail=self.tail,
            digest=self.hash.digest(),
            placeholder=footer is not None and footer.placeholder,
            open_failed=footer is not None and footer.open_failed,
            end_wall_ns=None if footer is None else footer.wall_end_ns,
            end_mono_ns=None if footer is None else footer.mono_end_ns,
            recovered_wall_ns=0 if footer is None else footer.recovered_wall_ns,
        )


def _device_key(
    header: fmt.Header, enrolled: ed25519.Ed25519PublicKey | None
) -> ed25519.Ed25519PublicKey:
    return enrolled or ed25519.Ed25519PublicKey.from_public_bytes(header.device_key)


def scan_segment(
    path: Path, device_key: ed25519.Ed25519PublicKey | None = None, *, recovering: bool = False
) -> Verdict:
    """Keyless scan: how far the device's signed checkpoints vouch for the file. Raises
    EvidenceError for a file that is not a well-formed, correctly signed segment.

    `recovering` is for a `.part` left by a power cut, before recovery seals it: a malformed
    record after the last valid checkpoint is then its torn tail (`tail` says where and
    why), not an error. Everything a signature covers is checked as strictly as ever: the
    walk stops at the first bad record, so the vouched prefix ends at the last checkpoint
    before it."""
    with path.open("rb", buffering=_READ) as stream:
        header = read_header(stream, device_key)
        walk = _Walk(
            stream, header, _device_key(header, device_key), None, unvouched_tail=recovering
        )
        for _ in walk.run():
            pass
        return walk.verdict()


class SegmentReader:
    """Decrypt a segment: iterate `plaintext()`, then read `verdict`.

    On a bad record the iterator raises IntegrityError naming it, after yielding only the
    authenticated plaintext before it.
    """

    def __init__(
        self,
        path: Path,
        evidence_key: EvidencePrivateKey,
        device_key: ed25519.Ed25519PublicKey | None = None,
    ) -> None:
        self.path = path
        self._evidence_key = evidence_key
        self._device_key = device_key
        self._verdict: Verdict | None = None
        self.metadata = b""  # the decrypted METADATA record, once plaintext() has started

    @property
    def verdict(self) -> Verdict:
        if self._verdict is None:
            raise RuntimeError("verdict is known only after plaintext() has been exhausted")
        return self._verdict

    def plaintext(self) -> Iterator[bytes]:
        with self.path.open("rb", buffering=_READ) as stream:
            header = read_header(stream, self._device_key)
            aead = AESGCM(fmt.payload_key(unwrap_data_key(header, self._evidence_key), header))
            walk = _Walk(stream, header, _device_key(header, self._device_key), aead)
            for chunk in walk.run():
                self.metadata = walk.metadata
                yield chunk
            self.metadata = walk.metadata
            self._verdict = walk.verdict()


def unwrap_data_key(header: fmt.Header, key: EvidencePrivateKey) -> bytes:
    kem = kem_by_id(header.kem_id)
    if kem != key.kem:
        raise WrongKeyError(f"segment's data key is wrapped with {kem}; the key given is {key.kem}")
    try:
        return hpke_suite(key.kem).decrypt(
            header.enc + header.wrapped_key,
            key.key,
            info=fmt.data_key_info(header.raw[: header.fixed_size]),
        )
    except Exception as exc:
        raise WrongKeyError(
            "the evidence private key given does not unwrap this segment's data key"
        ) from exc


def read_segment(
    path: Path, evidence_key: EvidencePrivateKey, device_key: ed25519.Ed25519PublicKey | None = None
) -> tuple[bytes, Verdict]:
    """Convenience for small segments and tests: all plaintext at once."""
    reader = SegmentReader(path, evidence_key, device_key)
    data = b"".join(reader.plaintext())
    return data, reader.verdict


__all__ = ["FormatError", "SegmentReader", "Verdict", "read_segment", "scan_segment"]
