from __future__ import annotations

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
