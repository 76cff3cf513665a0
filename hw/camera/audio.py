"""The microphone, as the picamera2 backend opens it: which ALSA device, and what the AAC
track really is.

- Device: the ALSA "default" device on a Pi is the HDMI or headphone output's card, not the
  USB microphone, and card numbers change with plug order. So, unless the config names a
  device, the first USB audio card listed in /proc/asound/cards is used by its card *id*
  (`plughw:CARD=<id>,DEV=0`; `plughw` converts rate and channels if the microphone's native
  format differs).
- Track: picamera2 hands the audio input and output parameters to PyAV as they are. We ask
  for the rate and channel layout of the config on both sides, so the AAC encoder produces
  exactly that, and declare the same in the stream parameters together with the
  AudioSpecificConfig (extradata) that the MPEG-TS muxer turns into each packet's ADTS
  header. Without it the ADTS headers could say mono over stereo payloads.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bodycamd import aac
from bodycamd.config import CameraConfig
from bodycamd.errors import HardwareError

ASOUND_CARDS = Path("/proc/asound/cards")
SYSTEM_ALSA_CONFIG = Path("/usr/share/alsa")
# "  1 [Device         ]: USB-Audio - USB PnP Sound Device"
_CARD_LINE = re.compile(r"^\s*(\d+)\s+\[(\S+)\s*\]:\s+(\S+)\s+-\s+(.*)$")


@dataclass(frozen=True)
class SoundCard:
    number: int
    card_id: str
    driver: str
    name: str


def sound_cards(path: Path = ASOUND_CARDS) -> list[SoundCard]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise HardwareError(f"{path}: cannot list sound cards ({exc.strerror})") from exc
    cards = []
    for line in text.splitlines():
        match = _CARD_LINE.match(line)
        if match:
            number, card_id, driver, name = match.groups()
            cards.append(SoundCard(int(number), card_id, driver, name.strip()))
    return cards


def capture_device(config: CameraConfig, cards: Path = ASOUND_CARDS) -> str:
    """The ALSA device to open: the configured one, else the first USB card by its id."""
    if config.audio_device:
        return config.audio_device
    for card in sound_cards(cards):
        if card.driver == "USB-Audio":
            return f"plughw:CARD={card.card_id},DEV=0"
    raise HardwareError(
        f"{cards}: no USB audio card (microphone) found; plug one in or set camera.audio_device"
    )


def use_system_alsa_config(directory: Path = SYSTEM_ALSA_CONFIG) -> None:
    """PyAV's wheel bundles a libasound that looks for alsa.conf under the path it was built
    in, and without it can name no card. The unit sets ALSA_CONFIG_DIR; this does the same for
    a process started elsewhere (`bodycamd doctor` in a shell), unless it is already set.
    libasound reads it at its first open, so this runs before the microphone is opened."""
    if directory.is_dir():
        os.environ.setdefault("ALSA_CONFIG_DIR", str(directory))


def audio_specific_config(rate: int, channels: int) -> bytes:
    """The AudioSpecificConfig the camera's settings describe (bodycamd.aac), a bad setting
    reported as the hardware configuration error it is."""
    try:
        return aac.audio_specific_config(rate, channels)
    except ValueError as exc:
        raise HardwareError(str(exc)) from exc


def layout_name(channels: int) -> str:
    return "mono" if channels == 1 else "stereo"


def picamera2_audio(config: CameraConfig, device: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(audio_input, audio_output) for picamera2's Encoder: both sides at the config's rate
    and channels, so what is encoded is what we declare."""
    audio_input = {
        "file": device,
        "format": config.audio_format,
        "options": {"sample_rate": str(config.audio_rate), "channels": str(config.audio_channels)},
    }
    audio_output = {
        "codec_name": "aac",
        "rate": config.audio_rate,
        "layout": layout_name(config.audio_channels),
    }
    return audio_input, audio_output
