"""Keys: the device's Ed25519 signing key and the back end's evidence (HPKE) key pair.

The device holds only the evidence *public* key, so whoever holds the device (a thief, or the
officer wearing it) cannot decrypt what it recorded. The device signing key is what makes a
segment attributable: HPKE base mode is sender-anonymous, so without it anyone holding the
public key could forge footage.

Evidence key files are our own small text format because the ML-KEM-768+X25519 hybrid has no
settled PEM/PKCS#8 encoding yet; the device key is standard PKCS#8 PEM, and every PEM
private key of the project (device key, TLS client key, the ingest's CA and receipt keys) is
read and written by the one pair of helpers here, `load_private_pem` and
`write_private_pem`, so each gets the same checks and messages. All key files are written
atomically (temp file, fsync, rename, fsync directory) with mode 0600, so a power cut
leaves either no key or a whole key, never half of one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mlkem, x25519

from ..errors import KeyFileError
from ..fsutil import fsync_directory as fsync_directory  # re-exported: ingest imports it here
from ..fsutil import write_all

KemName = Literal["x25519", "mlkem768-x25519"]

# HPKE registry code points (RFC 9180 §7; the hybrid's id from the HPKE PQ drafts).
KEM_IDS: dict[KemName, int] = {"x25519": 0x0020, "mlkem768-x25519": 0x647A}
KDF_HKDF_SHA256 = 0x0001
AEAD_AES_256_GCM = 0x0002

_PUBLIC_TITLE = "bodycamd evidence public key v1"
_PRIVATE_TITLE = "bodycamd evidence PRIVATE key v1 - back end only, never put this on a device"
_MLKEM768_PUBLIC = 1184
_MLKEM_SEED = 64
_X25519 = 32

PublicKey = x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey
PrivateKey = x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey
PemPrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PemKind = Literal["EC", "Ed25519"]
_PEM_KINDS: dict[PemKind, type[PemPrivateKey]] = {
    "EC": ec.EllipticCurvePrivateKey,
    "Ed25519": ed25519.Ed25519PrivateKey,
}


def hpke_suite(kem: KemName) -> hpke.Suite:
    kem_obj = hpke.KEM.X25519 if kem == "x25519" else hpke.KEM.MLKEM768_X25519
    return hpke.Suite(kem_obj, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def kem_by_id(kem_id: int) -> KemName | None:
    for name, value in KEM_IDS.items():
        if value == kem_id:
            return name
    return None


def fingerprint(raw_public: bytes) -> str:
    """SHA-256 of the raw public key, in groups of four hex digits, for reading aloud."""
    digest = hashlib.sha256(raw_public).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


@dataclass(frozen=True)
class EvidencePublicKey:
    kem: KemName
    raw: bytes
    key: PublicKey

    @property
    def kem_id(self) -> int:
        return KEM_IDS[self.kem]


@dataclass(frozen=True)
class EvidencePrivateKey:
    kem: KemName
    raw: bytes
    key: PrivateKey
    public: EvidencePublicKey


def generate_evidence_key(kem: KemName = "x25519") -> EvidencePrivateKey:
    if kem == "x25519":
        return evidence_private_key_from_raw(
            kem, x25519.X25519PrivateKey.generate().private_bytes_raw()
        )
    seed = mlkem.MLKEM768PrivateKey.generate().private_bytes_raw()
    classic = x25519.X25519PrivateKey.generate().private_bytes_raw()
    return evidence_private_key_from_raw(kem, seed + classic)


def _public_from_raw(kem: KemName, raw: bytes) -> EvidencePublicKey:
    if kem == "x25519":
        if len(raw) != _X25519:
            raise ValueError(f"expected {_X25519} bytes, got {len(raw)}")
        return EvidencePublicKey(kem, raw, x25519.X25519PublicKey.from_public_bytes(raw))
    if len(raw) != _MLKEM768_PUBLIC + _X25519:
        raise ValueError(f"expected {_MLKEM768_PUBLIC + _X25519} bytes, got {len(raw)}")
    key = hpke.MLKEM768X25519PublicKey(
        mlkem.MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM768_PUBLIC]),
        x25519.X25519PublicKey.from_public_bytes(raw[_MLKEM768_PUBLIC:]),
    )
    return EvidencePublicKey(kem, raw, key)


def evidence_private_key_from_raw(kem: KemName, raw: bytes) -> EvidencePrivateKey:
    if kem == "x25519":
        if len(raw) != _X25519:
            raise ValueError(f"expected {_X25519} bytes, got {len(raw)}")
        classic = x25519.X25519PrivateKey.from_private_bytes(raw)
        public_raw = classic.public_key().public_bytes_raw()
        return EvidencePrivateKey(kem, raw, classic, _public_from_raw(kem, public_raw))
    if len(raw) != _MLKEM_SEED + _X25519:
        raise ValueError(f"expected {_MLKEM_SEED + _X25519} bytes, got {len(raw)}")
    pq = mlkem.MLKEM768PrivateKey.from_seed_bytes(raw[:_MLKEM_SEED])
    classic = x25519.X25519PrivateKey.from_private_bytes(raw[_MLKEM_SEED:])
    public_raw = pq.public_key().public_bytes_raw() + classic.public_key().public_bytes_raw()
    hybrid = hpke.MLKEM768X25519PrivateKey(pq, classic)
    return EvidencePrivateKey(kem, raw, hybrid, _public_from_raw(kem, public_raw))


def _encode(title: str, kem: KemName, raw: bytes) -> bytes:
    return f"{title}\nkem: {kem}\nkey: {base64.b64encode(raw).decode()}\n".encode()


def _decode(path: Path, title: str) -> tuple[KemName, bytes]:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise KeyFileError(f"{path}: not a bodycamd evidence key file (not text)") from exc
    lines = text.strip().splitlines()
    if len(lines) != 3 or lines[0] != title:
        raise KeyFileError(f"{path}: not a {title.split(' - ')[0]} file (first line {lines[:1]})")
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    kem = fields.get("kem")
    if kem not in KEM_IDS:
        raise KeyFileError(f"{path}: kem: expected x25519 or mlkem768-x25519, got {kem!r}")
    try:
        raw = base64.b64decode(fields.get("key", ""), validate=True)
    except binascii.Error as exc:
        raise KeyFileError(f"{path}: key: not valid base64") from exc
    return kem, raw


def load_evidence_public_key(path: Path) -> EvidencePublicKey:
    kem, raw = _decode(path, _PUBLIC_TITLE)
    try:
        return _public_from_raw(kem, raw)
    except ValueError as exc:
        raise KeyFileError(f"{path}: key: not a valid {kem} public key ({exc})") from exc


def load_evidence_private_key(path: Path) -> EvidencePrivateKey:
    kem, raw = _decode(path, _PRIVATE_TITLE)
    check_private_mode(path)
    try:
        return evidence_private_key_from_raw(kem, raw)
    except ValueError as exc:
        raise KeyFileError(f"{path}: key: not a valid {kem} private key ({exc})") from exc


def write_evidence_key_pair(private: EvidencePrivateKey, private_path: Path) -> Path:
    """Write `private_path` and `private_path` with suffix .pub; return the public path."""
    public_path = private_path.with_suffix(".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError(f"{path}: already exists; refusing to overwrite a key")
    atomic_write(private_path, _encode(_PRIVATE_TITLE, private.kem, private.raw))
    atomic_write(public_path, _encode(_PUBLIC_TITLE, private.kem, private.public.raw))
    return public_path


def load_or_create_device_key(path: Path) -> ed25519.Ed25519PrivateKey:
    """Load the device key at `path`, or make one if there is none. Only for places that
    know the key cannot be missing for a bad reason (tests, a fresh state directory): the
    daemon goes through bodycamd.identity, which refuses to make a key where footage is."""
    if not path.exists():
        return create_device_key(path)
    return load_device_key(path)


def create_device_key(path: Path) -> ed25519.Ed25519PrivateKey:
    """A new Ed25519 device key in PKCS#8 PEM, written atomically, 0600; refuses to replace."""
    if path.exists():
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key")
    key = ed25519.Ed25519PrivateKey.generate()
    write_private_pem(path, key)
    return key


def check_private_mode(path: Path) -> None:
    """Refuse a private key that others can read or write, as ssh does: whoever could read it
    could have copied it, and then it proves nothing."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc.strerror or exc}") from exc
    if mode & 0o077:
        raise KeyFileError(
            f"{path}: private key is accessible by others (mode {mode:04o}); it must be "
            f"readable by its owner only: chmod 600 {path}"
        )


@overload
def load_private_pem(path: Path, kind: Literal["EC"], what: str) -> ec.EllipticCurvePrivateKey: ...
@overload
def load_private_pem(
    path: Path, kind: Literal["Ed25519"], what: str
) -> ed25519.Ed25519PrivateKey: ...
def load_private_pem(path: Path, kind: PemKind, what: str) -> PemPrivateKey:
    """The unencrypted PEM private key of `kind` at `path` (named "{kind} {what}" in errors,
    e.g. "Ed25519 device key"). Refused, naming the file and what was expected, if others can
    read it (check_private_mode), if it is not PEM or is encrypted (nobody is there to type a
    passphrase), or if it holds another kind of key."""
    check_private_mode(path)
    return _read_private_pem(path, kind, what)


def _read_private_pem(path: Path, kind: PemKind, what: str) -> PemPrivateKey:
    name = f"{kind} {what}"
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read {name}: {exc.strerror or exc}") from exc
    except (ValueError, TypeError) as exc:  # TypeError: encrypted, and no password
        raise KeyFileError(f"{path}: expected the {name} as unencrypted PEM ({exc})") from exc
    if not isinstance(loaded, _PEM_KINDS[kind]):
        raise KeyFileError(f"{path}: expected the {name}, got {type(loaded).__name__}")
    return loaded


def write_private_pem(path: Path, key: PemPrivateKey) -> None:
    """`key` as unencrypted PKCS#8 PEM, 0600, atomically (a power cut leaves no key or the
    whole key). Unencrypted because a device or ingest restarts with nobody to type a
    passphrase; the file's mode and directory are its protection."""
    encoding, pkcs8 = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    atomic_write(path, key.private_bytes(encoding, pkcs8, serialization.NoEncryption()))


def load_device_key(path: Path) -> ed25519.Ed25519PrivateKey:
    """The device signing key; a corrupt, foreign or world-readable file is an error (never
    regenerated silently: a new key would orphan the audit trail)."""
    return load_private_pem(path, "Ed25519", "device key")


def device_public_key_of(path: Path) -> ed25519.Ed25519PublicKey:
    """The public half of a device key file, without the mode check: only for looking a key
    up by the fingerprint the audit trail names (the fingerprint vouches for it), never to
    sign with or to trust. Errors as `load_device_key`."""
    key = _read_private_pem(path, "Ed25519", "device key")
    assert isinstance(key, ed25519.Ed25519PrivateKey)  # _read_private_pem checked the kind
    return key.public_key()


def device_public_raw(key: ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey) else key
    return public.public_bytes_raw()


_SHOWN_KEY = re.compile(r"device public key:\s*(\S+)")
_SHOWN_FINGERPRINT = re.compile(r"fingerprint:\s*((?:[0-9a-f]{4}\s*){8})")


def parse_device_public_key(text: str, *, where: str = "") -> ed25519.Ed25519PublicKey:
    """A device public key exactly as `bodycamd keys show` prints it (both lines, or on one
    line), or just its base64. A fingerprint given with it must match, which catches a key
    pasted from the wrong device or mangled on the way."""
    shown = _SHOWN_KEY.search(text)
    value = shown.group(1) if shown else text.strip()
    label = where or (value[:20] + "…" if len(value) > 20 else value)
    try:
        raw = base64.b64decode(value, validate=True)
        key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise KeyFileError(
            f"{label}: expected a device public key as `bodycamd keys show` prints it "
            "(device public key: BASE64) or its base64 alone"
        ) from exc
    printed = _SHOWN_FINGERPRINT.search(text)
    if printed and " ".join(printed.group(1).split()) != fingerprint(raw):
        raise KeyFileError(
            f"{label}: fingerprint {printed.group(1).strip()!r} does not match the key "
            f"(its fingerprint is {fingerprint(raw)})"
        )
    return key


def load_device_public_key(text: str) -> ed25519.Ed25519PublicKey:
    """`parse_device_public_key` of `text`, or of the file `text` names."""
    candidate = Path(text)
    if "\n" not in text and len(text) < 4096 and candidate.is_file():
        return parse_device_public_key(candidate.read_text(), where=str(candidate))
    return parse_device_public_key(text)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write so a power cut leaves the old file or the whole new one: temp, fsync, rename,
    fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # a temp file left by a crash keeps its old mode otherwise
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)
    fsync_directory(path.parent)
