"""Writer figures: AES-GCM and SHA-256 ceilings, the segment writer against them and against
the page-cache write, and the writer against `age` on the same bytes (CPU seconds)."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench import CAMERA_CHECKPOINT_BYTES
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


AGE_BYTES = 256 * MIB
BATCH = 256 * 1024  # the recorder's write batch (storage.quota.WRITE_BATCH)
CHECKPOINT_BYTES = CAMERA_CHECKPOINT_BYTES  # as the camera writes them


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    """CPU seconds of this whole process, every thread, user and system: what the writer's
    write(2) costs in the kernel counts as much as what its hash costs in user space."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class AgeRun:
    """One side-by-side pair, in CPU seconds for the same AGE_BYTES."""

    writer: float
    age: float
    sha256: float  # SHA-256 of the same bytes alone, in this process: the format's share
    floor: float  # read, SHA-256 and write(2) of the same bytes: any writer of this format


class AgeComparison:
    """The evidence writer and `age -r` on the same file, alternately first.

    Both read the same file from the page cache and write their output into it. Before every
    timed run `sync` writes back what the previous one left dirty, so neither pays for the
    other's writeback, and the order alternates, so neither always runs on a cache the other
    warmed. (The first version always ran age first, right after the input was written: age
    then measured 0.25-0.68 CPU s for the same 256 MiB in one run.) A first pair warms both
    up and is not counted."""

    def __init__(self, directory: Path, age: str, keygen: str) -> None:
        self.directory = directory
        self.age = age
        self.source = directory / "age-input"
        with self.source.open("wb") as out:
            for _ in range(AGE_BYTES // MIB):
                out.write(os.urandom(MIB))
        identity = directory / "age-key"
        subprocess.run([keygen, "-o", str(identity)], check=True, capture_output=True)
        self.recipient = subprocess.run(
            [keygen, "-y", str(identity)], check=True, capture_output=True, text=True
        ).stdout.strip()
        identity.unlink()
        self.evidence = generate_evidence_key().public
        self.device = ed25519.Ed25519PrivateKey.generate()

    def close(self) -> None:
        self.source.unlink(missing_ok=True)

    def run_age(self) -> float:
        out = self.directory / "age-out"
        os.sync()
        cpu0 = children_cpu()
        subprocess.run(
            [self.age, "-r", self.recipient, "-o", str(out), str(self.source)], check=True
        )
        cpu = children_cpu() - cpu0
        out.unlink()
        return cpu

    def run_writer(self) -> float:
        """256 KiB batches (the recorder's), a signed checkpoint per CHECKPOINT_BYTES (one
        durability interval of 10 Mbit/s), no fsync (age does none either)."""
        batch = bytearray(BATCH)
        os.sync()
        cpu0 = own_cpu()
        writer = SegmentWriter(
            self.directory / "w.part",
            SegmentInfo(uuid.uuid4(), 0),
            self.evidence,
            self.device,
            fsync=lambda fd: None,
        )
        since = 0
        with self.source.open("rb", buffering=0) as data, memoryview(batch) as view:
            while size := data.readinto(batch):
                writer.write(view[:size])
                since += size
                if since >= CHECKPOINT_BYTES:
                    writer.checkpoint()
                    since = 0
        sealed = writer.seal(end_of_recording=True)
        cpu = own_cpu() - cpu0
        sealed.path.unlink()
        return cpu

    def run_sha256(self) -> float:
        """The hash the format requires over every byte, alone, on the same bytes."""
        block = bytearray(BLOCK)
        cpu0 = own_cpu()
        digest = hashlib.sha256()
        with self.source.open("rb", buffering=0) as data, memoryview(block) as view:
            while size := data.readinto(block):
                digest.update(view[:size])
        return own_cpu() - cpu0

    def run_floor(self) -> float:
        """What any writer of this format pays before encrypting or signing anything: read
        the bytes, SHA-256 them, write them to the page cache, in the recorder's batches."""
        batch = bytearray(BATCH)
        out = self.directory / "floor-out"
        os.sync()
        cpu0 = own_cpu()
        digest = hashlib.sha256()
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with self.source.open("rb", buffering=0) as data, memoryview(batch) as view:
                while size := data.readinto(batch):
                    digest.update(view[:size])
                    os.write(fd, view[:size])
        finally:
            os.close(fd)
        cpu = own_cpu() - cpu0
        out.unlink()
        return cpu

    def pair(self, writer_first: bool) -> AgeRun:
        if writer_first:
            writer = self.run_writer()
            age = self.run_age()
        else:
            age = self.run_age()
            writer = self.run_writer()
        return AgeRun(writer, age, self.run_sha256(), self.run_floor())


def writer_vs_age(directory: Path, pairs: int = 6) -> list[AgeRun]:
    """`pairs` counted pairs after one warm-up pair; empty without `age` installed."""
    age = shutil.which("age")
    keygen = shutil.which("age-keygen")
    if age is None or keygen is None:
        print("writer vs age: SKIPPED, `age` is not installed (apt-get install age)")
        return []
    comparison = AgeComparison(directory, age, keygen)
    try:
        comparison.pair(writer_first=True)
        return [comparison.pair(writer_first=index % 2 == 0) for index in range(pairs)]
    finally:
        comparison.close()


def report_age(runs: list[AgeRun], rows: dict[str, list[float]]) -> None:
    """The figure is the ratio of medians; the minima (the least disturbed runs) and the
    hash's share are printed beside it so a reader can see what bounds it."""
    if not runs:
        return
    writer = statistics.median(run.writer for run in runs)
    age = statistics.median(run.age for run in runs)
    sha = statistics.median(run.sha256 for run in runs)
    best_writer = min(run.writer for run in runs)
    best_age = min(run.age for run in runs)
    rows["age_ratio"].append(age / writer)
    print(
        f"writer vs age, {len(runs)} pairs of {AGE_BYTES // MIB} MiB (order alternating, sync "
        f"before each): writer median {writer:.3f} CPU s (min {best_writer:.3f}), age median "
        f"{age:.3f} (min {best_age:.3f}): the writer does {age / writer:.2f}x age's bytes per "
        f"CPU-second (target >= 1.0; min vs min {best_age / best_writer:.2f}x)"
    )
    print(
        f"  of the writer's {writer:.3f} s, SHA-256 of the same bytes alone (the format's file "
        f"hash, read included) takes {sha:.3f} s; the rest is {writer - sha:.3f} s"
    )
    floor = statistics.median(run.floor for run in runs)
    print(
        f"  reading, hashing and writing the bytes alone (no encryption, no signatures) takes "
        f"{floor:.3f} s: with SHA-256 over every byte no writer of this format can do more than"
        f" {age / floor:.2f}x age here"
    )
    print(f"  per pair: {', '.join(f'{run.writer:.3f}/{run.age:.3f}' for run in runs)}")


def writer_figures(rows: dict[str, list[float]]) -> None:
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
    checkpoint_rate = best_rate(writer_run(disk_dir, BLOCK, CHECKPOINT_BYTES, os.fsync), repeat=2)

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
        f"ratio {writer_rate / ceiling:.2f} of the crypto ceiling, which writes nothing"
    )
    io_bound = 1 / (1 / aes_rate + 1 / sha_rate + 1 / page_cache_rate)
    print(f"page-cache write alone          {page_cache_rate / MIB:9.0f} MiB/s")
    print(
        f"ceiling with that write, serial {io_bound / MIB:9.0f} MiB/s  "
        f"writer ratio {writer_rate / io_bound:.2f} of it (the headline writer ratio)"
    )
    print(
        f"writer, 1316 B writes (7 TS packets), no fsync "
        f"{small_rate / MIB:6.0f} MiB/s  ratio {small_rate / ceiling:.2f}"
    )
    print(
        f"writer, checkpoint+fsync every {CHECKPOINT_BYTES / 1e6:.3g} MB on {disk_dir.parent}: "
        f"{checkpoint_rate / MIB:.0f} MiB/s"
    )
    print(f"one HPKE wrap: X25519 {wrap * 1e6:.0f} us, ML-KEM-768+X25519 {wrap_pq * 1e6:.0f} us")
    print(f"one Ed25519 signature           {sign * 1e6:9.1f} us")
    footage = 10e6 / 8  # 10 Mbit/s
    print(
        f"at 10 Mbit/s the writer's crypto+hash costs {footage / writer_rate * 100:.3f} % "
        f"of a core (plus {footage / CHECKPOINT_BYTES:.0f} checkpoint signatures a second: "
        f"{sign * footage / CHECKPOINT_BYTES * 100:.4f} %)"
    )
    print(f"records per 64 KiB: plaintext {fmt.MAX_PLAINTEXT} bytes")
    report_age(writer_vs_age(memory_dir), rows)
    for directory in (memory_dir, disk_dir):
        for leftover in directory.iterdir():
            leftover.unlink()
        directory.rmdir()
    print()
