from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bodycamd.ingest.fs_store import FilesystemStore
from bodycamd.ingest.s3_objects import S3Options
from bodycamd.ingest.s3_store import S3Store
from bodycamd.ingest.store import IngestStore

from .helpers import FakeClock, Rig, make_rig
from .s3_moto import (  # noqa: F401 - the S3 store's fixtures
    bucket_options,
    make_bucket,
    moto,
    moto_small_parts,
    s3_env,
    small_parts,
)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return make_rig(tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def trust_ingest_ca(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """tuspy verifies the server with requests' default CA bundle: point it at the ingest's."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(rig.ca))


@pytest.fixture(params=["filesystem", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[IngestStore]:
    """Every store kind runs the same contract tests (test_store.py): the filesystem store,
    and the S3 store on a fresh bucket of moto's S3 server (S3's real 5 MiB part minimum)."""
    opened: IngestStore
    if request.param == "s3":
        endpoint = request.getfixturevalue("moto").endpoint
        request.getfixturevalue("s3_env")
        opened = S3Store(S3Options(bucket=await make_bucket(endpoint), endpoint_url=endpoint))
    else:
        opened = FilesystemStore(tmp_path / "store")
    try:
        yield opened
    finally:
        await opened.close()
