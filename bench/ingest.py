"""Ingest throughput: 8 cameras uploading real segments at once over loopback mutual TLS,
against the project's ingest and, in the same run, against `@tus/server` + `@tus/file-store`.

    python -m bench.ingest [--clients 8] [--segments 2] [--mib 24] [--chunk-mib 8] [--s3]

Starts `bodycamd-ingest serve` (filesystem store) as its own process, enrols the cameras,
has each upload its segments with tus (POST, then PATCHes of --chunk-mib) and waits for the
receipts. Then starts tests/peers/server.mjs (node; `npm ci --prefix tests/peers`) with the
ingest's own server certificate and device CA, so the same cameras upload the same bytes
with the same client code over the same mutual TLS (the peer issues no receipts, so none is
asked of it). Prints each server's aggregate rate and CPU seconds per GB received (from
/proc/PID/stat of the server process, so the clients' own work is not counted) and the
ratio ingest/peer (target >= 1.0x). Every ingest receipt is checked: a run whose segments
were not all accepted is not a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import CAMERA_CHECKPOINT_BYTES
from bodycamd.evidence.writer import SealedSegment
from tests.ingest.helpers import Camera, Rig, encode_metadata, make_rig

MIB = 1 << 20


def server_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


PEERS = Path(__file__).resolve().parents[1] / "tests" / "peers"


async def upload_all(
    rig: Rig,
    camera: Camera,
    url: str,
    segments: list[SealedSegment],
    chunk: int,
    receipts: bool,
) -> int:
    sent = 0
    async with rig.client(camera, url) as client:
        for sealed in segments:
            data = sealed.path.read_bytes()
            created = await client.post(
                "/files/",
                headers={
                    "Upload-Length": str(len(data)),
                    "Upload-Metadata": encode_metadata(camera.metadata(sealed)),
                },
            )
            created.raise_for_status()
            for offset in range(0, len(data), chunk):
                answer = await client.patch(
                    created.headers["Location"],
                    content=data[offset : offset + chunk],
                    headers={
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                    },
                )
                if answer.status_code != 204:
                    raise SystemExit(
                        f"{camera.device_id}: PATCH {answer.status_code} {answer.text}"
                    )
            if not receipts:
                sent += len(data)
                continue
            receipt = await client.get(f"/receipts/{sealed.digest.hex()}")
            if receipt.status_code != 200:
                raise SystemExit(f"{camera.device_id}: no receipt for {sealed.digest.hex()}")
            sent += len(data)
    return sent


async def run(
    label: str, rig: Rig, cameras: list[Camera], url: str, pid: int, chunk: int, receipts: bool
) -> tuple[float, float]:
    """(MiB/s aggregate, server CPU seconds per GB) of every camera uploading its segments."""
    work = {c.device_id: [s for chain in c.recordings.values() for s in chain] for c in cameras}
    cpu_before, start = server_cpu_seconds(pid), time.perf_counter()
    totals = await asyncio.gather(
        *(upload_all(rig, c, url, work[c.device_id], chunk, receipts) for c in cameras)
    )
    elapsed, cpu = time.perf_counter() - start, server_cpu_seconds(pid) - cpu_before
    total = sum(totals)
    rate, per_gb = total / MIB / elapsed, cpu / (total / 1e9)
    print(f"{label}, {len(cameras)} concurrent uploaders:")
    print(f"  {total / MIB:.0f} MiB in {elapsed:.2f} s = {rate:.1f} MiB/s aggregate")
    print(f"  server CPU {cpu:.2f} s = {per_gb:.2f} CPU-s per GB received", flush=True)
    return rate, per_gb


def peer_missing() -> str | None:
    """None when node and the pinned npm packages are there; else why not."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (PEERS / "node_modules" / "@tus" / "server").is_dir():
        return "npm ci --prefix tests/peers has not run"
    return None


def serve_ingest(rig: Rig) -> tuple[subprocess.Popen[str], str]:
    script = Path(sys.executable).parent / "bodycamd-ingest"
    server = subprocess.Popen(
        [str(script), "serve", "-c", str(rig.directory), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    return server, server.stdout.readline().rsplit(" ", 1)[1].strip()


def serve_peer(rig: Rig, files: Path) -> tuple[subprocess.Popen[str], str]:
    """tests/peers/server.mjs with the ingest's server certificate and device CA: the peer
    requires a client certificate exactly as the ingest does (mutual TLS)."""
    tls = rig.config.tls
    args = ["node", str(PEERS / "server.mjs"), "--dir", str(files), "--port", "0"]
    args += ["--cert", str(rig.config.path(tls.server_certificate))]
    args += ["--key", str(rig.config.path(tls.server_key))]
    args += ["--ca", str(rig.config.path(tls.ca_certificate))]
    server = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line:
        raise SystemExit(f"@tus/server peer did not start (exit {server.wait()})")
    return server, f"https://127.0.0.1:{json.loads(line)['port']}"


def stop(server: subprocess.Popen[str]) -> None:
    server.terminate()
    server.wait(timeout=30)
    if server.stdout is not None:
        server.stdout.close()


# Segments as the camera writes them (until session 3 the bench wrote a checkpoint per
# 50 kB, the tests' density: 12x the signature checks real footage costs the ingest).
CHECKPOINT_BYTES = CAMERA_CHECKPOINT_BYTES


def write_segments(cameras: list[Camera], args: argparse.Namespace) -> None:
    print(
        f"writing {len(cameras) * args.segments} segments of {args.mib} MiB, a checkpoint "
        f"per {CHECKPOINT_BYTES / 1e6:.3g} MB…",
        flush=True,
    )
    for camera in cameras:
        for _ in range(args.segments):
            camera.segment(size=args.mib * MIB, checkpoint_bytes=CHECKPOINT_BYTES)


def cameras_with_segments(rig: Rig, args: argparse.Namespace) -> list[Camera]:
    cameras = [rig.enroll(f"bench-{n}") for n in range(args.clients)]
    write_segments(cameras, args)
    return cameras


def s3_row(directory: Path, args: argparse.Namespace) -> None:
    """The extra row: the ingest with its S3 store on moto's server (tests/ingest/s3_moto.py,
    one request at a time, in Python), new cameras and segments of the same sizes. The rate
    is moto's more than the ingest's; the ingest's CPU seconds per GB is the figure."""
    from tests.ingest.s3_moto import CREDENTIALS, make_bucket, make_s3_rig, moto_server

    os.environ.update(CREDENTIALS)  # for make_bucket here and the ingest process
    with moto_server() as moto:
        bucket = asyncio.run(make_bucket(moto.endpoint))
        rig = make_s3_rig(directory / "s3", moto.endpoint, bucket)
        cameras = cameras_with_segments(rig, args)
        server, url = serve_ingest(rig)
        try:
            label = "EXTRA ROW: bodycamd ingest, S3 store on moto (rate bound by moto)"
            asyncio.run(run(label, rig, cameras, url, server.pid, args.chunk_mib * MIB, True))
        finally:
            stop(server)


def ingest_round(root: Path, args: argparse.Namespace, index: int) -> tuple[Rig, float]:
    """One run against a fresh ingest (its own store, cameras and segments: the same segment
    twice would be answered from the receipt it already has). Returns the rig for the peer."""
    rig = make_rig(root / f"ingest-{index}", max_request_body_bytes=64 * MIB)
    cameras = cameras_with_segments(rig, args)
    server, url = serve_ingest(rig)
    try:
        os.sync()  # the segments just written go to disk now, not during the measured run
        label = f"bodycamd ingest, loopback mutual TLS, filesystem store (run {index})"
        return rig, asyncio.run(run(label, rig, cameras, url, server.pid, args.chunk, True))[0]
    finally:
        stop(server)


def peer_round(root: Path, rig: Rig, cameras: list[Camera], chunk: int, index: int) -> float:
    files = root / f"peer-files-{index}"
    files.mkdir()
    server, url = serve_peer(rig, files)
    try:
        os.sync()  # what the previous run left dirty is written back before this one starts
        label = f"@tus/server + @tus/file-store (node), loopback mutual TLS (run {index})"
        return asyncio.run(run(label, rig, cameras, url, server.pid, chunk, False))[0]
    finally:
        stop(server)


def main(argv: list[str] | None = None) -> float | None:
    """Runs both servers twice, in the order ingest, peer, peer, ingest, each after a `sync`,
    so neither always runs first (on a disk still writing back the segments just made) or
    last; returns the ratio of the mean rates ingest/peer (None without the peer)."""
    parser = argparse.ArgumentParser(prog="python -m bench.ingest")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--segments", type=int, default=2)
    parser.add_argument("--mib", type=int, default=24)
    parser.add_argument("--chunk-mib", type=int, default=8)
    parser.add_argument("--s3", action="store_true", help="also the S3 store on moto (slow)")
    args = parser.parse_args(argv)
    args.chunk = args.chunk_mib * MIB
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as directory:
        root = Path(directory)
        if args.s3:
            s3_row(root, args)
        missing = peer_missing()
        rig, first = ingest_round(root, args, 1)
        if missing is not None:
            print(f"@tus/server peer: SKIPPED, {missing}")
            return None
        cameras = [rig.enroll(f"peer-{n}") for n in range(args.clients)]
        write_segments(cameras, args)
        theirs = [peer_round(root, rig, cameras, args.chunk, n) for n in (1, 2)]
        _, second = ingest_round(root, args, 2)
        ours = (first + second) / 2
        peer = sum(theirs) / 2
        print(
            f"ingest / @tus/server throughput {ours / peer:.2f}x (target >= 1.0x): ingest "
            f"{first:.1f} and {second:.1f} MiB/s, peer {theirs[0]:.1f} and {theirs[1]:.1f}"
        )
        return ours / peer


if __name__ == "__main__":
    main()
