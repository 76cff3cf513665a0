"""Child process for the roll crash test: records a two-segment recording with the writer and
SIGKILLs itself at one chosen fsync of the roll between them (before the call when the point
is even, after it when odd). os.fsync is patched, which reaches the directory fsyncs, and the
same function is given to the writers for their file fsyncs, so every fsync of the roll counts."""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from bodycamd.evidence.keys import load_evidence_public_key, load_or_create_device_key
from bodycamd.evidence.writer import SegmentInfo, SegmentWriter


def crash_at(point: int) -> Callable[[], None]:
    """Patch os.fsync; return a function that arms the crash point (at the roll)."""
    real = os.fsync
    calls = [-1]  # -1: not armed yet

    def fsync(fd: int) -> None:
        if calls[0] >= 0:
            number = calls[0]
            calls[0] += 1
            if number * 2 == point:
                os.kill(os.getpid(), signal.SIGKILL)
            real(fd)
            if number * 2 + 1 == point:
                os.kill(os.getpid(), signal.SIGKILL)
            return
        real(fd)

    os.fsync = fsync

    def arm() -> None:
        calls[0] = 0

    return arm


def main() -> None:
    directory, point = Path(sys.argv[1]), int(sys.argv[2])
    evidence = load_evidence_public_key(directory / "evidence.pub")
    device = load_or_create_device_key(directory / "device.key")
    arm = crash_at(point)
    recording = uuid.UUID(int=point + 1)
    first = SegmentWriter(
        directory / "000000.part",
        SegmentInfo(recording, 0, device_name="roll"),
        evidence,
        device,
        fsync=os.fsync,
    )
    first.write(b"segment 0 " * 5000)
    first.checkpoint()
    arm()
    sealed = first.seal(end_of_recording=False)
    second = SegmentWriter(
        directory / "000001.part",
        SegmentInfo(recording, 1, sealed.digest, device_name="roll"),
        evidence,
        device,
        fsync=os.fsync,
    )
    print("rolled", flush=True)
    second.write(b"segment 1 " * 5000)
    second.checkpoint()
    second.seal(end_of_recording=True)
    print("sealed", flush=True)


if __name__ == "__main__":
    main()
