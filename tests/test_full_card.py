"""The audit trail can always record why recording stopped (issue #11, item 7), end to end.

A real daemon records onto a real 20 MiB tmpfs (mounted by the test: root can, CI runs as
root) while a client floods `marker` commands with maximum-size notes, until the flash is
full. Then recording stops as storage_full, the journal holds that recording's start AND its
stop with the reason, the markers that got in are within the rate bound (by the journal's own
times) and every one is in the journal, and `bodycamd audit verify` passes. Before the bounds
a flood like this filled a 20 MiB card in about a second and those events were lost. The card
already holds 12 MiB of other data, so the footage (a 4 Mbit/s synthetic camera) fills the
rest in seconds rather than minutes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from bodycamd.cli import main
from bodycamd.markers import BURST, MAX_NOTE_BYTES, REFILL_SECONDS
from tests.conftest import NotifySocket, control_request, skip_unless_ci, write_config
from tests.storage.test_enospc import small_filesystem

pytestmark = skip_unless_ci(os.geteuid() != 0, "mounting a tmpfs needs root")

STORAGE = """[storage]
quota = "100%"
reserve = "2MiB"
low_minutes = 0.1
min_free_minutes = 0.02
assumed_bitrate = 4000000
"""
OTHER_DATA = 12 * 2**20


def events(journal: Path) -> list[tuple[int, str, dict[str, Any]]]:
    """(monotonic ns, kind, fields) of every audit event, in order."""
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT mono_ns, kind, fields FROM audit ORDER BY seq").fetchall()
    return [(mono, kind, json.loads(fields)) for mono, kind, fields in rows]


def test_a_marker_flood_on_a_full_card_leaves_the_stop_in_the_trail(
    tmp_path: Path, notify_socket: NotifySocket, capsys: Any
) -> None:
    config = write_config(tmp_path, STORAGE)
    config.write_text(config.read_text().replace("bitrate = 200000", "bitrate = 4000000"))
    with small_filesystem(tmp_path / "state", "20m") as card:
        with (card / "other-data").open("wb") as other:  # what else the card holds
            other.write(b"\xa5" * OTHER_DATA)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "bodycamd.cli", "run", "--config", str(config)],
            env={**os.environ, "NOTIFY_SOCKET": str(notify_socket.path)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            notify_socket.wait_for("READY")
            control = tmp_path / "run" / "control.sock"
            assert control_request(control, "login", personnel_number="123456")["ok"]
            started = control_request(control, "record_start")
            assert started["ok"], started
            recording = started["result"]["recording_id"]
            answers: dict[str, int] = {}
            status: dict[str, Any] = {}
            for sent in range(1, 1_000_000):  # until the card is full and recording stopped
                answer = control_request(control, "marker", note="n" * MAX_NOTE_BYTES)
                code = "ok" if answer["ok"] else answer["error"]["code"]
                answers[code] = answers.get(code, 0) + 1
                if sent % 25 == 0:
                    status = control_request(control, "status")["result"]["state"]
                    if status["recording"] != "recording":
                        break
            assert "storage_full" in status["health"], status
        finally:
            if daemon.poll() is None:
                daemon.terminate()
            _, err = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, err[-2000:]
        statvfs = os.statvfs(card)
        free = statvfs.f_bavail * statvfs.f_frsize
        timed = events(card / "journal.db")
        capsys.readouterr()
        verified = main(["audit", "verify", "--config", str(config)])
        assert verified == 0, capsys.readouterr().out
    assert free < 3 * 2**20, f"the card was not full: {free} bytes free"
    trail = [(kind, fields) for _, kind, fields in timed]
    starts = [f for kind, f in trail if kind == "recording_start" and f["recording"] == recording]
    stops = [f for kind, f in trail if kind == "recording_stop" and f["recording"] == recording]
    assert len(starts) == 1, trail[-10:]
    assert [stop["reason"] for stop in stops] == ["storage_full"], trail[-10:]
    markers = [e for e in trail if e[0] == "marker"]
    assert len(markers) == answers["ok"] >= 1  # every admitted marker was journalled
    assert answers.get("too_many_markers", 0) > 0, answers
    times = [mono for mono, kind, _ in timed if kind == "marker"]
    assert len(times) <= BURST + (times[-1] - times[0]) / 1e9 / REFILL_SECONDS + 1, answers
