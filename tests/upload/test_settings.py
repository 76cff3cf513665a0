"""`[upload]` checked in one place (check-config and the daemon), and `bodycamd keys csr`."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from bodycamd.cli import main
from bodycamd.config import parse_config
from bodycamd.errors import ConfigError
from bodycamd.receipt import receipt_key_id
from bodycamd.upload.settings import upload_settings

from ..conftest import write_config
from .peers import Pki


def _config(tmp_path: Path, upload: str) -> Path:
    path = write_config(tmp_path)
    path.write_text(path.read_text() + "[upload]\n" + upload)
    return path


def _receipt_key(tmp_path: Path) -> tuple[ed25519.Ed25519PublicKey, Path]:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    path = tmp_path / "receipt.pub"
    path.write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public, path


def test_complete_section_is_accepted(tmp_path: Path, pki: Pki) -> None:
    public, _pem = _receipt_key(tmp_path)
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    inline = base64.b64encode(other.public_bytes_raw()).decode()
    path = _config(
        tmp_path,
        'endpoint = "https://ingest.example:8443/files"\n'
        f'ca_file = "{pki.ca_file}"\nclient_cert = "{pki.client_cert}"\n'
        f'client_key = "{pki.client_key}"\n'
        f'receipt_keys = "receipt.pub, {inline}"\nchunk_size = "1MiB"\nmax_rate = "2MB"\n',
    )
    upload = upload_settings(parse_config(path.read_bytes(), path))
    assert upload is not None
    assert set(upload.receipt_keys) == {receipt_key_id(public), receipt_key_id(other)}
    assert (upload.chunk_size, upload.max_rate) == (2**20, 2_000_000)
    assert main(["check-config", str(path)]) == 0


def test_no_endpoint_means_no_upload(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    assert upload_settings(parse_config(path.read_bytes(), path)) is None


def test_plain_http_refused_unless_development(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _ = _receipt_key(tmp_path)
    path = _config(
        tmp_path, 'endpoint = "http://127.0.0.1:1080/files"\nreceipt_keys = "receipt.pub"\n'
    )
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "upload.endpoint: http://127.0.0.1:1080/files is plain http" in err
    path.write_text(path.read_text() + "development = true\n")
    assert main(["check-config", str(path)]) == 0


def test_missing_file_is_one_line(
    tmp_path: Path, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    _receipt_key(tmp_path)
    path = _config(
        tmp_path,
        'endpoint = "https://ingest.example/files"\nca_file = "nowhere/ca.pem"\n'
        f'client_cert = "{pki.client_cert}"\nclient_key = "{pki.client_key}"\n'
        'receipt_keys = "receipt.pub"\n',
    )
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"bodycamd: {path}: upload.ca_file: {tmp_path / 'nowhere/ca.pem'} does not exist or "
        "is not a file\n"
    )


def test_a_client_key_others_can_read_is_refused(tmp_path: Path, pki: Pki) -> None:
    """OpenSSL reads the client key, not our loader; it gets the same check all the same."""
    _receipt_key(tmp_path)
    client_key = tmp_path / "client.key"
    client_key.write_bytes(pki.client_key.read_bytes())
    client_key.chmod(0o644)
    path = _config(
        tmp_path,
        'endpoint = "https://ingest.example/files"\n'
        f'ca_file = "{pki.ca_file}"\nclient_cert = "{pki.client_cert}"\n'
        f'client_key = "{client_key}"\nreceipt_keys = "receipt.pub"\n',
    )
    with pytest.raises(ConfigError, match=rf"upload\.client_key: .*: chmod 600 {client_key}$"):
        upload_settings(parse_config(path.read_bytes(), path))
    client_key.chmod(0o600)
    assert upload_settings(parse_config(path.read_bytes(), path)) is not None


@pytest.mark.parametrize(
    ("receipt_keys", "message"),
    [
        ("", "expected at least one receipt public key"),
        ("missing.pub", "missing.pub: No such file or directory"),
        ("c2hvcnQ=", "c2hvcnQ=: No such file"),
    ],
)
def test_receipt_keys_are_checked(
    tmp_path: Path, pki: Pki, receipt_keys: str, message: str
) -> None:
    path = _config(
        tmp_path,
        'endpoint = "https://ingest.example/files"\n'
        f'ca_file = "{pki.ca_file}"\nclient_cert = "{pki.client_cert}"\n'
        f'client_key = "{pki.client_key}"\nreceipt_keys = "{receipt_keys}"\n',
    )
    with pytest.raises(ConfigError, match=message):
        upload_settings(parse_config(path.read_bytes(), path))


def test_keys_csr_makes_a_private_key_that_stays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path)
    assert main(["keys", "csr", "--config", str(path)]) == 0
    out, err = capsys.readouterr()
    key = tmp_path / "state" / "keys" / "tls-client.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "created TLS client key" in err
    csr = x509.load_pem_x509_csr(out.encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "test-cam"
    assert b"PRIVATE" not in out.encode()
    # again: the same key, never replaced
    before = key.read_bytes()
    assert main(["keys", "csr", "--config", str(path), "--out", str(tmp_path / "cam.csr")]) == 0
    assert key.read_bytes() == before
    again = x509.load_pem_x509_csr((tmp_path / "cam.csr").read_bytes())
    assert again.public_key().public_numbers() == csr.public_key().public_numbers()
