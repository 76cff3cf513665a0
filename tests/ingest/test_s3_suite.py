"""The ingest's tus conformance and mTLS suites again, with the S3 store behind the server.

The test functions are the filesystem store's own (imported unchanged); only the `rig`
fixture differs: its ingest.toml says kind = "s3", on a fresh bucket of moto's S3 server.
So 460, expiry, termination, the registry, revocation, isolation and the audit log are all
checked against objects in a bucket. Left out: the three conformance tests that look into the
filesystem store's directories; test_s3_fleet.py covers receipts, stored bytes and resume
on S3 through two real server processes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import Rig
from .s3_moto import MotoServer, make_bucket, make_s3_rig
from .test_mtls import *  # noqa: F403
from .test_tus_conformance import (  # noqa: F401 - collected here again
    test_checksum_mismatch_is_460_and_the_chunk_is_discarded,
    test_head_after_expiry_says_gone_before_the_sweep,
    test_termination,
)

pytestmark = pytest.mark.usefixtures("trust_ingest_ca")


@pytest.fixture
async def rig(tmp_path: Path, moto: MotoServer, s3_env: dict[str, str]) -> Rig:
    return make_s3_rig(tmp_path, moto.endpoint, await make_bucket(moto.endpoint))
