"""Child process for the crash test: writes a deterministic stream with checkpoints and
prints `checkpoint <plaintext bytes>` after each checkpoint's fsync has returned."""

from __future__ import annotations

import random
import sys
import uuid
from pathlib import Path

from bodycamd.evidence.keys import load_evidence_public_key, load_or_create_device_key
from bodycamd.evidence.writer import SegmentInfo, SegmentWriter


def stream(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def main() -> None:
    directory, seed = Path(sys.argv[1]), int(sys.argv[2])
    writer = SegmentWriter(
        directory / "000000.part",
        SegmentInfo(uuid.UUID(int=seed), 0),
        load_evidence_public_key(directory / "evidence.pub"),
        load_or_create_device_key(directory / "device.key"),
    )
    data = stream(seed, 8 << 20)
    rng = random.Random(seed + 1)
    position = 0
    while position < len(data):
        piece = rng.randint(1, 150_000)
        writer.write(data[position : position + piece])
        position += piece
        if rng.random() < 0.5:
            writer.checkpoint()
            print(f"checkpoint {min(position, len(data))}", flush=True)
    writer.seal(end_of_recording=True)
    print("sealed", flush=True)


if __name__ == "__main__":
    main()
