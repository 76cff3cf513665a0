from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import FakeClock, Rig, make_rig
from .s3_moto import (  # noqa: F401 - the S3 store's fixtures
    bucket_options,
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
