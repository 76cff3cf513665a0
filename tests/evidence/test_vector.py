"""The test vector of docs/segment-format.md, read twice: by our reader, and by a minimal
independent reader written from the spec alone (only `cryptography` primitives, no bodycamd
code), which is what proves the spec is precise enough to implement."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bodycamd.evidence.reader import read_segment
from tests.vectors.generate import DEVICE_SEED, EVIDENCE_PRIVATE, PLAINTEXT, keys

VECTOR = Path(__file__).resolve().parent.parent / "vectors" / "v1-x25519.seg"
FILE_SHA256 = "5b17b487f42fc2435530c8c3bd63271884c406b8d72648aea5dd7d5d2780850d"
DATA_KEY = "4fd9a275bc1f354235f0df7917ed5f1e4a9933112600b20b9a2e915bd2d003d0"
PAYLOAD_KEY = "c5ac2f406adc85914a24cf660104c1db9674492a6404db8cb590ada903dd1fd0"


def test_our_reader_reads_the_vector() -> None:
    evidence, device = keys()
    data, verdict = read_segment(VECTOR, evidence, device.public_key())
    assert data == PLAINTEXT
    assert verdict.status == "complete" and verdict.end_of_recording
    assert verdict.digest.hex() == FILE_SHA256


def independent_read(raw: bytes) -> bytes:
    """Decrypt following docs/segment-format.md step by step."""
    assert raw[:8] == b"\x89BCAM\r\n\x1a"
    device_key = ed25519.Ed25519PublicKey.from_public_bytes(raw[40:72])
    device_key.verify(raw[4032:4096], b"bodycamd/v1 header\0" + raw[:4032])
    (enc_len,) = struct.unpack(">H", raw[218:220])
    enc = raw[220 : 220 + enc_len]
    (wrapped_len,) = struct.unpack(">H", raw[220 + enc_len : 222 + enc_len])
    wrapped = raw[222 + enc_len : 222 + enc_len + wrapped_len]
    info = b"bodycamd/v1 data-key\0" + hashlib.sha256(raw[:218]).digest()
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    data_key = suite.decrypt(
        enc + wrapped, x25519.X25519PrivateKey.from_private_bytes(EVIDENCE_PRIVATE), info=info
    )
    assert data_key.hex() == DATA_KEY
    header_digest = hashlib.sha256(raw[:4096]).digest()
    key = HKDF(hashes.SHA256(), 32, raw[186:218], b"bodycamd/v1 payload\0" + header_digest).derive(
        data_key
    )
    assert key.hex() == PAYLOAD_KEY
    aead, pos, counter, out = AESGCM(key), 4096, 0, bytearray()
    while pos < len(raw):
        length, kind = struct.unpack(">IB", raw[pos : pos + 5])
        frame, body = raw[pos : pos + 8], raw[pos + 8 : pos + 8 + length]
        if kind in (1, 2):
            nonce = b"\0\0\0" + counter.to_bytes(8, "big") + bytes([kind == 2])
            out += aead.decrypt(nonce, body, frame)
            counter += 1
        elif kind == 4:
            device_key.verify(body[77:141], b"bodycamd/v1 footer\0" + header_digest + body[:77])
            assert hashlib.sha256(raw[:pos]).digest() == body[24:56]
            assert pos + 8 + length == len(raw)
        pos += 8 + length
    return bytes(out)


def test_independent_reader_reads_the_vector() -> None:
    raw = VECTOR.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == FILE_SHA256
    assert (
        ed25519.Ed25519PrivateKey.from_private_bytes(DEVICE_SEED).public_key().public_bytes_raw()
        == raw[40:72]
    )
    assert independent_read(raw) == PLAINTEXT
