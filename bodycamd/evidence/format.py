"""Byte layout of an evidence segment (normative text: docs/segment-format.md).

This module only packs and unpacks; the writer, reader and recovery share it so the three can
never disagree about an offset. All integers are big-endian.
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
VERSION = 1
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

# magic, version, kem, kdf, aead, max plaintext, segment index, recording id, device key,
# wall ns, monotonic ns, clock synced, name length, name, previous digest, salt
_FIXED = struct.Struct(">8sHHHHII16s32sqQBB64s32s32s")
FIXED_SIZE = _FIXED.size  # 218: what the HPKE info binds
_CHECKPOINT = struct.Struct(">QQQQ32sQ")  # seq, records, plaintext, offset, sha, mono ns
_FOOTER = struct.Struct(">QQQ32sIBqQ")  # records, plaintext, offset, sha, checkpoints, flags...

LABEL_HEADER = b"bodycamd/v1 header\0"
LABEL_CHECKPOINT = b"bodycamd/v1 checkpoint\0"
LABEL_FOOTER = b"bodycamd/v1 footer\0"
LABEL_DATA_KEY = b"bodycamd/v1 data-key\0"
LABEL_PAYLOAD = b"bodycamd/v1 payload\0"

CHECKPOINT_BODY_MIN = _CHECKPOINT.size + SIGNATURE_SIZE  # 136
FOOTER_BODY = _FOOTER.size + SIGNATURE_SIZE  # 141

FLAG_END_OF_RECORDING = 0x01
FLAG_TORN = 0x02


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
        return _FIXED.pack(
            MAGIC,
            VERSION,
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
    if len(raw) < FIXED_SIZE or raw[:8] != MAGIC:
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
    ) = _FIXED.unpack_from(raw)
    if version != VERSION:
        raise FormatError(f"segment format version {version}; this reader knows {VERSION}")
    if kem_by_id(kem_id) is None:
        raise FormatError(f"unknown KEM id 0x{kem_id:04x}")
    if (kdf_id, aead_id, max_plain) != (KDF_HKDF_SHA256, AEAD_AES_256_GCM, MAX_PLAINTEXT):
        raise FormatError(
            f"unsupported suite: kdf 0x{kdf_id:04x}, aead 0x{aead_id:04x}, records {max_plain}"
        )
    if synced > 1 or name_len > NAME_MAX or any(name[name_len:]):
        raise FormatError("malformed header fields (clock flag or device name)")
    pos = FIXED_SIZE
    (enc_len,) = struct.unpack_from(">H", raw, pos)
    enc = raw[pos + 2 : pos + 2 + enc_len]
    pos += 2 + enc_len
    if pos + 2 > SIGNED_HEADER_SIZE:
        raise FormatError("malformed header: HPKE enc overruns the header")
    (wrapped_len,) = struct.unpack_from(">H", raw, pos)
    wrapped = raw[pos + 2 : pos + 2 + wrapped_len]
    pos += 2 + wrapped_len
    if pos > SIGNED_HEADER_SIZE or any(raw[pos:SIGNED_HEADER_SIZE]):
        raise FormatError("malformed header: wrapped key overruns, or padding is not zero")
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

    def body(self, header_digest: bytes, sign: ed25519.Ed25519PrivateKey) -> bytes:
        fields = _CHECKPOINT.pack(
            self.seq, self.records, self.plaintext, self.offset, self.file_sha256, self.mono_ns
        )
        signed = fields + sign.sign(LABEL_CHECKPOINT + header_digest + fields)
        end = self.offset + FRAME.size + len(signed)
        return signed + b"\0" * ((-end) % ALIGN)

    @classmethod
    def parse(cls, body: bytes, header_digest: bytes, key: ed25519.Ed25519PublicKey) -> Checkpoint:
        if len(body) < CHECKPOINT_BODY_MIN:
            raise IntegrityError(f"checkpoint body is {len(body)} bytes; too short")
        fields = body[: _CHECKPOINT.size]
        signature = body[_CHECKPOINT.size : CHECKPOINT_BODY_MIN]
        try:
            key.verify(signature, LABEL_CHECKPOINT + header_digest + fields)
        except Exception as exc:
            raise IntegrityError("checkpoint: bad device signature") from exc
        if any(body[CHECKPOINT_BODY_MIN:]):
            raise IntegrityError("checkpoint: padding is not zero")
        return cls(*_CHECKPOINT.unpack(fields))


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

    @property
    def end_of_recording(self) -> bool:
        return bool(self.flags & FLAG_END_OF_RECORDING)

    @property
    def torn(self) -> bool:
        return bool(self.flags & FLAG_TORN)

    def body(self, header_digest: bytes, sign: ed25519.Ed25519PrivateKey) -> bytes:
        fields = _FOOTER.pack(
            self.records,
            self.plaintext,
            self.offset,
            self.file_sha256,
            self.checkpoints,
            self.flags,
            self.wall_end_ns,
            self.mono_end_ns,
        )
        return fields + sign.sign(LABEL_FOOTER + header_digest + fields)

    @classmethod
    def parse(cls, body: bytes, header_digest: bytes, key: ed25519.Ed25519PublicKey) -> Footer:
        if len(body) != FOOTER_BODY:
            raise IntegrityError(f"footer body is {len(body)} bytes; expected {FOOTER_BODY}")
        fields = body[: _FOOTER.size]
        try:
            key.verify(body[_FOOTER.size :], LABEL_FOOTER + header_digest + fields)
        except Exception as exc:
            raise IntegrityError("footer: bad device signature (replayed or forged)") from exc
        footer = cls(*_FOOTER.unpack(fields))
        if footer.flags & ~(FLAG_END_OF_RECORDING | FLAG_TORN):
            raise IntegrityError(f"footer: unknown flags 0x{footer.flags:02x}")
        return footer
