"""The demo's processes: each started with its own log file, all stopped on the way out.

Why a class of its own: `make demo` starts an ingest server and a camera daemon; a failure
or a Ctrl-C anywhere must stop both (SIGTERM, then SIGKILL after a grace period) and name the
log to read, in one line. Nothing here outlives the `with` block.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from ..errors import BodycamError

GRACE_SECONDS = 15.0


class DemoFailed(BodycamError, RuntimeError):
    """A demo step failed; the message is one line, naming the log to read."""


class Processes:
    def __init__(self, logs: Path) -> None:
        self._logs = logs
        self._running: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    def log_of(self, name: str) -> Path:
        return self._logs / f"{name}.log"

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        log = self.log_of(name)
        with log.open("ab") as out:
            process = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, not them
            )
        self._running.append((name, process, log))

    def wait_until(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        """Poll `ready()` until it holds; fail in one line if the process dies first."""
        deadline = time.monotonic() + timeout
        process, log = self._find(name)
        while not ready():
            if process.poll() is not None:
                raise DemoFailed(f"{name} exited with status {process.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise DemoFailed(f"{name} not ready after {timeout:.0f} s; see {log}")
            time.sleep(0.1)

    def check_alive(self) -> None:
        for name, process, log in self._running:
            if process.poll() is not None:
                raise DemoFailed(f"{name} exited with status {process.returncode}; see {log}")

    def stop(self, name: str) -> int:
        process, _ = self._find(name)
        code = _terminate(process)
        self._running = [r for r in self._running if r[1] is not process]
        return code

    def stop_all(self) -> None:
        for _, process, _ in reversed(self._running):
            _terminate(process)
        self._running.clear()

    def _find(self, name: str) -> tuple[subprocess.Popen[bytes], Path]:
        for candidate, process, log in self._running:
            if candidate == name:
                return process, log
        raise DemoFailed(f"{name} is not running")


def run_tool(argv: Sequence[str], log: Path, what: str) -> str:
    """Run a command to completion; its output goes to `log` and is returned."""
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    with log.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or [""]
        raise DemoFailed(f"{what} failed ({last[0]}); see {log}")
    return result.stdout


def _terminate(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            print(f"demo: pid {process.pid} ignored SIGTERM; killed", file=sys.stderr)
    return process.wait()
