"""One daemon per state directory: the second refuses in one line naming the first's PID."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bodycamd.errors import StorageError
from bodycamd.instance import StateLock
from tests.conftest import Daemon


def test_second_lock_is_refused_naming_the_holder(tmp_path: Path) -> None:
    first = StateLock(tmp_path)
    first.acquire()
    assert (tmp_path / "lock").stat().st_mode & 0o777 == 0o600
    with pytest.raises(StorageError, match=rf"another bodycamd \(PID {os.getpid()}\)"):
        StateLock(tmp_path).acquire()
    first.release()
    second = StateLock(tmp_path)
    second.acquire()  # released: free again
    second.release()


def test_a_second_daemon_on_the_same_state_directory_refuses(daemon: Daemon) -> None:
    part_files_before = sorted(daemon.state_dir.rglob("*.part"))
    second = subprocess.run(
        [sys.executable, "-m", "bodycamd.cli", "run", "--config", str(daemon.config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    # the log (debug level in the test config) then the one line of the failure
    errors = [line for line in second.stderr.splitlines() if "another bodycamd" in line]
    assert len(errors) == 1 and f"another bodycamd (PID {daemon.proc.pid})" in errors[0]
    assert "Traceback" not in second.stderr
    assert sorted(daemon.state_dir.rglob("*.part")) == part_files_before
    assert daemon.proc.poll() is None  # the first one is untouched
