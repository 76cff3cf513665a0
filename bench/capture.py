"""Capture figures: CPU per minute of 1080p30 10 Mbit/s footage excluding the encoder, and
peak RSS with and without a 30 s pre-event buffer.

A pre-encoded 1080p30 stream is replayed through the file backend as fast as it goes, through
the real channel, recorder, muxer, writer and spool; the CPU time of the process (all
threads) divided by the minutes of footage is the daemon's cost per minute. Each figure runs
in a fresh subprocess so RSS is that pipeline's own.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

FOOTAGE_SECONDS = 20


def make_footage(path: Path) -> None:
    """20 s of 1080p30 at 10 Mbit/s with AAC, keyframe every second (libx264, noisy picture
    so the bitrate is really reached)."""
    import av
    import numpy as np

    rng = np.random.default_rng(7)
    with av.open(str(path), "w", format="mpegts") as container:
        video = container.add_stream("libx264", rate=30)
        assert isinstance(video, av.VideoStream)
        video.width, video.height, video.pix_fmt = 1920, 1080, "yuv420p"
        video.bit_rate = 10_000_000
        video.options = {
            "preset": "ultrafast",
            "x264-params": "keyint=30:min-keyint=30:scenecut=0:repeat-headers=1:nal-hrd=cbr",
            "maxrate": "10M",
            "bufsize": "10M",
        }
        audio = container.add_stream("aac", rate=48_000)
        assert isinstance(audio, av.AudioStream)
        audio.layout = "mono"
        base = rng.integers(0, 255, (1080 * 3 // 2, 1920), dtype=np.uint8)
        for index in range(FOOTAGE_SECONDS * 30):
            image = np.roll(base, index * 7, axis=1)
            frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, 30)
            for packet in video.encode(frame):
                container.mux(packet)
            samples = np.zeros((1, 1600), dtype=np.float32)
            sound = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            sound.sample_rate, sound.pts = 48_000, index * 1600
            for packet in audio.encode(sound):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                container.mux(packet)


async def pipeline(footage: Path, state: Path, pre_event: float, mode: str) -> dict[str, float]:
    """mode: "fast" (record, as fast as the pipeline goes), or in real time "record",
    "buffer" (pre-event only) or "idle" (packets cross the hop and are discarded)."""
    from bodycamd.config import CameraConfig, RecorderConfig
    from bodycamd.recorder.component import CaptureComponent
    from hw.camera.replay import FileCamera
    from tests.storage.helpers import make_spool, storage_for

    spool, _ = make_spool(state)
    fast = mode == "fast"
    camera_config = CameraConfig(
        backend="file", file=str(footage), realtime=not fast, stall_seconds=60.0
    )
    # fast: a queue big enough that nothing is dropped, so every byte is counted
    recorder_config = RecorderConfig(
        pre_event_seconds=pre_event, queue_bytes="512MiB" if fast else "16MiB"
    )
    done = asyncio.Event()
    loops = 2

    def factory(post, fault):  # type: ignore[no-untyped-def]
        return FileCamera(camera_config, post, fault, loops=loops)

    component = CaptureComponent(factory, storage_for(spool), camera_config, recorder_config)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await component.start()
    assert component.recorder is not None
    if mode == "idle":
        pass
    elif mode == "buffer":
        component.recorder.set_buffering(True)
    else:
        await component.recorder.start(None, "bench")
    task = asyncio.create_task(component.run())
    camera = component._camera
    await asyncio.to_thread(camera._thread.join)  # type: ignore[union-attr]
    await component._channel.wait_empty()
    buffered = component.recorder.buffered_bytes
    await component.stop()
    await task
    done.set()
    return {
        "cpu_seconds": time.process_time() - cpu0,
        "wall_seconds": time.perf_counter() - wall0,
        "footage_seconds": FOOTAGE_SECONDS * loops,
        "buffered_bytes": buffered,
        "frames_dropped": component.frames_dropped,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def replay_only(footage: Path, realtime: bool) -> dict[str, float]:
    """The camera's own share (demuxing and pacing the replay): subtracted from the figure,
    since on a Pi that work is the encoder's."""
    import bodycamd.app  # noqa: F401 - load what the daemon loads, for the RSS baseline
    from bodycamd.config import CameraConfig
    from hw.camera.replay import FileCamera

    config = CameraConfig(backend="file", file=str(footage), realtime=realtime)
    camera = FileCamera(config, lambda packet: None, lambda exc: None, loops=2)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    camera.start()
    assert camera._thread is not None
    camera._thread.join()
    camera.stop()
    return {
        "cpu_seconds": time.process_time() - cpu0,
        "wall_seconds": time.perf_counter() - wall0,
        "footage_seconds": FOOTAGE_SECONDS * 2,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child(argv: list[str]) -> None:
    footage, state, pre_event, mode = Path(argv[0]), Path(argv[1]), float(argv[2]), argv[3]
    if mode == "imports":
        import bodycamd.app  # noqa: F401

        result = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    elif mode.startswith("replay"):
        result = replay_only(footage, realtime=mode == "replay-realtime")
    else:
        result = asyncio.run(pipeline(footage, state, pre_event, mode))
    print(json.dumps(result))


def run(label: str, footage: Path, pre_event: float, mode: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(dir=Path.cwd() / "var") as state:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.capture",
                str(footage),
                str(Path(state) / "state"),
                str(pre_event),
                mode,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    Path("var").mkdir(exist_ok=True)
    footage = Path("var") / "bench-1080p30-10mbit.ts"
    if not footage.exists():
        print("encoding 20 s of 1080p30 10 Mbit/s footage for the bench (once)...", flush=True)
        make_footage(footage)
    size = footage.stat().st_size
    print(f"footage: {footage} {size * 8 / FOOTAGE_SECONDS / 1e6:.1f} Mbit/s")
    fast = run("fast", footage, 0.0, "fast")
    fast_camera = run("replay", footage, 0.0, "replay-fast")
    own = fast["cpu_seconds"] - fast_camera["cpu_seconds"]
    per_minute = own / (fast["footage_seconds"] / 60)
    print(
        f"as fast as it goes ({fast['footage_seconds'] / fast['wall_seconds']:.0f}x real "
        f"time, {fast['frames_dropped']:.0f} frames dropped): pipeline "
        f"{fast['cpu_seconds']:.2f} CPU s, replay alone {fast_camera['cpu_seconds']:.2f} s; "
        f"the daemon's share {per_minute:.2f} CPU s per minute of footage = "
        f"{per_minute / 60 * 100:.2f} % of one core (target < 1 %)"
    )
    print("real-time runs (40 s each) for CPU in real time and RSS...", flush=True)
    recording = run("recording", footage, 0.0, "record")
    camera = run("replay", footage, 0.0, "replay-realtime")
    share = (recording["cpu_seconds"] - camera["cpu_seconds"]) / recording["footage_seconds"]
    pipeline_share = recording["cpu_seconds"] / recording["footage_seconds"]
    camera_share = camera["cpu_seconds"] / camera["footage_seconds"]
    print(
        f"in real time: pipeline {pipeline_share * 100:.2f} % "
        f"of a core, replay alone {camera_share * 100:.2f} %,"
        f" the daemon's share {share * 100:.2f} % (wake-ups per packet dominate here)"
    )
    idle = run("idle", footage, 0.0, "idle")
    hop = idle["cpu_seconds"] / idle["footage_seconds"] - camera_share
    print(f"of which the thread hop alone (camera running, recorder idle): {hop * 100:.2f} %")
    imports = run("imports", footage, 0.0, "imports")
    print(
        f"peak RSS while recording, no pre-event buffer: {recording['peak_rss_mib']:.0f} MiB "
        f"(target < 80); the daemon's imports alone {imports['peak_rss_mib']:.0f} MiB, the "
        f"process with only the file replay running {camera['peak_rss_mib']:.0f} MiB (its "
        "demuxer stands where picamera2 would be)"
    )
    buffering = run("buffering", footage, 30.0, "buffer")
    print(
        f"peak RSS with a 30 s pre-event buffer: {buffering['peak_rss_mib']:.0f} MiB "
        f"(buffer held {buffering['buffered_bytes'] / 2**20:.0f} MiB)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        child(sys.argv[1:])
    else:
        main()
