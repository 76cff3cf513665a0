"""Every PEM private key bodycamd and its ingest read (device key, TLS client key, the
ingest's receipt and CA keys) goes through one loader: each refuses a key others can read
with the chmod that fixes it, and names the file and the key it expected."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from bodycamd.errors import KeyFileError
from bodycamd.evidence.keys import load_device_key, write_private_pem
from bodycamd.ingest.pki import load_receipt_key
from bodycamd.upload.csr import load_or_create_tls_key


def _ec() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True)
class KeyFile:
    """One of the places that reads a private key: how it loads, what it expects."""

    load: Callable[[Path], Any]
    make: Callable[[], Any]
    what: str
    other: Callable[[], Any]  # a key of the wrong kind


KEY_FILES = {
    "device": KeyFile(
        load_device_key, ed25519.Ed25519PrivateKey.generate, "Ed25519 device key", _ec
    ),
    "tls-client": KeyFile(
        lambda path: load_or_create_tls_key(path)[0],
        _ec,
        "EC TLS client key",
        ed25519.Ed25519PrivateKey.generate,
    ),
    "receipt": KeyFile(
        load_receipt_key, ed25519.Ed25519PrivateKey.generate, "Ed25519 receipt key", _ec
    ),
}


@pytest.fixture(params=list(KEY_FILES))
def key_file(request: pytest.FixtureRequest) -> KeyFile:
    return KEY_FILES[request.param]


def _public(key: Any) -> bytes:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return bytes(key.public_key().public_bytes(serialization.Encoding.DER, spki))


def test_a_key_written_0600_loads(tmp_path: Path, key_file: KeyFile) -> None:
    key, path = key_file.make(), tmp_path / "private.key"
    write_private_pem(path, key)
    assert path.stat().st_mode & 0o777 == 0o600
    assert _public(key_file.load(path)) == _public(key)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o602])
def test_a_key_others_can_read_or_write_is_refused_with_the_fix(
    tmp_path: Path, key_file: KeyFile, mode: int
) -> None:
    path = tmp_path / "private.key"
    write_private_pem(path, key_file.make())
    path.chmod(mode)
    with pytest.raises(KeyFileError, match=rf"mode {mode:04o}\); .*: chmod 600 {path}$"):
        key_file.load(path)


def test_the_wrong_kind_of_key_is_named(tmp_path: Path, key_file: KeyFile) -> None:
    path = tmp_path / "private.key"
    write_private_pem(path, key_file.other())
    expected = rf"^{path}: expected the {key_file.what}, got \w+PrivateKey"
    with pytest.raises(KeyFileError, match=expected):
        key_file.load(path)


def test_not_pem_and_encrypted_pem_are_named(tmp_path: Path, key_file: KeyFile) -> None:
    path = tmp_path / "private.key"
    path.write_bytes(b"not a key\n")
    path.chmod(0o600)
    expected = rf"^{path}: expected the {key_file.what} as unencrypted PEM"
    with pytest.raises(KeyFileError, match=expected):
        key_file.load(path)
    encrypted = serialization.BestAvailableEncryption(b"passphrase")
    pkcs8 = serialization.PrivateFormat.PKCS8
    path.write_bytes(key_file.make().private_bytes(serialization.Encoding.PEM, pkcs8, encrypted))
    with pytest.raises(KeyFileError, match=expected):  # not a TypeError from cryptography
        key_file.load(path)
