"""The whole daemon as systemd runs it: a subprocess, a notify socket, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import NotifySocket, write_config


def start(config: Path, notify: NotifySocket, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"}
    return subprocess.Popen(
        [sys.executable, "-m", "bodycamd.cli", *extra, "run", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_start_ready_sigterm_exit_zero(tmp_path: Path, notify_socket: NotifySocket) -> None:
    proc = start(write_config(tmp_path), notify_socket)
    try:
        ready = notify_socket.wait_for("READY")
        assert ready["READY"] == "1"
        assert ", 0 segment(s) awaiting upload" in ready["STATUS"]
        assert "min left" in ready["STATUS"]
        assert "camera: asleep (nobody logged in)" in ready["STATUS"]  # wakes at login
        assert notify_socket.wait_for("WATCHDOG") == {"WATCHDOG": "1"}
        proc.send_signal(signal.SIGTERM)
        stopping = notify_socket.wait_for("STOPPING")
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert stopping["STOPPING"] == "1"
    assert proc.returncode == 0, err
    assert "stopped cleanly" in err
    assert (tmp_path / "state" / "keys" / "device.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "state" / "ballast").stat().st_size == 4 * 2**20  # out of the reserve


def test_component_failure_exits_non_zero_with_one_line(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    (tmp_path / "state").write_text("a file where the state directory should be")
    proc = start(write_config(tmp_path), notify_socket)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last.endswith(
        f"bodycamd.daemon: keys: {tmp_path / 'state'}: exists but is not a directory"
    )
    assert "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path: Path, notify_socket: NotifySocket) -> None:
    (tmp_path / "state").write_text("not a directory")
    proc = start(write_config(tmp_path), notify_socket, "--debug")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "Traceback" in err


def test_corrupt_journal_is_kept_aside_and_segments_adopted(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    """Record one segment, wreck journal.db, restart: the daemon comes up, the old file is
    kept, and the segment is back in the queue of a new journal."""
    import json
    import socket as sock_module
    import time

    proc = start(write_config(tmp_path), notify_socket)
    control = tmp_path / "run" / "control.sock"

    def ask(cmd: str, **args: str) -> dict[str, object]:
        with sock_module.socket(sock_module.AF_UNIX) as s:
            s.connect(str(control))
            s.sendall(json.dumps({"v": 1, "cmd": cmd, "args": args}).encode() + b"\n")
            answer: dict[str, object] = json.loads(s.makefile("rb").readline())
            return answer

    try:
        notify_socket.wait_for("READY")
        assert ask("login", personnel_number="123456")["ok"]
        assert ask("record_start")["ok"]
        deadline = time.monotonic() + 30
        while not list((tmp_path / "state" / "ready").glob("*/*.seg")):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert ask("record_stop")["ok"]
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    segments = sorted((tmp_path / "state" / "ready").glob("*/*.seg"))
    journal = tmp_path / "state" / "journal.db"
    for leftover in journal.parent.glob("journal.db-*"):
        leftover.unlink()
    journal.write_bytes(b"this is not a database" * 100)

    again = start(write_config(tmp_path), notify_socket)
    try:
        ready = notify_socket.wait_for("READY")
        assert f", {len(segments)} segment(s) awaiting upload" in ready["STATUS"]
        again.send_signal(signal.SIGTERM)
        _, err = again.communicate(timeout=30)
    finally:
        again.kill()
    assert again.returncode == 0, err
    assert "moved to" in err and "starting a new journal" in err
    assert list(journal.parent.glob("journal.db.corrupt-*"))
