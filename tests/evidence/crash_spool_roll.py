"""Child process for the spool-level roll crash test: records two segments through a real
spool and journal, SIGKILLed by the torture launcher's hook at one fsync of the roll
(TORTURE_ROLL_POINT; see tests/torture/launcher.py)."""

from __future__ import annotations

import tests.torture.launcher as hook  # first: patches os.fsync before bodycamd is imported

hook.install()

import sys  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

from bodycamd.evidence.keys import load_device_key, load_evidence_private_key  # noqa: E402
from bodycamd.storage import SegmentStart  # noqa: E402
from tests.evidence.helpers import Keys  # noqa: E402
from tests.storage.helpers import make_spool  # noqa: E402


def main() -> None:
    root = Path(sys.argv[1])
    keys = Keys(
        load_evidence_private_key(root.parent / "evidence.key"),
        load_device_key(root.parent / "device.key"),
    )
    spool, _ = make_spool(root, keys)
    recording = uuid.uuid4()
    first = spool.open_segment(SegmentStart(recording, 0, b"\0" * 32, True))
    first.write(b"segment 0 " * 5000)
    first.checkpoint()
    sealed = first.seal(end_of_recording=False)
    second = spool.open_segment(SegmentStart(recording, 1, sealed.digest, True))
    second.write(b"segment 1 " * 5000)
    second.checkpoint()
    second.seal(end_of_recording=True)


if __name__ == "__main__":
    main()
