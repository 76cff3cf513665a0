from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from .peers import Pki
from .rig import ReceiptSigner


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def signer() -> ReceiptSigner:
    return ReceiptSigner()


@pytest.fixture
def segments(tmp_path: Path) -> Path:
    return tmp_path / "ready"


@pytest.fixture(autouse=True)
def _collect_after() -> Iterator[None]:
    """A socket a test leaves open is found by the garbage collector at an arbitrary later
    moment, as a ResourceWarning that fails whichever test runs then: collect after every
    test, so a leak fails the test that made it."""
    yield
    gc.collect()
