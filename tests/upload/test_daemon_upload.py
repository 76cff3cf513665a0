"""The field tester's shift, end to end: `bodycamd run` (a subprocess, simulated hardware)
configured for the project's ingest (in this process, mutual TLS), enrolled with the CSR
that `bodycamd keys csr` prints; record, stop, `sim dock`, and the segments leave the flash
against receipts, with every step in the device's audit trail."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bodycamd.ingest.app import running_ingest

from ..conftest import NotifySocket, write_config
from ..ingest.helpers import Rig, make_rig, run_cli
from ..test_control import request


def _cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bodycamd.cli", *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def _daemon(config: Path, notify: NotifySocket) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bodycamd.cli", "run", "--config", str(config)],
        env={**os.environ, "NOTIFY_SOCKET": str(notify.path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _journal(state: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{state / 'journal.db'}?mode=ro", uri=True) as db:
        return list(db.execute(sql))


def _until(predicate: Any, what: str, limit: float = 90) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def enrolled_config(tmp_path: Path) -> tuple[Rig, Path]:
    """A daemon config (simulated hardware) whose device key and `keys csr` request are
    enrolled at a fresh ingest; the [upload] section is added once the ingest listens."""
    ingest = make_rig(tmp_path)
    config = write_config(tmp_path)
    shown = _cli("keys", "show", "--config", str(config)).splitlines()[0]
    csr = tmp_path / "cam.csr"
    _cli("keys", "csr", "--config", str(config), "--out", str(csr))
    enrol = ["enroll", "-c", str(ingest.directory), "--csr", str(csr), "--device-key", shown]
    assert run_cli([*enrol, "--out", str(tmp_path / "client.pem")]) == 0
    return ingest, config


def add_upload_section(config: Path, ingest: Rig, url: str, extra: str = "") -> None:
    config.write_text(
        config.read_text()
        + "[upload]\n"
        + f'endpoint = "{url}/files/"\nreceipts_url = "{url}/receipts"\n'
        + f'ca_file = "{ingest.ca}"\nclient_cert = "{config.parent / "client.pem"}"\n'
        + f'receipt_keys = "{ingest.directory / "receipt.pub"}"\nchunk_size = "256KiB"\n'
        + extra
    )


async def test_shift_record_dock_upload_receipts(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    ingest, config = enrolled_config(tmp_path)
    state, sock = tmp_path / "state", tmp_path / "run" / "control.sock"
    async with running_ingest(ingest.config, port=0) as server:
        add_upload_section(config, ingest, server.url)
        assert "OK" in _cli("check-config", str(config))
        proc = _daemon(config, notify_socket)
        try:
            await asyncio.to_thread(notify_socket.wait_for, "READY")
            await asyncio.to_thread(_shift, sock, state)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 0, err
    rows = _journal(state, "SELECT state, receipt FROM segments")
    assert len(rows) >= 2 and all(s == "deleted" and r for s, r in rows)
    assert not list((state / "ready").glob("*/*.seg"))
    kinds = [k for (k,) in _journal(state, "SELECT kind FROM audit")]
    for kind in ("dock", "clock_offset", "upload_started", "upload_receipt", "segment_deleted"):
        assert kind in kinds, kind
    assert kinds.count("segment_deleted") == len(rows)
    _cli("audit", "verify", "--config", str(config))  # the trail's chain and signatures


def record_footage(sock: Path, seconds: float = 4.5) -> None:
    """Log in, record `seconds` of footage by the daemon's own count, stop (two segments
    or more at the tests' 2 s segments)."""
    assert request(sock, "login", personnel_number="123456")["ok"]
    assert request(sock, "record_start")["ok"]
    _until(
        lambda: request(sock, "status")["result"]["state"]["recording_seconds"] >= seconds,
        "footage",
    )
    assert request(sock, "record_stop")["ok"]


def _shift(sock: Path, state: Path) -> None:
    record_footage(sock)
    assert request(sock, "sim", action="dock")["ok"]
    _until(lambda: request(sock, "status")["result"]["state"]["docked"], "docked")
    _until(
        lambda: all(s == "deleted" for (s,) in _journal(state, "SELECT state FROM segments")),
        "every segment confirmed by a receipt",
    )
    uploads = request(sock, "uploads")["result"]
    assert uploads["queue"] == [] and uploads["upload"]["receipts"] >= 2
    assert json.dumps(uploads["upload"])  # the progress is plain JSON for bodycamctl
