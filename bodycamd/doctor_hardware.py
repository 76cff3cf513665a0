"""The doctor's hardware checks: board and pins, the microphone, and a 2-second test recording
(camera model, autofocus, encoder, frame rate, keyframes, timestamps, decoding, audio as
declared, CPU headroom, CMA). Each yields `Result` lines; see bodycamd/doctor.py.

The same code runs against the simulated parts with `hardware = "simulated"`: gpiozero's
MockFactory pins read back what was driven, and the synthetic camera's footage goes through
the same analysis as the camera module's.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av

from hw.camera import open_camera
from hw.camera.audio import capture_device, use_system_alsa_config
from hw.gpio import GpioPanel, make_pin_factory, pins_for, read_board_model
from hw.gpio.boards import board_for_model

from .camera import Camera, EncodedPacket, StreamKind
from .doctor import Doctor, Result, fail, ok, skip
from .errors import BodycamError
from .recorder.muxer import MuxState, TsMuxer

CMA_FLOOR_KIB = 32 * 1024  # a guess to be tuned on a Pi: 1080p buffers need ~20 MiB
STOP_SERVICE = "stop the service first (`sudo systemctl stop bodycamd`): one user at a time"


def board(d: Doctor) -> Iterator[Result]:
    model = read_board_model(d.paths.device_tree_model) if d.on_pi else None
    if d.on_pi and model is None:
        yield fail(
            "board model",
            f"cannot read {d.paths.device_tree_model}",
            "on a Pi it is always there: a sandbox with ProcSubset=pid hides it (the "
            "shipped unit does not set it)",
        )
        return
    yield ok("board model", model or "simulated (no device tree)")
    if d.on_pi:
        chips = sorted(d.paths.dev.glob("gpiochip*"))
        opened = [c.name for c in chips if _opens(c)]
        if opened:
            yield ok("gpiochip", f"{', '.join(opened)} open (of {len(chips)})")
        else:
            yield fail(
                "gpiochip",
                f"none of {len(chips)} /dev/gpiochip* opens",
                "the service user needs group gpio and the unit DeviceAllow=char-gpiochip",
            )
    else:
        yield ok("gpiochip", "gpiozero MockFactory pins (simulated)")
    name = d.config.gpio.board or board_for_model(model)
    try:
        pins_for(d.config.gpio, d.config.hardware, d.paths.device_tree_model)
    except BodycamError as exc:
        yield fail("board profile", str(exc), "set gpio.board as named, or empty")
        return
    yield ok("board profile", f"{name} fits {model or 'simulated hardware'}")


def _opens(node: Path) -> bool:
    try:
        os.close(os.open(node, os.O_RDONLY))
    except OSError:
        return False
    return True


def panel(d: Doctor) -> Iterator[Result]:
    try:
        pins = pins_for(d.config.gpio, d.config.hardware, d.paths.device_tree_model)
        factory = make_pin_factory(d.config.hardware)
    except Exception as exc:  # lgpio, a bad profile: whatever stops the panel is the finding
        yield fail("panel", f"{type(exc).__name__}: {exc}", f"see board lines; {STOP_SERVICE}")
        return
    try:
        hardware = GpioPanel(pins, factory, lambda kind, level, when: None)
    except Exception as exc:
        factory.close()
        yield fail("panel", f"{type(exc).__name__}: {exc}", STOP_SERVICE)
        return
    try:
        pin_of = pins.as_dict()
        for name, device in hardware.outputs.items():
            device.on()
            lit = device.value
            time.sleep(d.pulse_seconds)
            device.off()
            dark = device.value
            what = "beeped" if name == "buzzer" else "pulsed"
            if lit and not dark:
                yield ok(name, f"GPIO {pin_of[name]} {what} (on, then off): check it")
            else:
                yield fail(
                    name,
                    f"GPIO {pin_of[name]} read back {lit} when on, {dark} when off",
                    "check the wiring against the board profile",
                )
        pressed = "pressed" if hardware.button.is_active else "released"
        yield ok("record button", f"GPIO {pins.record_button} reads {pressed}")
        docked = "docked" if hardware.docked else "undocked"
        yield ok("dock contact", f"GPIO {pins.dock_sense} reads {docked}")
    finally:
        hardware.close()
        factory.close()


def microphone(d: Doctor) -> Iterator[Result]:
    config = d.config.camera
    if not config.audio:
        yield skip("audio", "camera.audio = false")
        return
    if config.audio_format in av.formats_available:
        yield ok("audio format", f"{config.audio_format!r} is in this PyAV")
    else:
        yield fail(
            "audio format",
            f"{config.audio_format!r} is not in this PyAV",
            'set camera.audio_format = "alsa"',
        )
        return
    if not d.on_pi:
        yield skip("microphone", "simulated: the synthetic camera makes the audio")
        return
    try:
        device = capture_device(config, d.paths.asound_cards)
        use_system_alsa_config()
        with av.open(
            file=device,
            format=config.audio_format,
            options={"sample_rate": str(config.audio_rate), "channels": str(config.audio_channels)},
        ) as container:
            frame = next(container.decode(audio=0))
    except (BodycamError, OSError, StopIteration) as exc:
        yield fail(
            "microphone",
            f"{type(exc).__name__}: {exc}",
            f"plug in the USB microphone, check `arecord -l`, group audio; {STOP_SERVICE}",
        )
        return
    got = (frame.sample_rate, frame.layout.nb_channels)
    want = (config.audio_rate, config.audio_channels)
    if got == want:
        yield ok("microphone", f"{device} opens: {got[0]} Hz, {got[1]} channel(s)")
    else:
        yield fail(
            "microphone",
            f"{device} gives {got[0]} Hz x{got[1]}, config says {want[0]} Hz x{want[1]}",
            "use a plughw: device (converts), or set camera.audio_rate/audio_channels",
        )


@dataclasses.dataclass
class _Take:
    packets: list[tuple[float, EncodedPacket]] = dataclasses.field(default_factory=list)
    faults: list[BaseException] = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    cma_free_kib: int | None = None
    start_us: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0

    def post(self, packet: EncodedPacket) -> None:  # on the camera's thread
        with self.lock:
            self.packets.append((time.monotonic(), packet))

    def video(self) -> list[tuple[float, EncodedPacket]]:
        return [(t, p) for t, p in self.packets if p.stream is StreamKind.VIDEO]


def test_recording(d: Doctor) -> Iterator[Result]:
    take = _Take()
    try:
        camera = open_camera(d.config.camera, d.config.hardware, take.post, take.faults.append)
    except Exception as exc:
        yield fail(
            "camera",
            f"{type(exc).__name__}: {exc}",
            f"`rpicam-hello --list-cameras` must list it; check the ribbon; {STOP_SERVICE}",
        )
        return
    yield from describe_camera(d, camera)
    cpu_before, wall_before = _cpu(), time.monotonic()
    take.start_us = time.monotonic_ns() // 1000
    try:
        camera.start()
        time.sleep(d.record_seconds / 2)
        take.cma_free_kib = _meminfo_kib(d, "CmaFree")
        time.sleep(d.record_seconds / 2)
    finally:
        camera.stop()
    take.cpu_seconds, take.wall_seconds = _cpu() - cpu_before, time.monotonic() - wall_before
    if take.faults:
        yield fail("test recording", str(take.faults[0]), "see the log with --debug")
    audio_fault = getattr(camera, "audio_fault", None)
    if audio_fault:
        yield fail("audio capture", audio_fault, "see the microphone line above")
    yield from _analyse(d, camera, take)
    yield from _resources(d, take)


def describe_camera(d: Doctor, camera: Camera) -> Iterator[Result]:
    picam = getattr(camera, "camera", None)
    if picam is None:
        yield ok("camera", f"{camera.name} backend (no sensor)")
        yield ok("autofocus", "not offered (synthetic)")
        yield ok("H.264 encoder", f"libx264 in PyAV {av.__version__} (synthetic backend)")
        return
    model = picam.camera_properties.get("Model", "unknown")
    yield ok("camera", f"{model}")
    offered = "AfMode" in picam.camera_controls
    if offered and d.config.camera.autofocus:
        yield ok("autofocus", "continuous (AfMode offered)")
    else:
        yield ok("autofocus", "not offered: fixed focus" if not offered else "off in config")
    from picamera2 import platform as pi_platform

    vc4 = pi_platform.get_platform() == pi_platform.Platform.VC4
    yield ok(
        "H.264 encoder",
        "V4L2 hardware encoder (/dev/video11)" if vc4 else "libx264 software (no H.264 block)",
    )


def _analyse(d: Doctor, camera: Camera, take: _Take) -> Iterator[Result]:
    config = d.config.camera
    video = take.video()
    if len(video) < 2:
        yield fail(
            "frame rate",
            f"{len(video)} video frames in {d.record_seconds:g} s",
            "the camera delivers nothing: check the camera lines above",
        )
        return
    arrivals = [t for t, _ in video]
    delivered = (len(video) - 1) / (arrivals[-1] - arrivals[0])
    stamps = [p.pts_us for _, p in video]
    by_pts = (len(video) - 1) * 1e6 / (stamps[-1] - stamps[0])
    if min(delivered, by_pts) >= 0.85 * config.framerate and by_pts <= 1.15 * config.framerate:
        yield ok("frame rate", f"{delivered:.1f} fps delivered, {by_pts:.1f} by timestamps")
    else:
        yield fail(
            "frame rate",
            f"{delivered:.1f} fps delivered, {by_pts:.1f} by timestamps, want {config.framerate}",
            "lower camera.width/height/framerate, or find what takes the CPU",
        )
    gop = max(1, round(config.framerate * config.keyframe_seconds))
    keys = [i for i, (_, p) in enumerate(video) if p.keyframe]
    gaps = {b - a for a, b in itertools.pairwise(keys)}
    if keys[:1] == [0] and gaps <= {gop}:
        yield ok("keyframes", f"first frame and every {gop} frames ({len(keys)} in the take)")
    else:
        yield fail(
            "keyframes",
            f"at frames {keys[:6]}, want 0 and every {gop}",
            "the encoder ignores iperiod: report the picamera2 version",
        )
    increasing = all(b > a for a, b in itertools.pairwise(stamps))
    offset_s = (stamps[0] - take.start_us) / 1e6
    if increasing and -5.0 < offset_s < 5.0:
        yield ok("timestamps", f"increasing, CLOCK_MONOTONIC (first {offset_s:+.2f} s)")
    else:
        yield fail(
            "timestamps",
            f"increasing={increasing}, first {offset_s:+.1f} s from now",
            "sensor timestamps must be CLOCK_MONOTONIC: report the kernel version",
        )
    yield from _decode(camera, take)


def _decode(camera: Camera, take: _Take) -> Iterator[Result]:
    params = camera.params
    muxer = TsMuxer(params, MuxState(base_us=min(p.pts_us for _, p in take.packets)))
    stream = io.BytesIO()
    for _, packet in take.packets:
        stream.write(muxer.mux(packet))
    stream.write(muxer.close())
    stream.seek(0)
    video_frames = 0
    audio_formats: set[tuple[int, int]] = set()
    with av.open(stream, "r", format="mpegts") as container:
        for frame in container.decode():
            if isinstance(frame, av.VideoFrame):
                video_frames += 1
            elif isinstance(frame, av.AudioFrame):
                audio_formats.add((frame.sample_rate, frame.layout.nb_channels))
    sent = len(take.video())
    if video_frames == sent:
        yield ok("decode", f"{video_frames} video frames decode with PyAV")
    else:
        yield fail("decode", f"{video_frames} of {sent} frames decode", "report this")
    if params.audio_codec is None:
        yield skip("audio as declared", "no audio track in this recording")
        return
    declared = (params.audio_rate, params.audio_channels)
    if audio_formats == {declared}:
        yield ok("audio as declared", f"AAC {declared[0]} Hz, {declared[1]} channel(s)")
    else:
        yield fail(
            "audio as declared",
            f"declared {declared}, decoded {sorted(audio_formats)}",
            "report this with the picamera2 version",
        )


def _resources(d: Doctor, take: _Take) -> Iterator[Result]:
    cores = os.cpu_count() or 1
    headroom = 1.0 - take.cpu_seconds / (take.wall_seconds * cores)
    detail = f"{headroom:.0%} of {cores} cores left while recording"
    if headroom >= 0.25:
        yield ok("CPU headroom", detail)
    else:
        yield fail("CPU headroom", detail, "lower the resolution or frame rate")
    if take.cma_free_kib is None:
        yield skip("CMA", f"no CmaFree in {d.paths.meminfo} (no CMA on this kernel)")
    elif take.cma_free_kib >= CMA_FLOOR_KIB or not d.on_pi:
        yield ok("CMA", f"{take.cma_free_kib // 1024} MiB free while recording")
    else:
        yield fail(
            "CMA",
            f"{take.cma_free_kib // 1024} MiB free while recording",
            "raise CMA: dtoverlay=vc4-kms-v3d,cma-512 in /boot/firmware/config.txt",
        )


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def _meminfo_kib(d: Doctor, key: str) -> int | None:
    try:
        text = d.paths.meminfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    return None
