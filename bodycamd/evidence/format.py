"""Byte layout of an evidence segment (normative text: docs/segment-format.md).

This module only packs and unpacks; the writer, reader and recovery share it so the three can
never disagree about an offset. All integers are big-endian.

Version 2 (what the writer makes) adds the boot id to the header, wall time and boot id to
every checkpoint, and the recovery time and boot to the footer; version 1 files stay
readable. Layouts differ only by those appended fields, so one set of classes serves both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
import uuid
from dataclasses import dataclass
from enum import IntEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import FormatError, IntegrityError
from .keys import AEAD_AES_256_GCM, KDF_HKDF_SHA256, kem_by_id

MAGIC = b"\x89BCAM\r\n\x1a"
VERSION = 2  # what the writer makes
VERSIONS = (1, 2)  # what the reader accepts
HEADER_SIZE = 4096
SIGNATURE_SIZE = 64
SIGNED_HEADER_SIZE = HEADER_SIZE - SIGNATURE_SIZE
ALIGN = 4096
MAX_RECORD = 65536  # a whole record, frame included, never exceeds 64 KiB
FRAME = struct.Struct(">IB3x")
TAG_SIZE = 16
MAX_PLAINTEXT = MAX_RECORD - FRAME.size - TAG_SIZE  # 65512
NAME_MAX = 64
DIGEST_SIZE = 32
BOOT_ID_SIZE = 16
NO_BOOT_ID = b"\0" * BOOT_ID_SIZE
WRAPPED_KEY_SIZE = 48  # the 32-byte data key and HPKE's AES-256-GCM tag
ENC_SIZES = {0x0020: 32, 0x647A: 1120}  # HPKE `enc` length by KEM id

# magic, version, kem, kdf, aead, max plaintext, segment index, recording id, device key,
# wall ns, monotonic ns, clock synced, name length, name, previous digest, salt
_FIXED_V1 = struct.Struct(">8sHHHHII16s32sqQBB64s32s32s")
_BOOT = struct.Struct(">16s")  # v2: the boot id follows the v1 fixed fields
FIXED_SIZES = {1: _FIXED_V1.size, 2: _FIXED_V1.size + _BOOT.size}  # 218, 234
FIXED_SIZE = FIXED_SIZES[VERSION]  # what the HPKE info binds
# seq, records, plaintext, offset, sha, mono ns; v2 adds wall ns and boot id
_CHECKPOINT = {1: struct.Struct(">QQQQ32sQ"), 2: struct.Struct(">QQQQ32sQq16s")}
# records, plaintext, offset, sha, checkpoints, flags, wall end, mono end;
# v2 adds recovered-at wall ns and the recovering boot's id (zero unless sealed by recovery)
_FOOTER = {1: struct.Struct(">QQQ32sIBqQ"), 2: struct.Struct(">QQQ32sIBqQq16s")}

LABEL_HEADER = b"bodycamd/v1 header\0"
LABEL_CHECKPOINT = b"bodycamd/v1 checkpoint\0"
LABEL_FOOTER = b"bodycamd/v1 footer\0"
LABEL_DATA_KEY = b"bodycamd/v1 data-key\0"
LABEL_PAYLOAD = b"bodycamd/v1 payload\0"

CHECKPOINT_BODY_MIN = {v: c.size + SIGNATURE_SIZE for v, c in _CHECKPOINT.items()}  # 136, 160
FOOTER_BODY = {v: f.size + SIGNATURE_SIZE for v, f in _FOOTER.items()}  # 141, 165

FLAG_END_OF_RECORDING = 0x01
FLAG_TORN = 0x02
FLAG_PLACEHOLDER = 0x04  # v2: written by recovery for a segment that never got a file
# v2: the device's journal recorded that opening this segment failed (an I/O error or no
# room, not a power cut); only on a torn segment that holds no footage
FLAG_OPEN_FAILED = 0x08
KNOWN_FLAGS = {1: FLAG_END_OF_RECORDING | FLAG_TORN, 2: 0x0F}


class RecordType(IntEnum):
    DATA = 1
    FINAL = 2
    CHECKPOINT = 3
    FOOTER = 4
    METADATA = 5


@dataclass(frozen=True)
class Header:
    kem_id: int
    segment_index: int
    recording_id: uuid.UUID
    device_key: bytes
    wall_start_ns: int
    mono_start_ns: int
    clock_synced: bool
    device_name: str
    prev_digest: bytes
    salt: bytes
    enc: bytes
    wrapped_key: bytes
    boot_id: bytes = NO_BOOT_ID  # v2: /proc/sys/kernel/random/boot_id of the writing boot
    version: int = VERSION
    signature: bytes = b""
    raw: bytes = b""

    @property
    def digest(self) -> bytes:
        """SHA-256 of the whole 4096-byte header: binds checkpoints, footer and payload key."""
        return hashlib.sha256(self.raw).digest()

    def fixed_bytes(self) -> bytes:
        name = self.device_name.encode("utf-8")
        if len(name) > NAME_MAX:
            raise ValueError(f"device name is {len(name)} bytes of UTF-8; at most {NAME_MAX}")
        fixed = _FIXED_V1.pack(
            MAGIC,
            self.version,
            self.kem_id,
            KDF_HKDF_SHA256,
            AEAD_AES_256_GCM,
            MAX_PLAINTEXT,
            self.segment_index,
            self.recording_id.bytes,
            self.device_key,
            self.wall_start_ns,
            self.mono_start_ns,
            int(self.clock_synced),
            len(name),
            name,
            self.prev_digest,
            self.salt,
        )
        return fixed + _BOOT.pack(self.boot_id) if self.version >= 2 else fixed

    @property
    def fixed_size(self) -> int:
        return FIXED_SIZES[self.version]


def data_key_info(fixed: bytes) -> bytes:
    return LABEL_DATA_KEY + hashlib.sha256(fixed).digest()


def signed_header(header: Header, sign: ed25519.Ed25519PrivateKey) -> Header:
    """Lay out and sign the header; returns a Header whose `raw` is the 4096 bytes."""
    body = header.fixed_bytes()
    body += struct.pack(">H", len(header.enc)) + header.enc
    body += struct.pack(">H", len(header.wrapped_key)) + header.wrapped_key
    if len(body) > SIGNED_HEADER_SIZE:
        raise ValueError("header fields do not fit in 4032 bytes")
    body = body.ljust(SIGNED_HEADER_SIZE, b"\0")
    signature = sign.sign(LABEL_HEADER + body)
    raw = body + signature
    return dataclasses.replace(header, signature=signature, raw=raw)


def parse_header(raw: bytes) -> Header:
    """Parse the 4096 header bytes; checks layout, not the signature (see verify_header)."""
    if len(raw) < _FIXED_V1.size or raw[:8] != MAGIC:
        raise FormatError("not a bodycamd segment (bad magic)")
    if len(raw) < HEADER_SIZE:
        raise FormatError(f"header cut short: {len(raw)} of {HEADER_SIZE} bytes")
    (
        _magic,
        version,
        kem_id,
        kdf_id,
        aead_id,
        max_plain,
        index,
        rec,
        device_key,
        wall,
        mono,
        synced,
        name_len,
        name,
        prev,
        salt,
    ) = _FIXED_V1.unpack_from(raw)
    if version not in VERSIONS:
        raise FormatError(f"segment format version {version}; this reader knows 1 and 2")
    if kem_by_id(kem_id) is None:
        raise FormatError(f"unknown KEM id 0x{kem_id:04x}")
    if (kdf_id, aead_id, max_plain) != (KDF_HKDF_SHA256, AEAD_AES_256_GCM, MAX_PLAINTEXT):
        raise FormatError(
            f"unsupported suite: kdf 0x{kdf_id:04x}, aead 0x{aead_id:04x}, records {max_plain}"
        )
    if synced > 1 or name_len > NAME_MAX or any(name[name_len:]):
        raise FormatError("malformed header fields (clock flag or device name)")
    boot_id = _BOOT.unpack_from(raw, _FIXED_V1.size)[0] if version >= 2 else NO_BOOT_ID
    pos = FIXED_SIZES[version]
    (enc_len,) = struct.unpack_from(">H", raw, pos)
    if enc_len != ENC_SIZES[kem_id]:
        raise FormatError(
            f"malformed header: HPKE enc of {enc_len} bytes; KEM 0x{kem_id:04x} makes "
            f"{ENC_SIZES[kem_id]}"
        )
    enc = raw[pos + 2 : pos + 2 + enc_len]
    pos += 2 + enc_len
    (wrapped_len,) = struct.unpack_from(">H", raw, pos)
    if wrapped_len != WRAPPED_KEY_SIZE:
        raise FormatError(
            f"malformed header: wrapped key of {wrapped_len} bytes; expected {WRAPPED_KEY_SIZE}"
        )
    wrapped = raw[pos + 2 : pos + 2 + wrapped_len]
    pos += 2 + wrapped_len
    if any(raw[pos:SIGNED_HEADER_SIZE]):
        raise FormatError("malformed header: reserved bytes after the wrapped key are not zero")
    try:
        device_name = name[:name_len].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError("malformed header: device name is not UTF-8") from exc
    return Header(
        kem_id=kem_id,
        segment_index=index,
        recording_id=uuid.UUID(bytes=rec),
        device_key=device_key,
        wall_start_ns=wall,
        mono_start_ns=mono,
        clock_synced=bool(synced),
        device_name=device_name,
        prev_digest=prev,
        salt=salt,
        enc=enc,
        wrapped_key=wrapped,
        boot_id=boot_id,
        version=version,
        signature=raw[SIGNED_HEADER_SIZE:HEADER_SIZE],
        raw=raw[:HEADER_SIZE],
    )


def verify_header(header: Header, device_key: ed25519.Ed25519PublicKey | None) -> None:
    """Check the header signature. With an enrolled `device_key` the header must also name
    that key; without one the header is checked against the key it embeds (self-consistency
    only: a forger can embed their own key, which is why enrolment matters)."""
    embedded = ed25519.Ed25519PublicKey.from_public_bytes(header.device_key)
    if device_key is not None and device_key.public_bytes_raw() != header.device_key:
        raise IntegrityError("header: segment signed by another device (device key differs)")
    key = device_key or embedded
    try:
        key.verify(header.signature, LABEL_HEADER + header.raw[:SIGNED_HEADER_SIZE])
    except Exception as exc:  # cryptography raises InvalidSignature
        raise IntegrityError("header: bad device signature (header tampered or forged)") from exc


def payload_key(data_key: bytes, header: Header) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=header.salt,
        info=LABEL_PAYLOAD + header.digest,
    ).derive(data_key)


def nonce(index: int, last: bool) -> bytes:
    """STREAM nonce: 3 zero bytes, the record counter, and the last-record flag."""
    return b"\0\0\0" + index.to_bytes(8, "big") + (b"\x01" if last else b"\x00")


# The metadata record's nonce lives in its own space (first byte 1), apart from STREAM's.
METADATA_NONCE = b"\x01" + b"\0" * 11


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    records: int
    plaintext: int
    offset: int
    file_sha256: bytes
    mono_ns: int
    wall_ns: int = 0  # v2
    boot_id: bytes = NO_BOOT_ID  # v2

    def _fields(self, version: int) -> bytes:
        values = (self.seq, self.records, self.plaintext, self.offset, self.file_sha256)
        if version == 1:
            return _CHECKPOINT[1].pack(*values, self.mono_ns)
        return _CHECKPOINT[2].pack(*values, self.mono_ns, self.wall_ns, self.boot_id)

    def body(self, header: Header, sign: ed25519.Ed25519PrivateKey) -> bytes:
        fields = self._fields(header.version)
        signed = fields + sign.sign(LABEL_CHECKPOINT + header.digest + fields)
        end = self.offset + FRAME.size + len(signed)
        return signed + b"\0" * ((-end) % ALIGN)

    @classmethod
    def parse(cls, body: bytes, header: Header, key: ed25519.Ed25519PublicKey) -> Checkpoint:
        layout = _CHECKPOINT[header.version]
        minimum = CHECKPOINT_BODY_MIN[header.version]
        if len(body) < minimum:
            raise IntegrityError(f"checkpoint body is {len(body)} bytes; too short")
        fields = body[: layout.size]
        try:
            key.verify(body[layout.size : minimum], LABEL_CHECKPOINT + header.digest + fields)
        except Exception as exc:
            raise IntegrityError("checkpoint: bad device signature") from exc
        if any(body[minimum:]):
            raise IntegrityError("checkpoint: padding is not zero")
        return cls(*layout.unpack(fields))


@dataclass(frozen=True)
class Footer:
    records: int
    plaintext: int
    offset: int
    file_sha256: bytes
    checkpoints: int
    flags: int
    wall_end_ns: int
    mono_end_ns: int
    recovered_wall_ns: int = 0  # v2: when recovery sealed it (0: sealed by the writer)
    recovery_boot_id: bytes = NO_BOOT_ID  # v2: the boot that ran recovery

    @property
    def end_of_recording(self) -> bool:
        return bool(self.flags & FLAG_END_OF_RECORDING)

    @property
    def torn(self) -> bool:
        return bool(self.flags & FLAG_TORN)

    @property
    def placeholder(self) -> bool:
        return bool(self.flags & FLAG_PLACEHOLDER)

    @property
    def open_failed(self) -> bool:
        return bool(self.flags & FLAG_OPEN_FAILED)

    def _fields(self, version: int) -> bytes:
        values = (
            self.records,
            self.plaintext,
            self.offset,
            self.file_sha256,
            self.checkpoints,
            self.flags,
            self.wall_end_ns,
            self.mono_end_ns,
        )
        if version == 1:
            return _FOOTER[1].pack(*values)
        return _FOOTER[2].pack(*values, self.recovered_wall_ns, self.recovery_boot_id)

    def body(self, header: Header, sign: ed25519.Ed25519PrivateKey) -> bytes:
        fields = self._fields(header.version)
        return fields + sign.sign(LABEL_FOOTER + header.digest + fields)

    @classmethod
    def parse(cls, body: bytes, header: Header, key: ed25519.Ed25519PublicKey) -> Footer:
        layout, size = _FOOTER[header.version], FOOTER_BODY[header.version]
        if len(body) != size:
            raise IntegrityError(f"footer body is {len(body)} bytes; expected {size}")
        fields = body[: layout.size]
        try:
            key.verify(body[layout.size :], LABEL_FOOTER + header.digest + fields)
        except Exception as exc:
            raise IntegrityError("footer: bad device signature (replayed or forged)") from exc
        footer = cls(*layout.unpack(fields))
        if footer.flags & ~KNOWN_FLAGS[header.version]:
            raise IntegrityError(f"footer: unknown flags 0x{footer.flags:02x}")
        if footer.torn and footer.end_of_recording:
            raise IntegrityError("footer: torn and end of recording at once (contradiction)")
        if footer.placeholder and not footer.torn:
            raise IntegrityError("footer: placeholder flag without the torn flag")
        if footer.open_failed and not footer.torn:
            raise IntegrityError("footer: open-failed flag without the torn flag")
        if footer.open_failed and footer.records:
            raise IntegrityError("footer: open-failed flag on a segment that holds footage")
        if footer.torn != (footer.recovered_wall_ns != 0) and header.version >= 2:
            raise IntegrityError("footer: recovery time given if and only if sealed as torn")
        return footer
