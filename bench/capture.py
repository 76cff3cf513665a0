"""Capture figures: the daemon's own CPU while recording 1080p30 10 Mbit/s (in real time and
unpaced), the idle daemon with nobody logged in, and memory (VmHWM) of each.

A pre-encoded 1080p30 stream is replayed through the file backend, through the real channel,
recorder, muxer, writer and spool, each figure in a fresh subprocess. The replay stands where
the encoder is on a Pi, so its own work is taken out: the camera thread's CPU time is read
from that thread's own clock in the same run (not from another run), and the daemon's share
is process CPU minus it. Memory is VmHWM (and sampled VmRSS) of the measured process itself
from /proc/<pid>/status: `ru_maxrss` of a child starts from its parent's peak, which made a
13 MiB child report 313 MiB.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

FOOTAGE_SECONDS = 20
LOOPS = 2  # real-time phases: 40 s of footage
IDLE_SECONDS = 20.0
WARMUP_SECONDS = 5.0  # real-time figures start after this: the steady state of recording
CLK_TCK = os.sysconf("SC_CLK_TCK")


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


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM (KiB) of a process, from the kernel's own accounting."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    rest = text[text.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


class RssSampler:
    """VmRSS every half second on a thread of its own (a few µs each), for the median."""

    def __init__(self) -> None:
        self.samples: list[int] = []
        self.thread_cpu = 0.0  # the sampler's own CPU, taken out of the daemon's figure
        self.started = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.samples.append(proc_status()["VmRSS"])
        self.thread_cpu = time.thread_time()

    def figures(self) -> dict[str, float]:
        return {
            "rss_median_mib": statistics.median(self.samples or [0]) / 1024,
            "vmhwm_mib": proc_status()["VmHWM"] / 1024,
        }


def timed_file_camera(config, post, fault, loops):  # type: ignore[no-untyped-def]
    """The file camera, reading its own thread's CPU clock when it has replayed everything."""
    from hw.camera.replay import FileCamera

    class TimedFileCamera(FileCamera):
        thread_cpu = 0.0
        open_cpu = 0.0

        def _produce(self, stopping: threading.Event) -> None:
            try:
                super()._produce(stopping)
            finally:
                TimedFileCamera.thread_cpu = time.thread_time()

    before = time.thread_time()  # opening probes the file (decodes frames): the camera's work
    camera = TimedFileCamera(config, post, fault, loops=loops)
    camera.open_cpu = time.thread_time() - before
    return camera


async def pipeline(footage: Path, state: Path, pre_event: float, mode: str) -> dict[str, float]:
    """mode: "fast" (record, as fast as the pipeline goes), or in real time "record" or
    "buffer" (pre-event only)."""
    # what the daemon has loaded, so RSS is the daemon's; PyAV (muxer, replay) is loaded
    # once per process at the first login, not a cost per minute of footage
    import bodycamd.app
    import bodycamd.recorder.muxer
    import hw.camera.replay  # noqa: F401

    bodycamd.app.freeze_startup_objects()  # as the daemon's serve() does
    from bodycamd.config import CameraConfig, RecorderConfig
    from bodycamd.recorder.component import CaptureComponent
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
    cameras = []

    def factory(post, fault):  # type: ignore[no-untyped-def]
        cameras.append(timed_file_camera(camera_config, post, fault, LOOPS))
        return cameras[-1]

    component = CaptureComponent(factory, storage_for(spool), camera_config, recorder_config)
    with RssSampler() as rss:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await component.start()
        assert component.recorder is not None
        if mode == "buffer":
            component.recorder.set_buffering(True)
        else:
            await component.recorder.start(None, "bench")
        task = asyncio.create_task(component.run())
        camera = cameras[0]
        camera0 = 0.0
        if not fast:  # in real time: the steady state, after the start-up (camera probe...)
            await asyncio.sleep(WARMUP_SECONDS)
            clock = time.pthread_getcpuclockid(camera._thread.ident)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            camera0 = time.clock_gettime(clock)
        await asyncio.to_thread(camera._thread.join)
        await component._channel.wait_empty()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        buffered = component.recorder.buffered_bytes
        await component.stop()
        await task
    return {
        "cpu_seconds": cpu - rss.thread_cpu * wall / (time.perf_counter() - rss.started),
        "camera_cpu_seconds": type(camera).thread_cpu - camera0 + (camera.open_cpu if fast else 0),
        "wall_seconds": wall,
        "footage_seconds": FOOTAGE_SECONDS * LOOPS,
        "wakeups": component._channel.wakeups,
        "buffered_bytes": buffered,
        "frames_dropped": component.frames_dropped,
        **rss.figures(),
    }


def child(argv: list[str]) -> None:
    footage, state, pre_event, mode = Path(argv[0]), Path(argv[1]), float(argv[2]), argv[3]
    if mode == "imports":
        import bodycamd.app  # noqa: F401

        result = {"vmhwm_mib": proc_status()["VmHWM"] / 1024}
    else:
        result = asyncio.run(pipeline(footage, state, pre_event, mode))
    print(json.dumps(result))


def unit_environment() -> dict[str, str]:
    """The Environment= lines of the systemd unit (e.g. MALLOC_ARENA_MAX): the daemon is
    measured as it runs on the device."""
    env = {}
    unit = Path("systemd/bodycamd.service")
    for line in unit.read_text().splitlines() if unit.exists() else []:
        if line.startswith("Environment="):
            for assignment in line.removeprefix("Environment=").split():
                key, _, value = assignment.strip('"').partition("=")
                env[key] = value
    return env


def run(footage: Path, pre_event: float, mode: str) -> dict[str, float]:
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
            env={**os.environ, **unit_environment()},
        )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def idle_daemon() -> dict[str, float]:
    """The real daemon (`bodycamd run`, simulated hardware, synthetic 1080p30 camera),
    nobody logged in, for IDLE_SECONDS after it reports READY: CPU and VmHWM from /proc."""
    with tempfile.TemporaryDirectory(dir=Path.cwd() / "var") as root:
        base = Path(root)
        config = base / "bodycamd.toml"
        config.write_text(
            'hardware = "simulated"\n[device]\nname = "bench-cam"\nstate_dir = "state"\n'
            'runtime_dir = "run"\n[evidence]\npublic_key = "keys/evidence.pub"\n'
            'development_keys = true\n[camera]\nbackend = "synthetic"\nwidth = 1920\n'
            'height = 1080\nframerate = 30\nbitrate = 10000000\n[daemon]\nlog_level = "warning"\n'
        )
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(base / "notify"))
        notify.settimeout(60)
        env = {**os.environ, **unit_environment(), "NOTIFY_SOCKET": str(base / "notify")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "bodycamd.cli", "run", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            while b"READY=1" not in notify.recv(65536):
                pass
            cpu0, wall0 = proc_cpu_seconds(proc.pid), time.perf_counter()
            time.sleep(IDLE_SECONDS)
            cpu, wall = proc_cpu_seconds(proc.pid) - cpu0, time.perf_counter() - wall0
            status = proc_status(proc.pid)
            threads = len(os.listdir(f"/proc/{proc.pid}/task"))
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
            if proc.returncode != 0:
                raise SystemExit(f"idle daemon exited {proc.returncode}: {err[-2000:]}")
        finally:
            proc.kill()
            notify.close()
    return {
        "cpu_share": cpu / wall,
        "vmrss_mib": status["VmRSS"] / 1024,
        "vmhwm_mib": status["VmHWM"] / 1024,
        "threads": threads,
    }


def main(rows: dict[str, list[float]]) -> None:
    """Run every capture phase once, print it, and add its figures to `rows`."""
    Path("var").mkdir(exist_ok=True)
    print(f"environment from the unit: {unit_environment() or 'none'}")
    footage = Path("var") / "bench-1080p30-10mbit.ts"
    if not footage.exists():
        print("encoding 20 s of 1080p30 10 Mbit/s footage for the bench (once)...", flush=True)
        make_footage(footage)
    size = footage.stat().st_size
    print(f"footage: {footage} {size * 8 / FOOTAGE_SECONDS / 1e6:.1f} Mbit/s")

    rec = run(footage, 0.0, "record")
    own = (rec["cpu_seconds"] - rec["camera_cpu_seconds"]) / rec["wall_seconds"]
    rows["realtime_own_pct"].append(own * 100)
    rows["record_rss_median"].append(rec["rss_median_mib"])
    rows["record_vmhwm"].append(rec["vmhwm_mib"])
    print(
        f"recording in real time ({rec['footage_seconds']:.0f} s): process "
        f"{rec['cpu_seconds'] / rec['wall_seconds'] * 100:.2f} % of a core, replay thread "
        f"{rec['camera_cpu_seconds'] / rec['wall_seconds'] * 100:.2f} %, the daemon's own work "
        f"{own * 100:.2f} % (target < 1 %); {rec['wakeups'] / rec['wall_seconds']:.0f} loop "
        f"wake-ups/s; {rec['frames_dropped']:.0f} frames dropped"
    )
    print(
        f"  RSS recording, no pre-event buffer: median {rec['rss_median_mib']:.1f} MiB, "
        f"VmHWM {rec['vmhwm_mib']:.1f} MiB (target VmHWM < 80)"
    )

    fast = run(footage, 0.0, "fast")
    per_minute = (fast["cpu_seconds"] - fast["camera_cpu_seconds"]) / (fast["footage_seconds"] / 60)
    rows["unpaced_pct"].append(per_minute / 60 * 100)
    print(
        f"unpaced ({fast['footage_seconds'] / fast['wall_seconds']:.0f}x real time, "
        f"{fast['frames_dropped']:.0f} frames dropped): process {fast['cpu_seconds']:.2f} CPU s,"
        f" replay thread {fast['camera_cpu_seconds']:.2f} s; the daemon's own "
        f"{per_minute:.2f} CPU s per minute of footage = {per_minute / 60 * 100:.2f} % per "
        "real-time minute (target < 0.5 %)"
    )

    idle = idle_daemon()
    rows["idle_pct"].append(idle["cpu_share"] * 100)
    rows["idle_vmhwm"].append(idle["vmhwm_mib"])
    print(
        f"idle daemon, nobody logged in ({IDLE_SECONDS:.0f} s after READY): "
        f"{idle['cpu_share'] * 100:.2f} % of a core (target ~0: camera off), VmRSS "
        f"{idle['vmrss_mib']:.1f} MiB, VmHWM {idle['vmhwm_mib']:.1f} MiB (target < 60), "
        f"{idle['threads']:.0f} threads"
    )
    imports = run(footage, 0.0, "imports")
    print(f"  `import bodycamd.app` alone: VmHWM {imports['vmhwm_mib']:.1f} MiB")

    buffering = run(footage, 30.0, "buffer")
    print(
        f"RSS with a 30 s pre-event buffer: median {buffering['rss_median_mib']:.1f} MiB, "
        f"VmHWM {buffering['vmhwm_mib']:.1f} MiB "
        f"(buffer held {buffering['buffered_bytes'] / 2**20:.0f} MiB)"
    )


if __name__ == "__main__":
    child(sys.argv[1:])
