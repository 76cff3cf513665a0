"""The whole daemon SIGKILLed at 30 random moments while recording (issue: storage crash
safety). After each restart every segment is accounted for, torn ones are sealed as torn and
queued, the journal and the audit chain verify, and what was recovered reaches at least the
last checkpoint found on flash at the moment of the kill."""

from __future__ import annotations

import random
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

from bodycamd.evidence.keys import load_or_create_device_key
from bodycamd.evidence.reader import scan_segment
from bodycamd.journal import verify_audit
from tests.conftest import Daemon, NotifySocket, control_request


def test_thirty_kills_while_recording(tmp_path: Path, notify_socket: NotifySocket) -> None:
    rng = random.Random(2026)
    state = tmp_path / "state"
    vouched_at_kill: dict[str, int] = {}
    for _ in range(30):
        daemon = Daemon(tmp_path, notify_socket)
        try:
            device_key = load_or_create_device_key(state / "keys" / "device.key")
            check_accounted(state, device_key.public_key(), vouched_at_kill)
            assert control_request(daemon.socket, "login", personnel_number="123456")["ok"]
            assert control_request(daemon.socket, "record_start")["ok"]
            time.sleep(rng.uniform(0.2, 2.5))  # the power goes at a random moment
        finally:
            daemon.proc.send_signal(signal.SIGKILL)
            daemon.proc.communicate(timeout=30)
        vouched_at_kill = {
            str(part.relative_to(state)): scan_segment(part).vouched_plaintext
            for part in state.glob("spool/*/*.part")
            if part.stat().st_size >= 4096
        }
    final = Daemon(tmp_path, notify_socket)
    try:
        check_accounted(
            state,
            load_or_create_device_key(state / "keys" / "device.key").public_key(),
            vouched_at_kill,
        )
    finally:
        code, err = final.stop()
    assert code == 0, err


def check_accounted(state: Path, device_key: Any, vouched_at_kill: dict[str, int]) -> None:
    """Run against a freshly started daemon (its start-up reconciliation has run)."""
    assert not list(state.glob("spool/*/*.part")), "every torn segment was sealed"
    with sqlite3.connect(f"file:{state / 'journal.db'}?mode=ro", uri=True) as db:
        rows = {
            path: (status, torn)
            for path, status, torn in db.execute("SELECT path, state, torn FROM segments")
        }
        report = verify_audit(db, device_key)
    assert report.ok, report.problems
    on_flash = {str(p.relative_to(state)) for p in state.glob("ready/*/*.seg")}
    assert on_flash == set(rows), "every file has a row and every row a file"
    assert {s for s, _ in rows.values()} <= {"sealed"}
    for part, vouched in vouched_at_kill.items():
        sealed = part.replace("spool/", "ready/").replace(".part", ".seg")
        assert rows[sealed][1], f"{sealed} recovered as torn"
        assert scan_segment(state / sealed, device_key).vouched_plaintext >= vouched
