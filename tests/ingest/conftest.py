from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bodycamd.ingest.fs_store import FilesystemStore
from bodycamd.ingest.store import IngestStore

from .helpers import FakeClock, Rig, make_rig


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


@pytest.fixture(params=["filesystem"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[IngestStore]:
    """Every store kind runs the same contract tests (test_store.py); the S3 store adds its
    own parameter here."""
    opened: IngestStore = FilesystemStore(tmp_path / "store")
    try:
        yield opened
    finally:
        await opened.close()
