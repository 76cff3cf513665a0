"""Power cuts while recording: a recorder process (the real spool, journal and writer)
SIGKILLed at 30 random moments on one state directory. After each restart every segment is
accounted for, torn ones are sealed as torn and queued, the journal and the audit chain
verify, and what was recovered reaches at least the last completed checkpoint.

This drives the storage layer the way the recorder will; the whole-daemon variant of this test
belongs with the capture work, when the daemon itself records.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

from bodycamd.evidence import format as fmt
from bodycamd.evidence.keys import write_evidence_key_pair
from bodycamd.evidence.reader import read_segment
from bodycamd.storage import reconcile
from tests.evidence.helpers import make_keys
from tests.storage.helpers import make_spool


def test_thirty_power_cuts(tmp_path: Path) -> None:
    rng = random.Random(1129)
    keys = make_keys()
    write_evidence_key_pair(keys.evidence, tmp_path / "evidence.key")
    root = tmp_path / "state"
    root.mkdir()
    (root / "keys").mkdir(mode=0o700)
    keys_file = root / "keys" / "device.key"
    from cryptography.hazmat.primitives import serialization

    keys_file.write_bytes(
        keys.device.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    sealed_paths: set[str] = set()
    for cut in range(30):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.storage.crash_recorder", str(root), str(cut)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        lines = [child.stdout.readline() for _ in range(rng.randint(0, 8))]
        child.send_signal(signal.SIGKILL)
        lines += child.communicate()[0].splitlines()
        vouched: dict[str, int] = {}
        for line in lines:
            match line.split():
                case ["checkpoint", path, size]:
                    vouched[path] = int(size)
                case ["sealed", path]:
                    sealed_paths.add(path)
                    vouched.pop(path.replace("ready/", "spool/").replace(".seg", ".part"), None)

        spool, _ = make_spool(root, keys)
        report = reconcile(spool, keys.device)
        assert not report.missing, report
        for kept in report.quarantined:  # only a .part killed between its creation and its
            # header's write: it never held footage, and is kept aside, not deleted
            assert (root / kept).stat().st_size < fmt.HEADER_SIZE, report
        assert not spool.layout.pending_parts() and not spool.layout.spooled_sealed()
        rows = {row.path: row for row in spool.journal.segments()}
        on_flash = {spool.layout.relative(p) for p in spool.layout.ready_segments()}
        assert set(rows) == on_flash, "every file has a row and every row a file"
        assert sealed_paths <= set(rows)
        assert all(not rows[p].torn for p in sealed_paths)
        for part, size in vouched.items():  # the segment the power cut interrupted
            ready = part.replace("spool/", "ready/").replace(".part", ".seg")
            row = rows[ready]
            assert row.state == "sealed"
            data, verdict = read_segment(root / ready, keys.evidence, keys.device_public)
            # torn, unless the cut fell after its seal committed but before "sealed" was printed
            assert verdict.sealed_torn == row.torn
            assert row.torn or verdict.status == "complete"
            assert len(data) >= size
        assert spool.journal.verify(keys.device_public).ok
        spool.journal.close()
