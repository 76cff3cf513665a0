"""The server process killed mid-PATCH (a crash point in the store's commit, not timing
luck) and started again: the upload resumes at its durable offset and completes."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from bodycamd.receipt import parse_receipt, receipt_key_id

from .helpers import Camera, Rig, encode_metadata

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def server(command: list[str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start a server process; yield it and its URL once it listens."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on " in line, line
        yield process, line.rsplit(" ", 1)[1].strip()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        assert process.stdout is not None
        process.stdout.close()


def crashing(rig: Rig, point: str, threshold: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.ingest.crash_server",
        str(rig.directory),
        point,
        str(threshold),
    ]


def plain(rig: Rig) -> list[str]:
    script = Path(sys.executable).parent / "bodycamd-ingest"
    return [str(script), "serve", "-c", str(rig.directory), "--port", "0"]


def client(rig: Rig, camera: Camera, url: str) -> httpx.Client:
    return httpx.Client(
        base_url=url,
        verify=rig.client_context(camera),
        headers={"Tus-Resumable": "1.0.0"},
        timeout=30,
    )


def patch(http: httpx.Client, location: str, data: bytes, offset: int) -> httpx.Response:
    return http.patch(
        location,
        content=data[offset:],
        headers={"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
    )


@pytest.mark.parametrize(
    ("point", "durable"),
    [("before-commit", "first chunk"), ("after-commit", "everything")],
)
def test_killed_mid_patch_resumes_at_the_durable_offset(rig: Rig, point: str, durable: str) -> None:
    camera = rig.enroll("cam-1")
    sealed = camera.segment(size=600_000)
    data = sealed.path.read_bytes()
    first = 200_000
    with (
        server(crashing(rig, point, first + 1)) as (process, url),
        client(rig, camera, url) as http,
    ):
        created = http.post(
            "/files/",
            headers={
                "Upload-Length": str(len(data)),
                "Upload-Metadata": encode_metadata(camera.metadata(sealed)),
            },
        )
        location = created.headers["Location"]
        assert patch(http, location, data[:first], 0).status_code == 204
        with pytest.raises(httpx.TransportError):
            patch(http, location, data, first)
        assert process.wait(timeout=30) == -signal.SIGKILL
    with server(plain(rig)) as (_, url), client(rig, camera, url) as http:
        location = f"{url}/files/{location.rsplit('/', 1)[1]}"
        head = http.head(location)
        if durable == "first chunk":
            # the bytes of the killed PATCH were written but never acknowledged: not offered
            assert head.status_code == 200
            assert head.headers["Upload-Offset"] == str(first)
            assert patch(http, location, data, first).status_code == 204
        elif head.status_code == 200:
            # acknowledged in the store, answer lost: HEAD finished the upload (receipt first)
            assert head.headers["Upload-Offset"] == str(len(data))
        else:
            # ... or the start-up sweep finished it first; the upload URL is then gone
            assert head.status_code == 404
        answer = http.get(f"/receipts/{hashlib.sha256(data).hexdigest()}")
    assert answer.status_code == 200
    public = rig.receipt_public()
    receipt = parse_receipt(answer.content, {receipt_key_id(public): public})
    assert receipt.size == len(data)
    stored = rig.config.path(rig.config.store_path) / "segments" / "cam-1"
    assert (stored / str(sealed.recording_id) / "000000.seg").read_bytes() == data
