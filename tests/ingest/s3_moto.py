"""moto's standalone S3 server as a real HTTP endpoint for the S3 store's tests.

One server per test session (started as a subprocess on 127.0.0.1, plain HTTP, a free port),
one fresh bucket per test. Nothing is patched in-process: the store talks to moto through
aiobotocore exactly as it would to MinIO or AWS.

`bucket_options` keeps S3's real 5 MiB minimum part size. `small_parts` is a second server
whose minimum is 320 KiB (moto's S3_UPLOAD_PART_MIN_SIZE) with a store configured to match
(`min_part_size`, the option for S3-compatible services with another minimum): the same
state machine with 16 times less data, for the tests that walk many crash points.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiobotocore.session import get_session

from bodycamd.ingest.config import load_config
from bodycamd.ingest.s3_objects import S3Options

from .helpers import Rig, make_rig

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bodycamd-test",
    "AWS_SECRET_ACCESS_KEY": "bodycamd-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@dataclass(frozen=True)
class MotoServer:
    endpoint: str
    process: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


SMALL_PART = 320 << 10

# moto's own server (`python -m moto.server`), but with werkzeug serving one request at a
# time: moto checks If-None-Match / If-Match and then writes, so its threaded server lets two
# concurrent conditional PUTs of one key both succeed (seen here: 11 winners in 10 rounds of
# 20), where S3 lets exactly one. One request at a time makes moto's conditional writes
# atomic, as they are on AWS, MinIO and Ceph RGW (HTTP/1.0: one connection per request).
SERVE_ONE_AT_A_TIME = """
import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app,
)
run_simple("127.0.0.1", int(sys.argv[1]), DomainDispatcherApplication(create_backend_app),
           threaded=False, request_handler=MotoRequestHandler)
"""


@contextlib.contextmanager
def moto_server(min_part_size: int = 5 << 20) -> Iterator[MotoServer]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_ONE_AT_A_TIME, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "S3_UPLOAD_PART_MIN_SIZE": str(min_part_size)},
    )
    try:
        for _ in range(300):  # readiness, not timing: until it accepts connections
            if process.poll() is not None:
                raise AssertionError(f"moto server exited with {process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("moto server did not start")
        yield MotoServer(f"http://127.0.0.1:{port}", process)
    finally:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


@pytest.fixture(scope="session")
def moto_small_parts() -> Iterator[MotoServer]:
    with moto_server(SMALL_PART) as server:
        yield server


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return CREDENTIALS


async def make_bucket(endpoint: str) -> str:
    name = f"ingest-{uuid.uuid4().hex[:12]}"
    async with get_session().create_client("s3", endpoint_url=endpoint) as client:
        await client.create_bucket(Bucket=name)
    return name


@pytest.fixture
async def bucket_options(moto: MotoServer, s3_env: dict[str, str]) -> AsyncIterator[S3Options]:
    """A fresh, empty bucket on the module's moto server."""
    yield S3Options(bucket=await make_bucket(moto.endpoint), endpoint_url=moto.endpoint)


@pytest.fixture
async def small_parts(
    moto_small_parts: MotoServer, s3_env: dict[str, str]
) -> AsyncIterator[S3Options]:
    """A fresh bucket on a server whose minimum part size is 320 KiB, and a store to match."""
    endpoint = moto_small_parts.endpoint
    yield S3Options(
        bucket=await make_bucket(endpoint),
        endpoint_url=endpoint,
        min_part_size=SMALL_PART,
        part_size=SMALL_PART * 8 // 5,
    )


def make_s3_rig(tmp_path: Path, endpoint: str, bucket: str, **store: float | str) -> Rig:
    """`make_rig`, with its ingest.toml's [store] pointing at `bucket` on `endpoint`."""
    rig = make_rig(tmp_path)
    path = rig.directory / "ingest.toml"
    lines = ['kind = "s3"', f'bucket = "{bucket}"', f'endpoint_url = "{endpoint}"']
    lines += [f"{name} = {value!r}" for name, value in store.items()]
    text, count = re.subn(
        r"\[store\]\n(?:[^\[\n].*\n)*", "[store]\n" + "\n".join(lines) + "\n\n", path.read_text()
    )
    assert count == 1
    path.write_text(text.replace("'", '"'))
    return Rig(rig.directory, load_config(rig.directory), rig.evidence)
