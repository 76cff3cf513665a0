"""`make bench`: speed figures as ratios of ceilings measured in the same run.

Absolute numbers depend on the machine; the ratios are what the design holds us to
(DESIGN.md §10). Nothing here is asserted in the test suite.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bodycamd.evidence import format as fmt
from bodycamd.evidence.keys import generate_evidence_key, hpke_suite
from bodycamd.evidence.writer import SegmentInfo, SegmentWriter

MIB = 1 << 20
BLOCK = 64 * 1024
TOTAL = 128 * MIB


def best_rate(run: Callable[[], int], repeat: int = 5) -> float:
    """Bytes per second of the best of `repeat` runs (the least disturbed by the machine)."""
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        done = run()
        best = max(best, done / (time.perf_counter() - start))
    return best


def raw_write(block: bytes) -> int:
    """The page-cache copy alone: what any writer pays on top of the crypto ceiling."""
    base = Path.cwd() / "var"
    base.mkdir(exist_ok=True)
    path = base / f"bench-raw-{os.getpid()}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(TOTAL // BLOCK):
            os.write(fd, block)
    finally:
        os.close(fd)
        path.unlink()
    return TOTAL


def per_call(run: Callable[[], object], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        run()
    return (time.perf_counter() - start) / count


def scratch_dir() -> Path:
    """A directory on the filesystem of the checkout: writes land in its page cache. (tmpfs
    was tried and measured slower than the page cache on the development machine.)"""
    base = Path.cwd() / "var"
    base.mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(dir=base, prefix="bodycamd-bench-"))


def main() -> None:
    block = os.urandom(BLOCK)
    aead = AESGCM(os.urandom(32))
    nonce = os.urandom(12)
    frame = b"\0" * 8

    def aes() -> int:
        for _ in range(TOTAL // BLOCK):
            aead.encrypt(nonce, block, frame)
        return TOTAL

    def sha() -> int:
        digest = hashlib.sha256()
        for _ in range(TOTAL // BLOCK):
            digest.update(block)
        return TOTAL

    aes_rate, sha_rate = best_rate(aes), best_rate(sha)
    ceiling = 1 / (1 / aes_rate + 1 / sha_rate)
    page_cache_rate = best_rate(lambda: raw_write(block))

    evidence = generate_evidence_key().public
    device = ed25519.Ed25519PrivateKey.generate()
    memory_dir = scratch_dir()

    def writer_run(
        directory: Path, piece: int, checkpoint_every: int | None, fsync: Callable[[int], None]
    ) -> Callable[[], int]:
        data = os.urandom(piece)

        def run() -> int:
            path = directory / f"{uuid.uuid4().hex}.part"
            writer = SegmentWriter(
                path, SegmentInfo(uuid.uuid4(), 0), evidence, device, fsync=fsync
            )
            since = 0
            for _ in range(TOTAL // piece):
                writer.write(data)
                since += piece
                if checkpoint_every and since >= checkpoint_every:
                    writer.checkpoint()
                    since = 0
            sealed = writer.seal(end_of_recording=True)
            sealed.path.unlink()
            return TOTAL

        return run

    def no_fsync(fd: int) -> None:
        return None

    writer_rate = best_rate(writer_run(memory_dir, BLOCK, None, no_fsync))
    small_rate = best_rate(writer_run(memory_dir, 1316, None, no_fsync), repeat=2)
    disk_dir = scratch_dir()
    checkpoint_rate = best_rate(writer_run(disk_dir, BLOCK, 1_250_000, os.fsync), repeat=2)

    x25519 = hpke_suite("x25519")
    hybrid_key = generate_evidence_key("mlkem768-x25519").public
    hybrid = hpke_suite("mlkem768-x25519")
    key32 = os.urandom(32)
    wrap = per_call(lambda: x25519.encrypt(key32, evidence.key, info=b"i"), 500)
    wrap_pq = per_call(lambda: hybrid.encrypt(key32, hybrid_key.key, info=b"i"), 500)
    sign = per_call(lambda: device.sign(b"x" * 200), 2000)

    print(f"AES-256-GCM, 64 KiB blocks      {aes_rate / MIB:9.0f} MiB/s")
    print(f"SHA-256, 64 KiB updates         {sha_rate / MIB:9.0f} MiB/s")
    print(f"combined ceiling 1/(1/a+1/s)    {ceiling / MIB:9.0f} MiB/s")
    print(
        f"writer, 64 KiB writes, no fsync (page cache) {writer_rate / MIB:9.0f} MiB/s  "
        f"ratio {writer_rate / ceiling:.2f} of ceiling (target >= 0.70)"
    )
    io_bound = 1 / (1 / aes_rate + 1 / sha_rate + 1 / page_cache_rate)
    print(f"page-cache write alone          {page_cache_rate / MIB:9.0f} MiB/s")
    print(
        f"ceiling with that write, serial {io_bound / MIB:9.0f} MiB/s  "
        f"writer ratio {writer_rate / io_bound:.2f} of it"
    )
    print(
        f"writer, 1316 B writes (7 TS packets), no fsync "
        f"{small_rate / MIB:6.0f} MiB/s  ratio {small_rate / ceiling:.2f}"
    )
    print(
        f"writer, checkpoint+fsync every 1.25 MB on {disk_dir.parent}: "
        f"{checkpoint_rate / MIB:.0f} MiB/s"
    )
    print(f"one HPKE wrap: X25519 {wrap * 1e6:.0f} us, ML-KEM-768+X25519 {wrap_pq * 1e6:.0f} us")
    print(f"one Ed25519 signature           {sign * 1e6:9.1f} us")
    footage = 10e6 / 8  # 10 Mbit/s
    print(
        f"at 10 Mbit/s the writer's crypto+hash costs {footage / writer_rate * 100:.3f} % "
        "of a core (plus one checkpoint signature per second: "
        f"{sign * 100:.4f} %)"
    )
    print(f"records per 64 KiB: plaintext {fmt.MAX_PLAINTEXT} bytes")
    for directory in (memory_dir, disk_dir):
        for leftover in directory.iterdir():
            leftover.unlink()
        directory.rmdir()
    print()
    from bench import capture, latency, upload

    latency.main()
    capture.main()
    upload.main()


if __name__ == "__main__":
    main()
