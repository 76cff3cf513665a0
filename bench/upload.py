"""Upload throughput on loopback TLS against the project's ingest, as a ratio to `curl`
sending the same number of bytes to the same server in the same run (DESIGN.md §10 holds
us to at least 0.9 times curl), and the uploader's own CPU seconds per GB.

The ingest runs as its own process (`bodycamd-ingest serve`), so the CPU time measured in
this process is the client's alone. Both clients send a real sealed segment of the same
size (different segments: the ingest keeps one upload per digest) with mutual TLS, and both
send `Upload-Checksum` (the camera does whenever a server offers it), so server and client do
the same work for both: curl's digest is computed on its clock, as the camera's are.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench import CAMERA_CHECKPOINT_BYTES
from bodycamd.config import UploadConfig
from bodycamd.config.fields import parse_size

MIB = 1 << 20
SIZE = 96 * MIB
CHUNK = parse_size(UploadConfig().chunk_size, 0)  # the camera's default
_PYTHON_INGEST = [sys.executable, "-m", "bodycamd.ingest.cli"]


def main() -> float | None:
    """The ratio to curl (None without curl)."""
    if shutil.which("curl") is None:
        print("upload: curl is not installed; skipped")
        return None
    from tests.ingest.helpers import make_rig

    with tempfile.TemporaryDirectory(prefix="bodycamd-bench-upload-") as tmp:
        root = Path(tmp)
        ingest = make_rig(root)
        camera = ingest.enroll("bench-cam")
        ours, theirs = (
            camera.segment(uuid.uuid4(), size=SIZE, checkpoint_bytes=CAMERA_CHECKPOINT_BYTES)
            for _ in range(2)
        )
        server = subprocess.Popen(
            [*_PYTHON_INGEST, "serve", "-c", str(ingest.directory), "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            url = re.search(r"https://\S+", server.stdout.readline())
            assert url is not None, "the ingest did not say where it listens"
            base = url.group(0)
            rate, cpu = asyncio.run(_ours(base, ingest, camera, ours))
            curl_rate = _curl(base, ingest, camera, theirs)
        finally:
            server.terminate()
            server.wait(30)
    print(f"upload, bodycamd ({CHUNK // MIB} MiB PATCHes) {rate / MIB:9.0f} MiB/s")
    print(f"upload, curl (one PATCH, checksum) {curl_rate / MIB:9.0f} MiB/s")
    print(f"upload vs curl                    {rate / curl_rate:9.2f}x (target >= 0.9x)")
    print(f"uploader CPU per GB               {cpu / (SIZE / 1e9):9.2f} s")
    return rate / curl_rate


async def _ours(base: str, ingest, camera, sealed) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    from bodycamd.upload.transport import make_http_client
    from bodycamd.upload.tus import TusClient, make_ssl_context
    from bodycamd.upload.worker import SEGMENT_MEDIA_TYPE

    context = make_ssl_context(ingest.ca, camera.certificate, camera.tls_key)
    async with make_http_client(context) as http:
        tus = TusClient(http, f"{base}/files/", chunk_size=CHUNK)
        info = await tus.options()
        metadata = {**camera.metadata(sealed), "filetype": SEGMENT_MEDIA_TYPE}
        url = await tus.create(sealed.path.stat().st_size, metadata)
        size = sealed.path.stat().st_size
        start, cpu = time.perf_counter(), time.process_time()
        offset = 0
        while offset < size:
            offset = await tus.patch(url, sealed.path, offset, size, sha256=info.sha256)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return size / elapsed, cpu


def _curl(base: str, ingest, camera, sealed) -> float:  # type: ignore[no-untyped-def]
    from bodycamd.upload.tus import encode_metadata

    tls = ["--cacert", str(ingest.ca), "--cert", str(camera.certificate)]
    tls += ["--key", str(camera.tls_key), "-sS", "--http1.1"]
    size = sealed.path.stat().st_size
    created = subprocess.run(
        [
            *("curl", *tls, "-X", "POST", "-D", "-", "-o", "/dev/null", f"{base}/files/"),
            *("-H", "Tus-Resumable: 1.0.0", "-H", f"Upload-Length: {size}"),
            *("-H", f"Upload-Metadata: {encode_metadata(camera.metadata(sealed))}"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    location = re.search(r"(?im)^location:\s*(\S+)", created)
    assert location is not None, created
    target = location.group(1)
    if target.startswith("/"):
        target = base + target
    # The same work for both clients: the camera sends Upload-Checksum whenever a server
    # offers the extension (docs/upload.md), so curl sends one too, and its digest is
    # computed on the clock (by the same OpenSSL SHA-256), as the camera's are.
    start = time.perf_counter()
    checksum = base64.b64encode(_file_sha256(sealed.path)).decode()
    subprocess.run(
        [
            *("curl", *tls, "-X", "PATCH", "--data-binary", f"@{sealed.path}", target),
            *("-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0"),
            *("-H", f"Upload-Checksum: sha256 {checksum}"),
            *("-H", "Content-Type: application/offset+octet-stream", "-o", "/dev/null"),
        ],
        check=True,
    )
    return size / (time.perf_counter() - start)


def _file_sha256(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as data:
        while block := data.read(1 << 20):
            digest.update(block)
    return digest.digest()


if __name__ == "__main__":
    main()
