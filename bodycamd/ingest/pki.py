"""The ingest's PKI: its device CA, TLS server certificate, receipt key, and enrolment.

One CA issues both the server certificate (extended key usage serverAuth, the names given to
`init`) and every device's client certificate (clientAuth, subject CN = device id). A camera
pins this CA; the server requires a client certificate from it (TLS 1.3 only). A device's
certificate is accepted only while the registry names its serial for that device and the
device is not revoked, so re-enrolling a device retires its old certificate at once.

Private keys are written 0600 atomically (temp, fsync, rename, fsync directory) and read back
through evidence/keys.py's helpers, which refuse one that others can read: a power cut
leaves no key or a whole key. `init` refuses to overwrite anything.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import KeyFileError
from ..evidence.keys import atomic_write, check_private_mode, load_private_pem, write_private_pem
from ..receipt import receipt_key_id
from .config import CONFIG_NAME, IngestConfig, render_config
from .errors import EnrolmentError
from .store import DEVICE_ID

CA_YEARS = 20
SERVER_DAYS = 825
DEVICE_YEARS = 5
_MAX_CSR_BYTES = 16 * 1024


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _builder(subject: x509.Name, issuer: x509.Name, days: int) -> x509.CertificateBuilder:
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def _host_names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


@dataclass(frozen=True)
class Initialised:
    config: Path
    ca_certificate: Path
    receipt_public: str  # base64 of the raw Ed25519 public key, for the cameras' config
    receipt_key_id: str


def init_ingest(directory: Path, hosts: list[str], port: int, listen: str) -> Initialised:
    """Create the CA, server certificate, receipt key and ingest.toml in `directory`."""
    if not hosts:
        raise EnrolmentError("init: give at least one --host name or address for the server")
    targets = ["ca.pem", "ca.key", "server.pem", "server.key", "receipt.key", CONFIG_NAME]
    for name in targets:
        if (directory / name).exists():
            raise KeyFileError(f"{directory / name}: already exists; refusing to overwrite")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bodycamd ingest device CA")])
    ca_cert = (
        _builder(ca_name, ca_name, 365 * CA_YEARS)
        .public_key(ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    server_cert = (
        _builder(server_name, ca_name, SERVER_DAYS)
        .public_key(server_key.public_key())
        .add_extension(x509.SubjectAlternativeName(_host_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    receipt_key = ed25519.Ed25519PrivateKey.generate()
    pem = serialization.Encoding.PEM
    write_private_pem(directory / "ca.key", ca_key)
    write_private_pem(directory / "server.key", server_key)
    write_private_pem(directory / "receipt.key", receipt_key)
    atomic_write(directory / "ca.pem", ca_cert.public_bytes(pem), 0o644)
    atomic_write(directory / "server.pem", server_cert.public_bytes(pem), 0o644)
    public = receipt_key.public_key()
    public_text = base64.b64encode(public.public_bytes_raw()).decode()
    atomic_write(directory / "receipt.pub", f"{public_text}\n".encode(), 0o644)
    atomic_write(directory / CONFIG_NAME, render_config(hosts, port, listen).encode(), 0o644)
    return Initialised(
        directory / CONFIG_NAME, directory / "ca.pem", public_text, receipt_key_id(public)
    )


def load_receipt_key(path: Path) -> ed25519.Ed25519PrivateKey:
    return load_private_pem(path, "Ed25519", "receipt key")


def load_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read certificate: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise KeyFileError(f"{path}: not a PEM certificate ({exc})") from exc


def subject_cn(name: x509.Name, what: str) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(values) != 1 or not isinstance(values[0].value, str):
        raise EnrolmentError(f"{what}: expected exactly one subject CN (the device id)")
    return values[0].value


def issue_device_certificate(
    config: IngestConfig, csr_pem: bytes, expected_device: str | None
) -> tuple[str, x509.Certificate]:
    """Check a camera's certificate request and sign its client certificate."""
    if len(csr_pem) > _MAX_CSR_BYTES:
        raise EnrolmentError(f"certificate request is {len(csr_pem)} bytes; at most 16 KiB")
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise EnrolmentError(f"not a PEM certificate request ({exc})") from exc
    if not csr.is_signature_valid:
        raise EnrolmentError("certificate request's signature is bad (altered or mangled)")
    device_id = subject_cn(csr.subject, "certificate request")
    if not DEVICE_ID.fullmatch(device_id):
        raise EnrolmentError(
            f"certificate request names device {device_id!r}; expected 1-64 letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )
    if expected_device is not None and device_id != expected_device:
        raise EnrolmentError(
            f"certificate request is for device {device_id!r}; expected {expected_device!r}"
        )
    ca_cert = load_certificate(config.path(config.tls.ca_certificate))
    ca_key = load_private_pem(config.path(config.tls.ca_key), "EC", "CA key")
    public = csr.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise EnrolmentError("certificate request's key: expected an EC or Ed25519 key")
    cert = (
        _builder(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)]),
            ca_cert.subject,
            365 * DEVICE_YEARS,
        )
        .public_key(public)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return device_id, cert


def check_issued_by(cert: x509.Certificate, ca: x509.Certificate) -> None:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise EnrolmentError("certificate was not issued by this ingest's CA") from exc


def serial_hex(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "x")


def server_ssl_context(config: IngestConfig) -> ssl.SSLContext:
    """HTTPS only, TLS 1.3 only, a client certificate from the ingest's CA required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.verify_mode = ssl.CERT_REQUIRED
    check_private_mode(config.path(config.tls.server_key))  # OpenSSL reads it, not us
    try:
        context.load_verify_locations(cafile=config.path(config.tls.ca_certificate))
        context.load_cert_chain(
            config.path(config.tls.server_certificate), config.path(config.tls.server_key)
        )
    except (OSError, ssl.SSLError) as exc:
        raise KeyFileError(f"{config.directory}: TLS files unusable ({exc})") from exc
    return context


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> x509.Certificate | None:
    """The verified client certificate of a TLS connection (None without one)."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der) if der else None


def new_token() -> str:
    return secrets.token_urlsafe(18)
