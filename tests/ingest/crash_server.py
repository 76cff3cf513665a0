"""Child process for the crash test: `bodycamd-ingest serve` that kills itself (SIGKILL) at a
chosen point of the filesystem store's commit, the first time an upload reaches a threshold.

    python -m tests.ingest.crash_server CONFIG_DIR before-commit|after-commit THRESHOLD
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from bodycamd.ingest import cli
from bodycamd.ingest.fs_store import FilesystemStore


def main() -> int:
    config, point, threshold = sys.argv[1], sys.argv[2], int(sys.argv[3])
    commit = FilesystemStore._commit

    def crashing_commit(self: FilesystemStore, directory: Path, fd: int, offset: int) -> None:
        if point == "before-commit" and offset >= threshold:
            os.kill(os.getpid(), signal.SIGKILL)  # bytes written, not acknowledged
        commit(self, directory, fd, offset)
        if point == "after-commit" and offset >= threshold:
            os.kill(os.getpid(), signal.SIGKILL)  # acknowledged in the store, never answered

    FilesystemStore._commit = crashing_commit  # type: ignore[method-assign]
    return cli.main(["serve", "-c", config, "--port", "0"])


if __name__ == "__main__":
    sys.exit(main())
