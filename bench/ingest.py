"""Ingest throughput: 8 cameras uploading real segments at once over loopback mutual TLS.

    python -m bench.ingest [--clients 8] [--segments 2] [--mib 24] [--chunk-mib 8]

Starts `bodycamd-ingest serve` (filesystem store) as its own process, enrols the cameras,
has each upload its segments with tus (POST, then PATCHes of --chunk-mib) and waits for the
receipts. Prints the aggregate rate and the server's CPU seconds per GB received (from
/proc/PID/stat, so the clients' own work is not counted). Every receipt is checked: a run
whose segments were not all accepted is not a figure. The `@tus/server` peer of the issue's
comparison is not started here (its npm setup belongs to the upload work).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bodycamd.evidence.writer import SealedSegment
from tests.ingest.helpers import Camera, Rig, encode_metadata, make_rig

MIB = 1 << 20


def server_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def upload_all(
    rig: Rig, camera: Camera, url: str, segments: list[SealedSegment], chunk: int
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
            receipt = await client.get(f"/receipts/{sealed.digest.hex()}")
            if receipt.status_code != 200:
                raise SystemExit(f"{camera.device_id}: no receipt for {sealed.digest.hex()}")
            sent += len(data)
    return sent


async def run(rig: Rig, cameras: list[Camera], url: str, pid: int, chunk: int) -> None:
    work = {c.device_id: [s for chain in c.recordings.values() for s in chain] for c in cameras}
    cpu_before, start = server_cpu_seconds(pid), time.perf_counter()
    totals = await asyncio.gather(
        *(upload_all(rig, c, url, work[c.device_id], chunk) for c in cameras)
    )
    elapsed, cpu = time.perf_counter() - start, server_cpu_seconds(pid) - cpu_before
    total = sum(totals)
    print(f"ingest, {len(cameras)} concurrent uploaders, loopback TLS 1.3, filesystem store:")
    print(
        f"  {total / MIB:.0f} MiB in {elapsed:.2f} s = {total / MIB / elapsed:.1f} MiB/s aggregate"
    )
    print(f"  server CPU {cpu:.2f} s = {cpu / (total / 1e9):.2f} CPU-s per GB received")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--segments", type=int, default=2)
    parser.add_argument("--mib", type=int, default=24)
    parser.add_argument("--chunk-mib", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as directory:
        rig = make_rig(Path(directory), max_request_body_bytes=64 * MIB)
        cameras = [rig.enroll(f"bench-{n}") for n in range(args.clients)]
        print(f"writing {args.clients * args.segments} segments of {args.mib} MiB…", flush=True)
        for camera in cameras:
            for _ in range(args.segments):
                camera.segment(size=args.mib * MIB)
        script = Path(sys.executable).parent / "bodycamd-ingest"
        server = subprocess.Popen(
            [str(script), "serve", "-c", str(rig.directory), "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            url = server.stdout.readline().rsplit(" ", 1)[1].strip()
            asyncio.run(run(rig, cameras, url, server.pid, args.chunk_mib * MIB))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
