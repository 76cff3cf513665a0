"""Configuration: one TOML file parsed into frozen, typed dataclasses.

Plain dataclasses rather than pydantic or msgspec: the schema is small, the daemon runs on a
Pi where every dependency costs start-up time and RAM, and the error messages this product
needs ("file: key: what was expected", with a did-you-mean for unknown keys) are easier to get
exactly right by walking the fields ourselves than by rewording another library's errors.

Each field carries its documentation and bounds in ``metadata``; `docs/configuration.md` and
`config/bodycamd.example.toml` are checked against them by the tests so they cannot drift.
Relative paths in a file are resolved against the directory holding that file, so a config
means the same thing whatever the working directory of whoever starts the daemon.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DEFAULT_CONFIG_PATH = Path("/etc/bodycamd/bodycamd.toml")

Hardware = Literal["pi", "simulated"]
LogLevel = Literal["debug", "info", "warning", "error"]
CameraBackendName = Literal["auto", "picamera2", "synthetic", "file"]


def _doc(
    text: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    size: bool = False,
    path: bool = False,
) -> Any:
    return {"doc": text, "min": minimum, "max": maximum, "size": size, "path": path}


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%|B|kB|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$")
_UNITS = {
    None: 1,
    "B": 1,
    "kB": 10**3,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}


def parse_size(text: str, total: int) -> int:
    """Bytes from "64GB", "500 MiB", "123456" or "90%" (of `total`)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f'expected a size like "90%", "32GB" or "512MiB", got "{text}"')
    number, unit = float(match.group(1)), match.group(2)
    if unit == "%":
        if not 0 < number <= 100:
            raise ValueError(f"expected a percentage above 0 and at most 100, got {text}")
        return int(total * number / 100)
    return int(number * _UNITS[unit])


@dataclass(frozen=True)
class DeviceConfig:
    name: str = field(
        default="",
        metadata=_doc("Device name written into every segment header; empty means the hostname."),
    )
    state_dir: Path = field(
        default=Path("/var/lib/bodycamd"),
        metadata=_doc("Keys, segments being written, sealed segments and the journal."),
    )
    runtime_dir: Path = field(
        default=Path("/run/bodycamd"),
        metadata=_doc("Runtime files such as the control socket; cleared at boot."),
    )


@dataclass(frozen=True)
class EvidenceConfig:
    public_key: Path = field(
        default=Path("/etc/bodycamd/evidence.pub"),
        metadata=_doc(
            "Evidence public key from the back end (`bodycamd keys init-evidence`); every "
            "segment's data key is wrapped to it. The KEM (X25519 or ML-KEM-768+X25519) is "
            "the one the key file names."
        ),
    )
    development_keys: bool = field(
        default=False,
        metadata=_doc(
            "If public_key is missing, create a DEVELOPMENT evidence key pair there (private "
            "half beside it, ending in .key) instead of failing. Never on a device in service."
        ),
    )


@dataclass(frozen=True)
class CameraConfig:
    backend: CameraBackendName = field(
        default="auto",
        metadata=_doc(
            'Where frames come from: "picamera2" (the camera module), "synthetic" (a test '
            'pattern encoded with libx264), "file" (replay `file`), or "auto": picamera2 when '
            'hardware = "pi", synthetic when "simulated".'
        ),
    )
    width: int = field(default=1920, metadata=_doc("Frame width.", minimum=64, maximum=4096))
    height: int = field(default=1080, metadata=_doc("Frame height.", minimum=64, maximum=4096))
    framerate: int = field(default=30, metadata=_doc("Frames per second.", minimum=1, maximum=120))
    bitrate: int = field(
        default=10_000_000,
        metadata=_doc("H.264 bitrate in bits per second.", minimum=100_000, maximum=50_000_000),
    )
    keyframe_seconds: float = field(
        default=1.0,
        metadata=_doc(
            "Seconds between keyframes (IDR, with SPS/PPS before each): segments and the "
            "pre-event buffer are accurate to this.",
            minimum=0.1,
            maximum=10.0,
        ),
    )
    audio: bool = field(
        default=True,
        metadata=_doc(
            "Record an AAC audio track. If the microphone cannot start, video records alone "
            "and the health flag audio_fault is raised."
        ),
    )
    audio_device: str = field(
        default="",
        metadata=_doc(
            "ALSA capture device (picamera2 backend); empty finds the first USB audio card in "
            "/proc/asound/cards at start-up and names it by its card id "
            '("plughw:CARD=<id>,DEV=0"), which survives renumbering.'
        ),
    )
    audio_format: str = field(
        default="alsa",
        metadata=_doc(
            'PyAV input format of the microphone: "alsa" (the PyAV wheel has no "pulse").'
        ),
    )
    audio_rate: int = field(
        default=48_000,
        metadata=_doc(
            "Audio sample rate in Hz, captured and encoded (an AAC rate: 8000 to 96000).",
            minimum=8_000,
            maximum=96_000,
        ),
    )
    audio_channels: int = field(
        default=1,
        metadata=_doc("Audio channels captured and encoded: 1 (mono) or 2.", minimum=1, maximum=2),
    )
    autofocus: bool = field(
        default=True,
        metadata=_doc(
            "Continuous autofocus when the camera offers it (Camera Module 3); fixed-focus "
            "cameras ignore this."
        ),
    )
    file: str = field(
        default="",
        metadata=_doc('Video file replayed (packets, no re-encode) by backend "file".', path=True),
    )
    realtime: bool = field(
        default=True,
        metadata=_doc("Pace the synthetic and file backends in real time (off only for tests)."),
    )
    stall_seconds: float = field(
        default=2.0,
        metadata=_doc(
            "No frame for this long marks the camera faulty; it is restarted with backoff.",
            minimum=0.1,
            maximum=60.0,
        ),
    )


@dataclass(frozen=True)
class RecorderConfig:
    segment_seconds: float = field(
        default=60.0,
        metadata=_doc(
            "A new segment starts at the first keyframe after this many seconds.",
            minimum=1.0,
            maximum=3600.0,
        ),
    )
    segment_max_bytes: str = field(
        default="512MiB",
        metadata=_doc("...or at the first keyframe after this much footage.", size=True),
    )
    durability_interval: float = field(
        default=0.5,
        metadata=_doc(
            "Seconds of footage between signed checkpoints (fsync): the most a power cut loses.",
            minimum=0.1,
            maximum=60.0,
        ),
    )
    pre_event_seconds: float = field(
        default=30.0,
        metadata=_doc(
            "Seconds of video kept in RAM before the record button (0 to 120); never on flash.",
            minimum=0.0,
            maximum=120.0,
        ),
    )
    pre_event_audio: bool = field(
        default=False, metadata=_doc("Keep audio in the pre-event buffer as well as video.")
    )
    pre_event_max_bytes: str = field(
        default="96MiB",
        metadata=_doc("RAM cap of the pre-event buffer; oldest GOPs go first.", size=True),
    )
    queue_bytes: str = field(
        default="16MiB",
        metadata=_doc(
            "RAM between camera and writer; when full, whole GOPs are dropped and the gap is "
            "audited.",
            size=True,
        ),
    )


@dataclass(frozen=True)
class StorageConfig:
    quota: str = field(
        default="90%",
        metadata=_doc(
            'Most flash that footage may use: bytes ("32GB", "500MiB") or a percentage of the '
            "filesystem holding state_dir.",
            size=True,
        ),
    )
    reserve: str = field(
        default="256MiB",
        metadata=_doc(
            "Kept free on the filesystem for the journal and the filesystem itself; footage "
            "never uses it.",
            size=True,
        ),
    )
    low_minutes: float = field(
        default=60.0,
        metadata=_doc(
            "Raise storage_low when less than this many minutes of footage fit.",
            minimum=0.0,
            maximum=6000.0,
        ),
    )
    min_free_minutes: float = field(
        default=5.0,
        metadata=_doc(
            "Refuse to start a recording when less than this many minutes of footage fit.",
            minimum=0.0,
            maximum=600.0,
        ),
    )
    assumed_bitrate: int = field(
        default=10_000_000,
        metadata=_doc(
            "Bits per second used to estimate minutes left until a recording measures its own.",
            minimum=100_000,
            maximum=200_000_000,
        ),
    )


DockSource = Literal["gpio", "power_supply", "endpoint"]


@dataclass(frozen=True)
class GpioConfig:
    board: str = field(
        default="",
        metadata=_doc(
            'Wiring profile from hw/boards/: "pi4-prototype" or "pi5-prototype"; empty takes '
            "the profile wired for the model in /proc/device-tree/model. A profile wired for "
            "another model is refused."
        ),
    )
    record_button: int = field(
        default=-1,
        metadata=_doc(
            "BCM pin of the record button; -1 takes the board's.", minimum=-1, maximum=27
        ),
    )
    record_led: int = field(
        default=-1,
        metadata=_doc("BCM pin of the record LED (faces the officer).", minimum=-1, maximum=27),
    )
    announce_led: int = field(
        default=-1,
        metadata=_doc(
            "BCM pin of the announce LED (faces the person filmed).", minimum=-1, maximum=27
        ),
    )
    status_green: int = field(
        default=-1, metadata=_doc("BCM pin of the green status LED.", minimum=-1, maximum=27)
    )
    status_amber: int = field(
        default=-1, metadata=_doc("BCM pin of the amber status LED.", minimum=-1, maximum=27)
    )
    buzzer: int = field(default=-1, metadata=_doc("BCM pin of the buzzer.", minimum=-1, maximum=27))
    dock_sense: int = field(
        default=-1,
        metadata=_doc("BCM pin of the dock contact (low when docked).", minimum=-1, maximum=27),
    )
    debounce_seconds: float = field(
        default=0.05,
        metadata=_doc(
            "Button edges closer than this are contact bounce.", minimum=0.0, maximum=1.0
        ),
    )
    hold_seconds: float = field(
        default=3.0,
        metadata=_doc("Holding the button this long stops a recording.", minimum=0.5, maximum=10.0),
    )
    double_press_seconds: float = field(
        default=0.5,
        metadata=_doc(
            "Two presses within this while recording add a marker.", minimum=0.1, maximum=2.0
        ),
    )


@dataclass(frozen=True)
class DockConfig:
    source: DockSource = field(
        default="gpio",
        metadata=_doc(
            'How docking is sensed: "gpio" (the gpio.dock_sense contact), "power_supply" (the '
            'file power_supply_online reads "1") or "endpoint" (endpoint accepts a TCP '
            "connection; benches without a dock contact)."
        ),
    )
    stable_seconds: float = field(
        default=2.0,
        metadata=_doc("A dock level must hold this long to count.", minimum=0.0, maximum=60.0),
    )
    power_supply_online: str = field(
        default="/sys/class/power_supply/usb/online",
        metadata=_doc('File read by source = "power_supply".', path=True),
    )
    endpoint: str = field(default="", metadata=_doc('host:port probed by source = "endpoint".'))


# Keys that moved to another section: refused with one line naming the new key (a silently
# ignored dock setting would leave a camera that never uploads).
MOVED_KEYS = {
    "gpio.dock_source": "dock.source",
    "gpio.dock_stable_seconds": "dock.stable_seconds",
    "gpio.power_supply_online": "dock.power_supply_online",
    "gpio.dock_endpoint": "dock.endpoint",
}


@dataclass(frozen=True)
class IndicatorConfig:
    announce_blink_hz: float = field(
        default=0.0,
        metadata=_doc(
            "Blink the announce LED at this rate while recording; 0 keeps it lit.",
            minimum=0.0,
            maximum=10.0,
        ),
    )
    reminder_seconds: float = field(
        default=120.0,
        metadata=_doc(
            "A short reminder tone this often while recording.", minimum=10.0, maximum=3600.0
        ),
    )
    stealth_allowed: bool = field(
        default=False,
        metadata=_doc(
            "Policy allows stealth (all indicators off while recording); every change is audited."
        ),
    )


@dataclass(frozen=True)
class SessionConfig:
    personnel_pattern: str = field(
        default=r"[0-9]{6,8}",
        metadata={
            **_doc("Regular expression a personnel number must match in full."),
            "regex": True,
        },
    )
    roster: str = field(
        default="",
        metadata=_doc(
            "Optional file of allowed personnel numbers, one per line (# comments); empty "
            "means any number matching the pattern.",
            path=True,
        ),
    )
    allow_anonymous_recording: bool = field(
        default=False,
        metadata=_doc(
            "Let recording start with nobody logged in (benches only); every such start is audited."
        ),
    )
    logout_on_dock: bool = field(
        default=True,
        metadata=_doc(
            "Docking ends the shift: log the officer out once their last segment is sealed."
        ),
    )


@dataclass(frozen=True)
class ControlConfig:
    max_clients: int = field(
        default=16,
        metadata=_doc(
            "Request clients served at once; more get a busy error, except that a `status` "
            "request always finds a reserved slot.",
            minimum=1,
            maximum=256,
        ),
    )
    max_streams: int = field(
        default=16,
        metadata=_doc(
            "Event streams (`bodycamctl watch`) at once, counted apart from request clients; "
            "more get a busy error.",
            minimum=1,
            maximum=256,
        ),
    )
    idle_timeout: float = field(
        default=30.0,
        metadata=_doc(
            "Seconds a control client may stay silent before it is disconnected (event "
            "streams are exempt, but a stream that does not read for this long is cut off).",
            minimum=1.0,
            maximum=3600.0,
        ),
    )


@dataclass(frozen=True)
class DaemonConfig:
    stop_timeout: float = field(
        default=10.0,
        metadata=_doc(
            "Seconds that components get on SIGTERM to seal what they hold before the daemon "
            "gives up and exits non-zero.",
            minimum=0.1,
            maximum=600.0,
        ),
    )
    log_level: LogLevel = field(
        default="info", metadata=_doc("Lowest level logged: debug, info, warning or error.")
    )


@dataclass(frozen=True)
class UploadConfig:
    endpoint: str = field(
        default="",
        metadata=_doc(
            "tus creation URL of the ingest, e.g. https://ingest.example:8443/files/. Empty: "
            "nothing is uploaded and footage stays on flash (docs/upload.md)."
        ),
    )
    receipts_url: str = field(
        default="",
        metadata=_doc(
            "Where receipts are asked for: GET {receipts_url}/{digest}. Empty means "
            "{endpoint}/receipts; the project's ingest serves them at https://HOST:PORT/receipts."
        ),
    )
    ca_file: str = field(
        default="",
        metadata=_doc(
            "CA certificate (PEM) the ingest's server certificate must chain to; the system "
            "trust store is never used.",
            path=True,
        ),
    )
    client_cert: str = field(
        default="",
        metadata=_doc(
            "This device's TLS client certificate (PEM) issued at enrolment; its CN is "
            "device.name.",
            path=True,
        ),
    )
    client_key: str = field(
        default="",
        metadata=_doc(
            "Its private key; empty means keys/tls-client.key in state_dir, made on the device "
            "by `bodycamd keys csr` (it never leaves the device).",
            path=True,
        ),
    )
    receipt_keys: str = field(
        default="",
        metadata=_doc(
            "Ingest receipt public keys (Ed25519) trusted to sign receipts, comma-separated: "
            "each a file (PEM, raw or base64) or the base64 of the 32-byte key. A segment is "
            "deleted only against a receipt signed by one of them."
        ),
    )
    chunk_size: str = field(
        default="8MiB",
        metadata=_doc(
            "Bytes per PATCH (64KiB to 256MiB); the acknowledged offset is journalled after each.",
            size=True,
        ),
    )
    max_rate: str = field(
        default="0",
        metadata=_doc(
            'Upload rate cap in bytes per second, e.g. "2MB"; 0 is unlimited.', size=True
        ),
    )
    retry_min: float = field(
        default=1.0,
        metadata=_doc("First backoff after a failure, in seconds.", minimum=0.1, maximum=60.0),
    )
    retry_max: float = field(
        default=300.0,
        metadata=_doc(
            "Longest backoff, in seconds; a refused segment is retried after this.",
            minimum=1.0,
            maximum=86400.0,
        ),
    )
    development: bool = field(
        default=False,
        metadata=_doc(
            "Allow a plain http:// endpoint (no TLS): benches and interop tests only, never "
            "a device in service."
        ),
    )


@dataclass(frozen=True)
class Config:
    hardware: Hardware = field(
        default="pi",
        metadata=_doc(
            'Default backends: "pi" (picamera2, lgpio pins) or "simulated" (synthetic camera, '
            "gpiozero MockFactory pins)."
        ),
    )
    device: DeviceConfig = field(default_factory=DeviceConfig)
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    recorder: RecorderConfig = field(default_factory=RecorderConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    gpio: GpioConfig = field(default_factory=GpioConfig)
    dock: DockConfig = field(default_factory=DockConfig)
    indicators: IndicatorConfig = field(default_factory=IndicatorConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    upload: UploadConfig = field(default_factory=UploadConfig)
    source: Path | None = field(default=None, compare=False, metadata={"internal": True})


def public_fields(cls: type[Any]) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


def all_keys(cls: type[Any] = Config, prefix: str = "") -> list[str]:
    """Every dotted key the schema accepts, for suggestions and documentation checks."""
    keys: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in public_fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            keys.extend(all_keys(typing.cast(type[Any], hint), f"{prefix}{f.name}."))
        else:
            keys.append(prefix + f.name)
    return keys
