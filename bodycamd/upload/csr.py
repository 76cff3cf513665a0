"""The device's TLS client key and its certificate signing request (`bodycamd keys csr`).

The key is ECDSA P-256 (what every TLS stack, node's and Python's included, accepts for a
client certificate), made on the device, kept 0600 in the state directory, and never
printed or exported: only the CSR leaves. Like the signing key it is never silently
replaced: an existing key is reused, so re-running the command re-issues the same request.
Written atomically (temp, fsync, rename, directory fsync): a power cut leaves no key or
the whole key.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..errors import KeyFileError
from ..evidence.keys import load_private_pem, write_private_pem


def load_or_create_tls_key(path: Path) -> tuple[ec.EllipticCurvePrivateKey, bool]:
    """(key, created): the P-256 client key at `path`, made there (0600) if missing; an
    existing key that others can read is refused, as every private key is."""
    if not path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        write_private_pem(path, key)
        return key, True
    return load_private_pem(path, "EC", "TLS client key"), False


def make_csr(key: ec.EllipticCurvePrivateKey, device_name: str) -> bytes:
    """PEM CSR with subject CN = the device name (the ingest's device id)."""
    if not device_name:
        raise KeyFileError("device name is empty; set device.name for the CSR's CN")
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_name)]))
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM)
