"""The sections of the recording path: the device's name and directories, the evidence
key, the camera, the recorder (segments, pre-event buffer) and the flash quota."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..fields import doc

CameraBackendName = Literal["auto", "picamera2", "synthetic", "file"]


@dataclass(frozen=True)
class DeviceConfig:
    name: str = field(
        default="",
        metadata=doc("Device name written into every segment header; empty means the hostname."),
    )
    state_dir: Path = field(
        default=Path("/var/lib/bodycamd"),
        metadata=doc("Keys, segments being written, sealed segments and the journal."),
    )
    runtime_dir: Path = field(
        default=Path("/run/bodycamd"),
        metadata=doc("Runtime files such as the control socket; cleared at boot."),
    )


@dataclass(frozen=True)
class EvidenceConfig:
    public_key: Path = field(
        default=Path("/etc/bodycamd/evidence.pub"),
        metadata=doc(
            "Evidence public key from the back end (`bodycamd keys init-evidence`); every "
            "segment's data key is wrapped to it. The KEM (X25519 or ML-KEM-768+X25519) is "
            "the one the key file names."
        ),
    )
    development_keys: bool = field(
        default=False,
        metadata=doc(
            "If public_key is missing, create a DEVELOPMENT evidence key pair there (private "
            "half beside it, ending in .key) instead of failing. Never on a device in service."
        ),
    )


@dataclass(frozen=True)
class CameraConfig:
    backend: CameraBackendName = field(
        default="auto",
        metadata=doc(
            'Where frames come from: "picamera2" (the camera module), "synthetic" (a test '
            'pattern encoded with libx264), "file" (replay `file`), or "auto": picamera2 when '
            'hardware = "pi", synthetic when "simulated".'
        ),
    )
    width: int = field(default=1920, metadata=doc("Frame width.", minimum=64, maximum=4096))
    height: int = field(default=1080, metadata=doc("Frame height.", minimum=64, maximum=4096))
    framerate: int = field(default=30, metadata=doc("Frames per second.", minimum=1, maximum=120))
    bitrate: int = field(
        default=10_000_000,
        metadata=doc("H.264 bitrate in bits per second.", minimum=100_000, maximum=50_000_000),
    )
    keyframe_seconds: float = field(
        default=1.0,
        metadata=doc(
            "Seconds between keyframes (IDR, with SPS/PPS before each): segments and the "
            "pre-event buffer are accurate to this.",
            minimum=0.1,
            maximum=10.0,
        ),
    )
    audio: bool = field(
        default=True,
        metadata=doc(
            "Record an AAC audio track. If the microphone cannot start, video records alone "
            "and the health flag audio_fault is raised."
        ),
    )
    audio_device: str = field(
        default="",
        metadata=doc(
            "ALSA capture device (picamera2 backend); empty finds the first USB audio card in "
            "/proc/asound/cards at start-up and names it by its card id "
            '("plughw:CARD=<id>,DEV=0"), which survives renumbering.'
        ),
    )
    audio_format: str = field(
        default="alsa",
        metadata=doc(
            'PyAV input format of the microphone: "alsa" (the PyAV wheel has no "pulse").'
        ),
    )
    audio_rate: int = field(
        default=48_000,
        metadata=doc(
            "Audio sample rate in Hz, captured and encoded (an AAC rate: 8000 to 96000).",
            minimum=8_000,
            maximum=96_000,
        ),
    )
    audio_channels: int = field(
        default=1,
        metadata=doc("Audio channels captured and encoded: 1 (mono) or 2.", minimum=1, maximum=2),
    )
    autofocus: bool = field(
        default=True,
        metadata=doc(
            "Continuous autofocus when the camera offers it (Camera Module 3); fixed-focus "
            "cameras ignore this."
        ),
    )
    file: str = field(
        default="",
        metadata=doc('Video file replayed (packets, no re-encode) by backend "file".', path=True),
    )
    realtime: bool = field(
        default=True,
        metadata=doc("Pace the synthetic and file backends in real time (off only for tests)."),
    )
    stall_seconds: float = field(
        default=2.0,
        metadata=doc(
            "No frame for this long marks the camera faulty; it is restarted with backoff.",
            minimum=0.1,
            maximum=60.0,
        ),
    )


@dataclass(frozen=True)
class RecorderConfig:
    segment_seconds: float = field(
        default=60.0,
        metadata=doc(
            "A new segment starts at the first keyframe after this many seconds.",
            minimum=1.0,
            maximum=3600.0,
        ),
    )
    segment_max_bytes: str = field(
        default="512MiB",
        metadata=doc("...or at the first keyframe after this much footage.", size=True),
    )
    durability_interval: float = field(
        default=0.5,
        metadata=doc(
            "Seconds of footage between signed checkpoints (fsync): the most a power cut loses.",
            minimum=0.1,
            maximum=60.0,
        ),
    )
    pre_event_seconds: float = field(
        default=30.0,
        metadata=doc(
            "Seconds of video kept in RAM before the record button (0 to 120); never on flash.",
            minimum=0.0,
            maximum=120.0,
        ),
    )
    pre_event_audio: bool = field(
        default=False, metadata=doc("Keep audio in the pre-event buffer as well as video.")
    )
    pre_event_max_bytes: str = field(
        default="96MiB",
        metadata=doc("RAM cap of the pre-event buffer; oldest GOPs go first.", size=True),
    )
    queue_bytes: str = field(
        default="16MiB",
        metadata=doc(
            "RAM between camera and writer; when full, whole GOPs are dropped and the gap is "
            "audited.",
            size=True,
        ),
    )


@dataclass(frozen=True)
class StorageConfig:
    quota: str = field(
        default="90%",
        metadata=doc(
            'Most flash that footage may use: bytes ("32GB", "500MiB") or a percentage of the '
            "filesystem holding state_dir.",
            size=True,
        ),
    )
    reserve: str = field(
        default="256MiB",
        metadata=doc(
            "Kept free on the filesystem for the journal and the filesystem itself; footage "
            "never uses it.",
            size=True,
        ),
    )
    low_minutes: float = field(
        default=60.0,
        metadata=doc(
            "Raise storage_low when less than this many minutes of footage fit.",
            minimum=0.0,
            maximum=6000.0,
        ),
    )
    min_free_minutes: float = field(
        default=5.0,
        metadata=doc(
            "Refuse to start a recording when less than this many minutes of footage fit.",
            minimum=0.0,
            maximum=600.0,
        ),
    )
    assumed_bitrate: int = field(
        default=10_000_000,
        metadata=doc(
            "Bits per second used to estimate minutes left until a recording measures its own.",
            minimum=100_000,
            maximum=200_000_000,
        ),
    )
