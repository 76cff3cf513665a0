"""One daemon per state directory.

Two daemons on one state directory would recover each other's open segments as torn while
they are being written, and interleave two audit chains. So the first takes an advisory lock
(flock on `<state>/lock`) and holds it for its whole life; the kernel drops it when the
process dies, however it dies, so a crash never leaves a stale lock behind. The holder writes
its PID into the file so the second can say who holds it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from .errors import StorageError

LOCK_NAME = "lock"


class StateLock:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise StorageError naming the PID that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise StorageError(f"{self.path}: cannot lock: {exc.strerror}") from exc
            raise StorageError(
                f"{self.path.parent}: another bodycamd (PID {holder}) is using this state "
                "directory; refusing to start a second one"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing drops the flock
