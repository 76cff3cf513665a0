"""The S3 store's appends share the node's byte budget ([limits] max_buffered_bytes), as the
filesystem store's do: each gathers a part in memory before UploadPart, so without a
store-wide bound N concurrent PATCHes would hold N parts (and their copies being sent)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from bodycamd.ingest.app import open_store
from bodycamd.ingest.config import load_config
from bodycamd.ingest.s3_objects import S3Options
from bodycamd.ingest.s3_store import S3Store

from .s3_moto import MotoServer, make_s3_rig


async def read_back(store: S3Store, upload: str) -> bytes:
    return b"".join([block async for block in store.read_upload("cam-1", upload)])


async def test_a_second_append_waits_for_budget_instead_of_buffering(
    small_parts: S3Options,
) -> None:
    """A budget for one append's part and copy, not two: while the first append holds its
    share (paused in the middle of its body), the second waits before taking the lease or
    reading a byte of its body; once the first ends, the second runs, and both are whole."""
    part = small_parts.part_size
    store = S3Store(small_parts, buffered_bytes=3 * part)
    assert store.budget.limit < 2 * (2 * part)  # two appends' shares do not fit
    first, second = os.urandom(5 * part // 2), os.urandom(3 * part // 2)
    uploads = [
        (await store.create_upload("cam-1", len(d), {"n": "x"}, time.time() + 3600)).upload_id
        for d in (first, second)
    ]
    events: list[str] = []
    paused, go = asyncio.Event(), asyncio.Event()

    async def first_body() -> AsyncIterator[bytes]:
        yield first[: 3 * part // 2]  # over part_size: uploaded as part 1 before the pause
        events.append("first paused")
        paused.set()
        await go.wait()
        yield first[3 * part // 2 :]
        events.append("first body read")

    async def second_body() -> AsyncIterator[bytes]:
        events.append("second body started")
        yield second

    try:
        one = asyncio.create_task(store.append("cam-1", uploads[0], 0, first_body()))
        await paused.wait()
        assert store.budget.held == 2 * part
        two = asyncio.create_task(store.append("cam-1", uploads[1], 0, second_body()))
        await asyncio.sleep(0)  # one turn of the loop: the second append runs up to its wait
        assert store.budget.waiting == 1
        assert store.budget.held == 2 * part  # the second took nothing
        assert "second body started" not in events
        lease = await store.bucket.head(f"uploads/cam-1/{uploads[1]}.lock")
        assert lease is None  # a wait for budget holds no lease (it could run out meanwhile)
        go.set()
        assert await asyncio.gather(one, two) == [len(first), len(second)]
        assert events == ["first paused", "first body read", "second body started"]
        assert store.budget.held == 0 and store.budget.waiting == 0
        assert await read_back(store, uploads[0]) == first
        assert await read_back(store, uploads[1]) == second
    finally:
        await store.close()


async def test_serve_gives_the_s3_store_the_configured_budget(
    tmp_path: Path, moto: MotoServer, s3_env: dict[str, str]
) -> None:
    rig = make_s3_rig(tmp_path, moto.endpoint, "any-bucket")
    text = (rig.directory / "ingest.toml").read_text()
    text = text.replace("\nmax_buffered_bytes = ", "\nmax_buffered_bytes = 50331648\n# was: ")
    (rig.directory / "ingest.toml").write_text(text)
    store = open_store(load_config(rig.directory))
    try:
        assert isinstance(store, S3Store)
        assert store.budget.limit == 48 << 20
    finally:
        await store.close()
