"""The picamera2 backend on picamera2's real classes (libcamera stubbed, see picamera2_rig):
a microphone that fails gives video only and leaks nothing; the audio track declared is the
one encoded; continuous autofocus where offered; a failed configure closes the camera."""

from __future__ import annotations

import asyncio
import io
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from bodycamd.camera import EncodedPacket, StreamKind
from bodycamd.config import CameraConfig
from bodycamd.errors import HardwareError
from bodycamd.recorder.muxer import MuxState, TsMuxer

from .picamera2_rig import no_libcamera_picamera2

# picamera2's audio thread calls Event.isSet(), deprecated since Python 3.10
isset_deprecated = pytest.mark.filterwarnings("ignore:isSet\\(\\) is deprecated:DeprecationWarning")

CARDS = """\
 0 [vc4hdmi0       ]: vc4-hdmi - vc4-hdmi-0
                      vc4-hdmi-0
 1 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones
                      bcm2835 Headphones
 2 [Device         ]: USB-Audio - USB PnP Sound Device
                      C-Media Electronics Inc. USB PnP Sound Device at usb-xhci-hcd.0-1, full speed
"""


def small_config(**changes: Any) -> CameraConfig:
    base: dict[str, Any] = {"width": 64, "height": 64, "framerate": 30, "bitrate": 200_000}
    return CameraConfig(**(base | changes))


def tracked_encoders(made: list[Any]) -> Any:
    from picamera2.encoders import LibavH264Encoder

    def make(**kwargs: Any) -> Any:
        encoder = LibavH264Encoder(**kwargs)
        made.append(encoder)
        return encoder

    return make


def write_tone(path: Path, *, rate: int, channels: int, seconds: float) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(
            "pcm_s16le", rate=rate, layout="mono" if channels == 1 else "stereo"
        )
        samples = int(rate * seconds)
        t = np.arange(samples) / rate
        wave = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        planes = np.repeat(wave[None, :], channels, axis=0).T.reshape(1, -1)  # interleaved
        frame = av.AudioFrame.from_ndarray(planes, format="s16", layout=stream.layout.name)
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_microphone_found_by_card_id(tmp_path: Path) -> None:
    from hw.camera.audio import capture_device

    cards = tmp_path / "cards"
    cards.write_text(CARDS)
    assert capture_device(small_config(), cards) == "plughw:CARD=Device,DEV=0"
    assert capture_device(small_config(audio_device="hw:CARD=Mic"), cards) == "hw:CARD=Mic"
    cards.write_text(CARDS.split(" 2 [")[0])
    with pytest.raises(HardwareError, match=r"no USB audio card .* set camera.audio_device"):
        capture_device(small_config(), cards)


def test_audio_specific_config_bits() -> None:
    from hw.camera.audio import audio_specific_config

    assert audio_specific_config(48_000, 1) == bytes([0x11, 0x88])  # AAC-LC, 48 kHz, mono
    assert audio_specific_config(48_000, 2) == bytes([0x11, 0x90])
    assert audio_specific_config(44_100, 2) == bytes([0x12, 0x10])
    with pytest.raises(HardwareError, match="not an AAC rate"):
        audio_specific_config(50_000, 1)


def test_failed_microphone_records_video_only_and_leaks_nothing(
    picamera2: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ALSA is asked for a card that does not exist, three times (as the capture component's
    restarts would): each time video starts alone with audio_fault set, and stopping leaves
    no encoder running and no thread behind."""
    from hw.camera.picam import Picamera2Camera

    monkeypatch.setenv("ALSA_CONFIG_DIR", "/usr/share/alsa")
    camera_class = no_libcamera_picamera2()
    made: list[Any] = []
    config = small_config(audio_format="alsa", audio_device="plughw:CARD=NoSuchMic,DEV=0")
    threads_before = threading.active_count()
    for _ in range(3):
        camera = Picamera2Camera(
            config,
            lambda packet: None,
            lambda exc: None,
            picamera2_class=camera_class,
            encoder_class=tracked_encoders(made),
        )
        camera.start()
        assert camera.audio_fault is not None and "NoSuchMic" in camera.audio_fault
        assert camera.params.audio_codec is None  # declared: no audio track
        running = [e for e in made if e.running]
        assert len(running) == 1 and not running[0].audio  # the video-only retry
        assert camera.camera.encoders == {running[0]} and camera.camera.started
        camera.stop()
    assert len(made) == 6  # one failed and one video-only encoder per start
    assert not any(e.running for e in made)
    assert all(c.closed for c in camera_class.instances)
    assert threading.active_count() == threads_before


class GatedReader(io.RawIOBase):
    """A recorded microphone: picamera2 opens it on the calling thread (header and probe
    read freely); its audio thread's reads wait until the first video frame would have
    arrived, so nothing is discarded before the encoder's `_audio_start`, whatever the load."""

    def __init__(self, data: bytes, gate: threading.Event) -> None:
        self._data = io.BytesIO(data)
        self._gate = gate
        self._opener = threading.current_thread()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if threading.current_thread() is not self._opener:
            self._gate.wait()
        return self._data.readinto(buffer)


def recorded_input(audio_input: dict[str, Any], microphone: GatedReader) -> dict[str, Any]:
    """The backend's audio input with the recording in place of the device, probed as little
    as FFmpeg allows (opening still reads ~96 KiB of it, a bounded amount)."""
    options = {**audio_input["options"], "probesize": "32", "analyzeduration": "0"}
    return {**audio_input, "file": microphone, "options": options}


@isset_deprecated
async def test_declared_audio_track_is_what_is_encoded(picamera2: Any, tmp_path: Path) -> None:
    """picamera2's own audio thread reads a stereo 44.1 kHz recording and encodes AAC; with
    the config's mono 48 kHz asked of the encoder, the TS carries mono 48 kHz and decodes so."""
    from hw.camera import audio as audio_module
    from hw.camera.picam import Picamera2Camera

    tone = tmp_path / "tone.wav"
    write_tone(tone, rate=44_100, channels=2, seconds=4.0)
    gate = threading.Event()
    microphone = GatedReader(tone.read_bytes(), gate)
    config = small_config(audio_device="recorded", audio_format="wav", audio_channels=1)
    audio_input, audio_output = audio_module.picamera2_audio(config, "recorded")
    loop = asyncio.get_running_loop()
    received: list[EncodedPacket] = []
    camera = Picamera2Camera(
        config,
        lambda packet: loop.call_soon_threadsafe(received.append, packet),
        lambda exc: None,
        picamera2_class=no_libcamera_picamera2(),
        encoder_class=tracked_encoders([]),
    )
    # the ALSA device name the backend chose, swapped for the recording, nothing else
    real = audio_module.picamera2_audio
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            "hw.camera.picam.picamera2_audio",
            lambda cfg, device: (recorded_input(real(cfg, device)[0], microphone), audio_output),
        )
        camera.start()
    assert camera.audio_fault is None
    encoder = next(iter(camera.camera.encoders))
    assert encoder.audio_input["options"].items() >= audio_input["options"].items()
    encoder._audio_start.set()  # what the first video frame does in Encoder.encode
    gate.set()
    await asyncio.to_thread(encoder._audio_thread.join, 30)  # the recording's end ends it
    camera.stop()
    await asyncio.sleep(0)
    audio = [p for p in received if p.stream is StreamKind.AUDIO]
    # ~47 AAC frames of 1024 samples a second at 48 kHz; opening reads up to ~0.6 s of the
    # recording on the calling thread, which the audio thread may discard before the gate
    assert len(audio) > 47 * 3
    params = camera.params
    assert (params.audio_codec, params.audio_rate, params.audio_channels) == ("aac", 48_000, 1)
    assert params.audio_extradata == bytes([0x11, 0x88])

    video = EncodedPacket(StreamKind.VIDEO, idr_frame(), True, 0)
    muxer = TsMuxer(params, MuxState(base_us=0))
    ts = muxer.mux(video) + b"".join(muxer.mux(p) for p in audio) + muxer.close()
    path = tmp_path / "out.ts"
    path.write_bytes(ts)
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert (stream.codec_context.sample_rate, stream.codec_context.channels) == (48_000, 1)
        frames = list(container.decode(stream))
    assert len(frames) >= len(audio) - 2
    assert {(f.sample_rate, f.layout.name) for f in frames} == {(48_000, "mono")}
    energy = np.sqrt(np.mean(np.concatenate([f.to_ndarray()[0] for f in frames[5:]]) ** 2))
    assert 0.1 < energy < 0.4  # the tone came through (0.3 amplitude → RMS ≈ 0.21)


def idr_frame() -> bytes:
    codec = av.CodecContext.create("libx264", "w")
    codec.width = codec.height = 64
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, 30)
    frame = av.VideoFrame(64, 64, "yuv420p")
    frame.pts = 0
    return b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])


@pytest.mark.parametrize(
    ("offered", "wanted", "af_mode"),
    [(True, True, 2), (False, True, None), (True, False, None)],
)
def test_continuous_autofocus_when_offered(
    picamera2: Any, offered: bool, wanted: bool, af_mode: int | None
) -> None:
    from hw.camera.picam import Picamera2Camera

    camera = Picamera2Camera(
        small_config(autofocus=wanted, audio=False),
        lambda packet: None,
        lambda exc: None,
        picamera2_class=no_libcamera_picamera2(offers_autofocus=offered),
        encoder_class=tracked_encoders([]),
    )
    controls = camera.camera.configured["controls"]
    assert controls.get("AfMode") == af_mode and controls["FrameRate"] == 30
    camera.stop()


def test_failed_configure_closes_the_camera(picamera2: Any) -> None:
    from hw.camera.picam import Picamera2Camera

    camera_class = no_libcamera_picamera2(configure_error=RuntimeError("bad sensor mode"))
    with pytest.raises(RuntimeError, match="bad sensor mode"):
        Picamera2Camera(
            small_config(),
            lambda packet: None,
            lambda exc: None,
            picamera2_class=camera_class,
            encoder_class=tracked_encoders([]),
        )
    (held,) = camera_class.instances
    assert held.closed and not held.is_open


def test_pyav_wheel_finds_alsa_config_only_with_alsa_config_dir() -> None:
    """The libasound inside PyAV's wheel looks for alsa.conf under its build path; with
    ALSA_CONFIG_DIR (the unit's Environment=, or use_system_alsa_config) it reads the OS's
    and gets as far as looking the card up."""
    import os
    import subprocess
    import sys

    probe = (
        "import av\n"
        "try:\n    av.open(file='plughw:CARD=NoSuchMic,DEV=0', format='alsa')\n"
        "except OSError:\n    pass\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ALSA_CONFIG_DIR"}
    bare = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert "alsa.conf" in bare.stderr  # "Cannot access file <build path>/alsa.conf"
    env["ALSA_CONFIG_DIR"] = "/usr/share/alsa"
    fixed = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert "alsa.conf" not in fixed.stderr and "NoSuchMic" in fixed.stderr, fixed.stderr


def test_doctor_describes_the_camera_module(picamera2: Any, tmp_path: Path) -> None:
    """The doctor's camera lines read picamera2's own properties, controls and platform."""
    from bodycamd.config import Config
    from bodycamd.doctor import Doctor
    from bodycamd.doctor_hardware import describe_camera
    from hw.camera.picam import Picamera2Camera

    camera = Picamera2Camera(
        small_config(audio=False),
        lambda packet: None,
        lambda exc: None,
        picamera2_class=no_libcamera_picamera2(model="imx708_wide"),
        encoder_class=tracked_encoders([]),
    )
    lines = [r.line() for r in describe_camera(Doctor(Config(hardware="pi")), camera)]
    camera.stop()
    assert lines[:2] == [
        "[ OK ] camera: imx708_wide",
        "[ OK ] autofocus: continuous (AfMode offered)",
    ]
    assert lines[2].startswith("[ OK ] H.264 encoder: ")  # which one depends on the platform
