"""The test vectors of docs/segment-format.md §9, read twice: by our reader, and by a minimal
independent reader written from the spec alone (only `cryptography` primitives, no bodycamd
code), which is what proves the spec is precise enough to implement."""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bodycamd.evidence.reader import read_segment
from tests.vectors.generate import DEVICE_SEED, EVIDENCE_PRIVATE, PLAINTEXT, hybrid_key, keys

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


# -- version 2 ---------------------------------------------------------------------------
# Everything below follows docs/segment-format.md for version 2 and uses no bodycamd code.

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
V2_SHA256 = {
    "v2-x25519": "a9565357e79049ac2c405538f969d5a0f8aa2429283b2845b284b910213a6eaa",
    "v2-hybrid": "444bc5c679860dba94b2be6bad7f38ec71fcde4423b50c178a73a885b46d1aa0",
    "v2-torn": "95fb66547d2a82be8ed4c6d1964c774707c713ab48a05600f4efd12591a485ce",
    "v2-chain-0": "4474d2f0d7c5bd73be4b3ad15b82d9add19ba069636e4700bf348e60f4476937",
    "v2-chain-1": "d9f59b24846d40374563a417b114bc0dda4cf7a81cdf3965ece11f0ac950ffe0",
    "v2-chain-2": "fc8febebbd5e589b3717b9807e98fe5891e851cec746074506b9bfd682e0420b",
    "v2-ended-0": "1ba2ebf7cd4ea873130327b143b82de6d7acfe434f01803f8953b662db64fc77",
    "v2-ended-1": "971f3515967131cb2baa4b90fb88deefc31f92e5a1fff64c1e7b068b9f0f3bd2",
}
HYBRID_SEED_D = hashlib.sha256(b"bodycamd vector ml-kem d").digest()
HYBRID_SEED_Z = hashlib.sha256(b"bodycamd vector ml-kem z").digest()
HYBRID_X25519 = hashlib.sha256(b"bodycamd vector hybrid x25519").digest()
BOOT_ID = bytes.fromhex("00112233445566778899aabbccddeeff")


@dataclass
class Read:
    plaintext: bytes
    metadata: bytes
    index: int
    recording: bytes
    prev: bytes
    flags: int
    checkpoints: list[tuple[int, int]]  # (monotonic ns, wall ns)
    footer_times: tuple[int, int, int]  # wall end, monotonic end, recovered wall
    sha256: bytes


def evidence_private_key(kem_id: int) -> object:
    if kem_id == 0x0020:
        return x25519.X25519PrivateKey.from_private_bytes(EVIDENCE_PRIVATE)
    return hpke.MLKEM768X25519PrivateKey(
        mlkem.MLKEM768PrivateKey.from_seed_bytes(HYBRID_SEED_D + HYBRID_SEED_Z),
        x25519.X25519PrivateKey.from_private_bytes(HYBRID_X25519),
    )


def read_v2(raw: bytes) -> Read:
    assert raw[:8] == b"\x89BCAM\r\n\x1a" and struct.unpack(">H", raw[8:10])[0] == 2
    kem_id, kdf_id, aead_id, max_plain = struct.unpack(">HHHI", raw[10:20])
    assert (kdf_id, aead_id, max_plain) == (1, 2, 65512)
    index = struct.unpack(">I", raw[20:24])[0]
    device = ed25519.Ed25519PublicKey.from_public_bytes(raw[40:72])
    device.verify(raw[4032:4096], b"bodycamd/v1 header\0" + raw[:4032])
    wall_start, mono_start = struct.unpack(">qQ", raw[72:88])
    assert raw[218:234] == BOOT_ID  # v2: boot id after the salt; fixed fields are 234 bytes
    (enc_len,) = struct.unpack(">H", raw[234:236])
    assert enc_len == {0x0020: 32, 0x647A: 1120}[kem_id]
    enc = raw[236 : 236 + enc_len]
    (wrapped_len,) = struct.unpack(">H", raw[236 + enc_len : 238 + enc_len])
    assert wrapped_len == 48
    end = 238 + enc_len + wrapped_len
    assert not any(raw[end:4032])
    kem = hpke.KEM.X25519 if kem_id == 0x0020 else hpke.KEM.MLKEM768_X25519
    suite = hpke.Suite(kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    info = b"bodycamd/v1 data-key\0" + hashlib.sha256(raw[:234]).digest()
    data_key = suite.decrypt(
        enc + raw[238 + enc_len : end], evidence_private_key(kem_id), info=info
    )  # type: ignore[arg-type]
    header_digest = hashlib.sha256(raw[:4096]).digest()
    payload = HKDF(hashes.SHA256(), 32, raw[186:218], b"bodycamd/v1 payload\0" + header_digest)
    aead = AESGCM(payload.derive(data_key))
    pos, counter, plain, out, metadata = 4096, 0, 0, bytearray(), b""
    checkpoints: list[tuple[int, int]] = []
    last_times = (mono_start, wall_start)
    flags, times = -1, (0, 0, 0)
    while pos < len(raw):
        assert flags == -1, "nothing after the footer"
        length, kind = struct.unpack(">IB", raw[pos : pos + 5])
        assert raw[pos + 5 : pos + 8] == b"\0\0\0"
        frame, body = raw[pos : pos + 8], raw[pos + 8 : pos + 8 + length]
        file_hash = hashlib.sha256(raw[:pos]).digest()
        if kind == 5:
            assert pos == 4096
            metadata = aead.decrypt(b"\x01" + b"\0" * 11, body, frame)
        elif kind in (1, 2):
            nonce = b"\0\0\0" + counter.to_bytes(8, "big") + bytes([kind == 2])
            chunk = aead.decrypt(nonce, body, frame)
            out += chunk
            counter, plain = counter + 1, plain + len(chunk)
        elif kind == 3:
            fields = body[:96]
            device.verify(body[96:160], b"bodycamd/v1 checkpoint\0" + header_digest + fields)
            seq, records, plaintext, offset, sha, mono, wall, boot = struct.unpack(
                ">QQQQ32sQq16s", fields
            )
            assert (seq, records, plaintext, offset, sha) == (
                len(checkpoints),
                counter,
                plain,
                pos,
                file_hash,
            )
            assert boot == BOOT_ID and mono >= last_times[0] and not any(body[160:])
            assert (pos + 8 + length) % 4096 == 0
            checkpoints.append((mono, wall))
            last_times = (mono, wall)
        else:
            assert kind == 4 and length == 165
            fields = body[:101]
            device.verify(body[101:165], b"bodycamd/v1 footer\0" + header_digest + fields)
            records, plaintext, offset, sha, count, flags, wall_end, mono_end, recovered, _ = (
                struct.unpack(">QQQ32sIBqQq16s", fields)
            )
            assert (records, plaintext, offset, sha, count) == (
                counter,
                plain,
                pos,
                file_hash,
                len(checkpoints),
            )
            if flags & 2:  # torn: ends at the last checkpoint's time, recovery time apart
                assert (mono_end, wall_end) == last_times and recovered > 0
            else:
                assert recovered == 0 and mono_end >= last_times[0]
            times = (wall_end, mono_end, recovered)
        pos += 8 + length
    assert flags >= 0, "a sealed vector ends with its footer"
    return Read(
        bytes(out),
        metadata,
        index,
        raw[24:40],
        raw[154:186],
        flags,
        checkpoints,
        times,
        hashlib.sha256(raw).digest(),
    )


def vector(name: str) -> bytes:
    raw = (VECTORS / f"{name}.seg").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == V2_SHA256[name]
    return raw


def test_v2_metadata_and_checkpoints() -> None:
    read = read_v2(vector("v2-x25519"))
    assert read.plaintext == PLAINTEXT and read.flags == 1  # end of recording
    assert json.loads(read.metadata)["officer"] == "123456"
    assert read.checkpoints == [
        (1_000_000_000 + n * 1_000_000_000, 1_700_000_000_000_000_000 + n * 1_000_000_000)
        for n in (1, 2, 3)
    ]


def test_v2_hybrid_suite() -> None:
    assert read_v2(vector("v2-hybrid")).plaintext == PLAINTEXT[:5000]


def test_v2_torn_segment() -> None:
    read = read_v2(vector("v2-torn"))
    assert read.flags == 2 and read.plaintext == PLAINTEXT[:20000]
    wall_end, mono_end, recovered = read.footer_times
    assert (mono_end, wall_end) == read.checkpoints[-1] and recovered > wall_end


def test_v2_three_segment_chain() -> None:
    reads = [read_v2(vector(f"v2-chain-{n}")) for n in range(3)]
    assert [r.index for r in reads] == [0, 1, 2]
    assert len({r.recording for r in reads}) == 1
    assert reads[0].prev == b"\0" * 32
    assert [r.prev for r in reads[1:]] == [r.sha256 for r in reads[:2]]
    assert [r.flags for r in reads] == [0, 0, 1]
    assert b"".join(r.plaintext for r in reads) == PLAINTEXT


def test_v2_open_failed_placeholder() -> None:
    """Segment 1 could not be opened (the device's journal says so): recovery sealed an
    empty segment 1 flagged torn | placeholder | open-failed, starting and ending when
    segment 0 ended."""
    first, second = (read_v2(vector(f"v2-ended-{n}")) for n in range(2))
    assert first.flags == 0 and first.plaintext == PLAINTEXT[:10000]
    assert (second.index, second.flags, second.plaintext) == (1, 0x02 | 0x04 | 0x08, b"")
    assert second.recording == first.recording and second.prev == first.sha256
    assert second.footer_times[:2] == first.footer_times[:2] and second.footer_times[2] > 0


@pytest.mark.parametrize("name", sorted(V2_SHA256))
def test_our_reader_agrees(name: str) -> None:
    evidence = keys()[0] if name != "v2-hybrid" else hybrid_key()
    data, verdict = read_segment(VECTORS / f"{name}.seg", evidence, keys()[1].public_key())
    assert data == read_v2(vector(name)).plaintext
    assert verdict.status == ("torn" if name in ("v2-torn", "v2-ended-1") else "complete")
