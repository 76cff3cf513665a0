"""A real ingest for the tests: `init` and `enroll` through the CLI, certificate requests made
with cryptography (what `bodycamd keys csr` does on a camera), real segments from bodycamd's
own writer, and TLS clients holding a device's certificate."""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import ssl
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from bodycamd.evidence.keys import EvidencePrivateKey, generate_evidence_key
from bodycamd.evidence.writer import SealedSegment, SegmentInfo, SegmentWriter
from bodycamd.ingest import cli
from bodycamd.ingest.config import IngestConfig, load_config


def make_csr(directory: Path, device_id: str) -> tuple[Path, Path]:
    """A TLS key and certificate request for `device_id`, as the camera makes them."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)]))
        .sign(key, hashes.SHA256())
    )
    key_path = directory / f"{device_id}.tls.key"
    csr_path = directory / f"{device_id}.csr"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return key_path, csr_path


@dataclass
class Camera:
    device_id: str
    signing_key: ed25519.Ed25519PrivateKey
    tls_key: Path
    certificate: Path
    directory: Path
    evidence: EvidencePrivateKey
    recordings: dict[uuid.UUID, list[SealedSegment]] = field(default_factory=dict)

    @property
    def cert_pair(self) -> tuple[str, str]:
        return (str(self.certificate), str(self.tls_key))

    def segment(
        self,
        recording: uuid.UUID | None = None,
        size: int = 200_000,
        *,
        end: bool = True,
        signer: ed25519.Ed25519PrivateKey | None = None,
        device_name: str | None = None,
        checkpoint_bytes: int = 50_000,
    ) -> SealedSegment:
        """Write and seal the next segment of `recording` (a new one by default), with a
        checkpoint every `checkpoint_bytes` (small by default: tests want several)."""
        recording = recording or uuid.uuid4()
        chain = self.recordings.setdefault(recording, [])
        index = len(chain)
        prev = chain[-1].digest if chain else b"\0" * 32
        folder = self.directory / "segments" / str(recording)
        folder.mkdir(parents=True, exist_ok=True)
        writer = SegmentWriter(
            folder / f"{index:06d}.part",
            SegmentInfo(recording, index, prev, device_name or self.device_id),
            self.evidence.public,
            signer or self.signing_key,
        )
        payload = hashlib.sha256(f"{recording}/{index}".encode()).digest() * (size // 32)
        for start in range(0, len(payload), checkpoint_bytes):
            writer.write(payload[start : start + checkpoint_bytes])
            writer.checkpoint()
        sealed = writer.seal(end_of_recording=end)
        chain.append(sealed)
        return sealed

    def metadata(self, sealed: SealedSegment, **override: str) -> dict[str, str]:
        fields = {
            "device": self.device_id,
            "recording": str(sealed.recording_id),
            "index": str(sealed.segment_index),
            "digest": sealed.digest.hex(),
            "torn": "false",
        }
        return {**fields, **override}


@dataclass
class Rig:
    directory: Path
    config: IngestConfig
    evidence: EvidencePrivateKey

    @property
    def ca(self) -> Path:
        return self.config.path(self.config.tls.ca_certificate)

    def receipt_public(self) -> ed25519.Ed25519PublicKey:
        raw = base64.b64decode((self.directory / "receipt.pub").read_text())
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)

    def enroll(self, device_id: str, *, again: bool = False) -> Camera:
        folder = self.directory.parent / "cameras" / device_id / ("again" if again else "")
        folder.mkdir(parents=True)
        tls_key, csr = make_csr(folder, device_id)
        signing = ed25519.Ed25519PrivateKey.generate()
        shown = base64.b64encode(signing.public_key().public_bytes_raw()).decode()
        cert = folder / "client.pem"
        args = ["enroll", "-c", str(self.directory), "--csr", str(csr)]
        args += ["--device-key", f"device public key: {shown}", "--out", str(cert)]
        assert run_cli(args) == 0
        return Camera(device_id, signing, tls_key, cert, folder, self.evidence)

    def client_context(self, camera: Camera | None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        if camera is not None:
            context.load_cert_chain(*camera.cert_pair)
        return context

    def client(self, camera: Camera | None, base_url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=base_url,
            verify=self.client_context(camera),
            headers={"Tus-Resumable": "1.0.0"},
            timeout=30,
        )


def run_cli(args: list[str]) -> int:
    """`bodycamd-ingest ARGS` in this process; in a thread, since it runs its own event loop
    and an async test already has one."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(cli.main, args).result()


def make_rig(tmp_path: Path, **limits: float) -> Rig:
    directory = tmp_path / "ingest"
    hosts = ["--host", "127.0.0.1", "--host", "localhost", "--listen", "127.0.0.1"]
    assert cli.main(["init", str(directory), *hosts]) == 0
    if limits:
        text = (directory / "ingest.toml").read_text()
        for name, value in limits.items():
            text = text.replace(f"\n{name} = ", f"\n{name} = {value!r}\n# was: ", 1)
        (directory / "ingest.toml").write_text(text)
    return Rig(directory, load_config(directory), generate_evidence_key())


def encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items())


class FakeClock:
    """The ingest's clock in tests: time moves only when the test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def audit_events(rig: Rig) -> list[dict[str, object]]:
    """The audit log's entries, decoded (the server writes them before it answers)."""
    import json

    from bodycamd.ingest.app import open_store

    store = open_store(rig.config)  # the rig's own store kind (the S3 suite reuses this)
    try:
        return [json.loads(line) async for line in store.read_audit()]
    finally:
        await store.close()


async def wait_for_event(rig: Rig, event: str, count: int = 1) -> list[dict[str, object]]:
    """The audit entries named `event` once `count` are there: a refused TLS handshake is
    audited by the server after the client has already seen the connection fail."""
    import asyncio

    for _ in range(500):
        found = [e for e in await audit_events(rig) if e["event"] == event]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {event!r} entry in the audit log")
