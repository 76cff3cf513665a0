"""The few AAC facts both the camera backends and the muxer need (ISO/IEC 14496-3), kept
apart from PyAV so that neither side loads it to learn them."""

from __future__ import annotations

# the sampling frequency index is the position in this table (§1.6.3.4)
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
AAC_LC = 2  # audio object type


def audio_specific_config(rate: int, channels: int) -> bytes:
    """The 2-byte AAC-LC AudioSpecificConfig: object type, frequency index, channels.
    ValueError names the configuration key and what it accepts."""
    if rate not in AAC_RATES:
        raise ValueError(
            f"camera.audio_rate: {rate} Hz is not an AAC rate; use one of "
            f"{', '.join(map(str, AAC_RATES))}"
        )
    if channels not in (1, 2):
        raise ValueError(f"camera.audio_channels: expected 1 or 2, got {channels}")
    bits = (AAC_LC << 11) | (AAC_RATES.index(rate) << 7) | (channels << 3)
    return bits.to_bytes(2, "big")
