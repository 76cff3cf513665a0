"""The daemon SIGKILLed 20 times at random moments of an upload to the project's ingest.

Afterwards every segment is either still on flash or deleted with a valid receipt for its
exact bytes in the journal; none is deleted without one; and the ingest never created an
upload for a digest after it had issued that digest's receipt (receipt first: no upload
twice). The kill moments are random (seeded, printed on failure); the assertions are about
the end state only, never about timing."""

from __future__ import annotations

import asyncio
import json
import random
import signal
from pathlib import Path

import pytest

from bodycamd.ingest.app import running_ingest
from bodycamd.receipt import check_covers, parse_receipt, receipt_key_id

from ..conftest import NotifySocket
from ..test_control import request
from .test_daemon_upload import (
    _daemon,
    _journal,
    _until,
    add_upload_section,
    enrolled_config,
    record_footage,
)

KILLS = 20


@pytest.mark.timeout(420)
async def test_twenty_sigkills_during_upload(tmp_path: Path, notify_socket: NotifySocket) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    ingest, config = enrolled_config(tmp_path)
    state, sock = tmp_path / "state", tmp_path / "run" / "control.sock"
    public = ingest.receipt_public()
    async with running_ingest(ingest.config, port=0) as server:
        # slow and small chunks, so that a kill lands mid-upload more often than not
        add_upload_section(
            config, ingest, server.url, 'max_rate = "60KB"\n[gpio]\ndock_stable_seconds = 0.1\n'
        )
        await asyncio.to_thread(_record, config, notify_socket, sock)
        for kill in range(KILLS + 1):
            proc = _daemon(config, notify_socket)
            try:
                await asyncio.to_thread(notify_socket.wait_for, "READY")
                await asyncio.to_thread(request, sock, "sim", action="dock")
                if kill == KILLS:  # the last run goes to the end
                    await asyncio.to_thread(_until_settled, state)
                    break
                await asyncio.sleep(rng.uniform(0.0, 1.2))  # a random moment to cut the power
            finally:
                proc.send_signal(signal.SIGTERM if kill == KILLS else signal.SIGKILL)
                await asyncio.to_thread(proc.communicate, timeout=60)
        events = [json.loads(line) async for line in server.context.store.read_audit()]
    rows = _journal(state, "SELECT state, receipt, digest, size, path FROM segments")
    assert rows, f"seed {seed}"
    trusted = {receipt_key_id(public): public}
    for row_state, receipt, digest, size, path in rows:
        if row_state == "deleted":
            assert receipt, f"seed {seed}: {path} deleted without a receipt"
            parsed = parse_receipt(receipt.encode(), trusted)
            check_covers(parsed, digest=digest, size=size, device_id="test-cam")
            assert not (state / path).exists()
        else:
            assert (state / path).exists(), f"seed {seed}: {path} is neither here nor receipted"
    assert all(s == "deleted" for s, *_ in rows), f"seed {seed}: the last run did not finish"
    assert {e["fields"]["digest"] for e in events if e["event"] == "receipt.issued"} == {
        digest for _, _, digest, _, _ in rows
    }
    issued: set[str] = set()
    for event in events:
        if event["event"] == "receipt.issued":
            issued.add(event["fields"]["digest"])
        elif event["event"] == "upload.created":
            again = event["fields"]["digest"] in issued
            assert not again, f"seed {seed}: uploaded again after its receipt"


def _record(config: Path, notify: NotifySocket, sock: Path) -> None:
    """A first, undisturbed run records about 4.5 s of footage (two segments or more)."""
    proc = _daemon(config, notify)
    try:
        notify.wait_for("READY")
        record_footage(sock)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def _until_settled(state: Path) -> None:
    _until(
        lambda: all(s == "deleted" for (s,) in _journal(state, "SELECT state FROM segments")),
        "every segment confirmed by a receipt",
        limit=180,
    )
