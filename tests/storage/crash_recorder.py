"""Child process for the storage crash test: records forever through a real spool, printing
what it has made durable (`checkpoint <segment path> <bytes>` once a checkpoint's fsync
returned, `sealed <path>` once a segment's journal row committed)."""

from __future__ import annotations

import random
import sys
import uuid
from pathlib import Path

from bodycamd.config import parse_size
from bodycamd.evidence.keys import load_evidence_public_key, load_or_create_device_key
from bodycamd.journal import Journal
from bodycamd.storage import QuotaLedger, SegmentStart, Spool, StateLayout


def main() -> None:
    root, seed = Path(sys.argv[1]), int(sys.argv[2])
    layout = StateLayout(root)
    layout.prepare()
    device = load_or_create_device_key(layout.device_key)
    ledger = QuotaLedger(
        root,
        lambda total: parse_size("90%", total),
        0,
        low_minutes=1,
        min_free_minutes=0,
        bitrate=1_000_000,
    )
    ledger.reconcile(layout.segment_files())
    spool = Spool(
        layout,
        Journal(layout.journal, device),
        ledger,
        device,
        load_evidence_public_key(root.parent / "evidence.pub"),
        "crash-cam",
    )
    rng = random.Random(seed)
    recording = uuid.uuid4()
    prev, index = b"\0" * 32, 0
    while True:
        segment = spool.open_segment(SegmentStart(recording, index, prev, True))
        for _ in range(rng.randint(1, 6)):
            for _ in range(rng.randint(1, 40)):
                segment.write(rng.randbytes(rng.randint(100, 20_000)))
            segment.checkpoint()
            print(
                f"checkpoint {layout.relative(segment.path)} {segment.plaintext_bytes}", flush=True
            )
        sealed = segment.seal(end_of_recording=False)
        print(f"sealed {layout.relative(sealed.path)}", flush=True)
        prev, index = sealed.digest, index + 1


if __name__ == "__main__":
    main()
