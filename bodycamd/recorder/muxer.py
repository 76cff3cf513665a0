"""MPEG-TS muxing in memory with PyAV: packets in, transport-stream bytes out.

One PyAV muxer per segment, so each segment starts with its own PAT/PMT and decodes on its
own; one `MuxState` per recording, carried from each segment's muxer to the next, so that the
segments of a recording laid end to end are one clean stream (what a player or `ffmpeg -i
concat:` sees):

- timestamps are relative to the start of the recording, not the segment, and a packet
  older than that start (audio the encoder finished after the first keyframe) is dropped
  rather than shifting the segment's whole time line;
- the 4-bit continuity counter of every TS packet runs on per PID across segments (PyAV's
  muxer restarts it at each segment, which a demuxer reads as packet loss at every
  boundary): each 188-byte packet's counter is rewritten from the carried state;
- with AAC audio configured, the recording's first segment opens with two frames of
  silence (about 43 ms) just before its first keyframe, the recording's time zero moved back
  to their start: MPEG-TS carries an audio stream's rate and channels only inside its
  packets, so after a video-only pre-event a player probing the first seconds would describe
  the audio as `sample_rate=0`. No recorded sound is displaced: the silence lies before the
  first recorded packet, where nothing was recorded.

The streams are added for packets already encoded (`add_mux_stream`): PyAV opens no encoder
for them (an unused libx264 and AAC encoder cost ~20 MiB resident and ~2 ms per segment), and
the ADTS header each AAC frame needs in a transport stream is written here.

The bytes never touch a file: they go straight to the evidence writer.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass, field
from fractions import Fraction

import av

from ..aac import audio_specific_config
from ..camera import EncodedPacket, StreamKind, StreamParams

_MICROSECONDS = Fraction(1, 1_000_000)
TS_PACKET = 188
PRIMER_FRAMES = 2
_SYNC = 0x47


@dataclass
class MuxState:
    """What one segment's muxer hands to the next one of the same recording."""

    base_us: int  # the recording's first packet: time zero of every segment
    continuity: dict[int, int] = field(default_factory=dict)  # PID -> last counter written
    primed: bool = False  # the first segment's audio description has been written
    dropped_early: int = 0  # packets older than the recording's start


class _Collector(io.RawIOBase):
    def __init__(self) -> None:
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.buffer += data
        return len(data)


def continue_counters(data: bytearray, continuity: dict[int, int]) -> None:
    """Rewrite, in place, the continuity counter of each whole TS packet in `data` so that it
    follows `continuity` (updated). Packets with a payload advance their PID's counter;
    adaptation-only packets repeat it (ISO/IEC 13818-1 §2.4.3.3).

    FFmpeg's muxer already counts that way within a segment; only where each PID starts is
    off. So each PID's counters move by one constant, fixed by its first packet here, and
    the work is done a column of bytes at a time (one byte per 188-byte packet, selected by
    PID with byte-translation masks), not in a Python loop per packet: at 10 Mbit/s that
    loop was ~7,000 iterations a second, the largest single cost of muxing."""
    whole = len(data) - len(data) % TS_PACKET
    if not whole:
        return
    sync = bytes(data[0:whole:TS_PACKET])
    if sync.count(_SYNC) != len(sync):
        lost = next(i for i, byte in enumerate(sync) if byte != _SYNC)
        raise ValueError(f"muxer output lost TS sync at byte {lost * TS_PACKET}")
    high = bytes(data[1:whole:TS_PACKET]).translate(_PID_HIGH)
    low = bytes(data[2:whole:TS_PACKET])
    flags = bytes(data[3:whole:TS_PACKET])
    size = len(flags)
    column = int.from_bytes(flags, "big")
    moved = 0  # the rewritten counters of every PID handled
    selected = 0  # which packets those are
    pids = {h << 8 | lo for h, lo in set(zip(high, low, strict=True))}
    for pid in pids - {0x1FFF}:  # null packets carry no counter that matters
        mask = int.from_bytes(high.translate(_equal(pid >> 8)), "big") & int.from_bytes(
            low.translate(_equal(pid & 0xFF)), "big"
        )
        where = mask.to_bytes(size, "big")
        first, last = flags[where.find(0xFF)], flags[where.rfind(0xFF)]
        previous = continuity.get(pid)
        advance = 1 if first & 0x10 else 0  # a payload advances the counter
        expected = 0 if previous is None else (previous + advance) & 0x0F
        shift = (expected - first) & 0x0F
        continuity[pid] = (last + shift) & 0x0F
        moved |= int.from_bytes(flags.translate(_shifted(shift)), "big") & mask
        selected |= mask
    data[3:whole:TS_PACKET] = (moved | column & ~selected).to_bytes(size, "big")


_PID_HIGH = bytes(byte & 0x1F for byte in range(256))


@functools.cache
def _equal(value: int) -> bytes:
    """A translation table: 0xFF for `value`, 0x00 for every other byte."""
    return bytes(0xFF if byte == value else 0 for byte in range(256))


@functools.cache
def _shifted(shift: int) -> bytes:
    """A translation table adding `shift` to the counter (low nibble) of a TS header byte."""
    return bytes((byte & 0xF0) | ((byte + shift) & 0x0F) for byte in range(256))


class TsMuxer:
    def __init__(self, params: StreamParams, state: MuxState) -> None:
        self._state = state
        self._out = _Collector()
        self._container = av.open(self._out, "w", format="mpegts")
        # a stream for packets already encoded: `add_stream` would have PyAV open an encoder
        # (libx264 at the camera's resolution, with its threads: ~10 MiB resident and a few
        # ms per segment) that the muxer never uses
        video = self._container.add_mux_stream(
            params.video_codec,
            rate=params.framerate,
            width=params.width,
            height=params.height,
            time_base=Fraction(1, 90_000),
        )
        self._video = video
        self._audio: av.stream.Stream | None = None
        self._adts: _AdtsFraming | None = None
        self._params = params
        if params.audio_codec is not None:
            audio = self._container.add_mux_stream(
                params.audio_codec, rate=params.audio_rate, time_base=Fraction(1, 90_000)
            )
            # without a codec context the TS muxer cannot add ADTS headers from the
            # AudioSpecificConfig itself (it needs one to describe the stream): we add them.
            # Packets that come framed already (a replayed .ts, whose header-only probe has
            # no config) pass through; the primer silence is framed from the rate and
            # channels then, since raw silence in an ADTS stream is dropped by players.
            config = params.audio_extradata
            if not config and params.audio_codec == "aac":
                config = audio_specific_config(params.audio_rate, params.audio_channels)
            self._adts = _AdtsFraming.from_config(config)
            self._audio = audio
        self.packets = 0

    def add(self, packet: EncodedPacket) -> None:
        """Mux one packet; its bytes wait here (`buffered`) until `take`."""
        if packet.stream is StreamKind.AUDIO and self._audio is None:
            return
        if packet.pts_us < self._state.base_us:
            self._state.dropped_early += 1
            return
        stream = self._video if packet.stream is StreamKind.VIDEO else self._audio
        assert stream is not None
        if not self._state.primed:
            self._state.primed = True
            self._prime_audio()
        self._write(packet.data, stream, packet.pts_us, packet.keyframe)
        self.packets += 1

    @property
    def buffered(self) -> int:
        """Muxed bytes not taken yet."""
        return len(self._out.buffer)

    def take(self) -> bytearray:
        """The whole TS packets muxed so far, counters continued: a batch at a time, so the
        counter rewrite runs over many packets at once (continue_counters)."""
        out = self._out.buffer
        whole = len(out) - len(out) % TS_PACKET
        if whole == len(out):
            data, self._out.buffer = out, bytearray()  # handed over, not copied
        else:
            data = out[:whole]
            del out[:whole]
        continue_counters(data, self._state.continuity)
        return data

    def mux(self, packet: EncodedPacket) -> bytes:
        """`add` and `take` in one: the bytes one packet makes."""
        self.add(packet)
        return bytes(self.take())

    def close(self) -> bytes:
        self._container.close()
        data = self.take()
        if self._out.buffer:
            raise ValueError(f"muxer left {len(self._out.buffer)} bytes short of a TS packet")
        return bytes(data)

    def _write(self, data: bytes, stream: av.stream.Stream, pts_us: int, key: bool) -> None:
        if stream is self._audio and self._adts is not None:
            data = self._adts.frame(data)
        out = av.Packet(data)
        out.stream = stream
        out.time_base = _MICROSECONDS
        out.pts = out.dts = pts_us - self._zero_us
        out.is_keyframe = key
        self._container.mux(out)

    @property
    def _primes(self) -> bool:
        return self._audio is not None and self._params.audio_codec == "aac"

    @property
    def _frame_us(self) -> int:
        return 1024 * 1_000_000 // self._params.audio_rate

    @property
    def _zero_us(self) -> int:
        """Time zero of the recording: its first packet, less the silence before it."""
        return self._state.base_us - (PRIMER_FRAMES * self._frame_us if self._primes else 0)

    def _prime_audio(self) -> None:
        """Silence before the first packet (module docstring): two
        frames, as the TS muxer holds an audio packet back until the next one comes."""
        if not self._primes:
            return
        assert self._audio is not None
        silence = silent_aac_frame(self._params.audio_channels)
        for number in range(PRIMER_FRAMES):
            self._write(silence, self._audio, self._zero_us + number * self._frame_us, True)


@dataclass(frozen=True)
class _AdtsFraming:
    """The 7-byte ADTS header (ISO/IEC 13818-7 §6.2, no CRC) that MPEG-TS wants in front of
    each raw AAC frame, from the stream's AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1)."""

    profile: int  # audio object type - 1
    frequency_index: int
    channels: int

    @classmethod
    def from_config(cls, config: bytes | None) -> _AdtsFraming | None:
        """None without a config: the packets must then come framed already."""
        if not config or len(config) < 2:
            return None
        bits = int.from_bytes(config[:2], "big")
        object_type, frequency_index, channels = bits >> 11, (bits >> 7) & 0x0F, (bits >> 3) & 0x0F
        if not 1 <= object_type <= 4 or frequency_index > 12 or not 1 <= channels <= 7:
            raise ValueError(
                f"audio extradata {config.hex()}: expected an AAC AudioSpecificConfig with an "
                "object type of 1-4, a frequency index of 0-12 and 1-7 channels"
            )
        return cls(object_type - 1, frequency_index, channels)

    def frame(self, payload: bytes) -> bytes:
        if payload[:2] and payload[0] == 0xFF and payload[1] & 0xF0 == 0xF0:
            return payload  # framed already
        size = len(payload) + 7
        header = bytes(
            (
                0xFF,
                0xF1,  # MPEG-4, layer 0, no CRC
                self.profile << 6 | self.frequency_index << 2 | self.channels >> 2,
                (self.channels & 3) << 6 | size >> 11,
                (size >> 3) & 0xFF,
                (size & 7) << 5 | 0x1F,  # buffer fullness 0x7FF: variable rate
                0xFC,  # one raw data block
            )
        )
        return header + payload


def silent_aac_frame(channels: int) -> bytes:
    """One raw AAC-LC frame of silence (ISO/IEC 14496-3 §4.4.2.1), written by hand rather than
    by FFmpeg's AAC encoder, whose tables alone are ~9 MiB resident: a mono frame is one
    single-channel element, stereo one channel pair without a common window, each channel a
    long window with no scale-factor bands (max_sfb = 0, so no spectral data at all), then the
    END element."""
    if channels not in (1, 2):
        raise ValueError(f"audio channels: {channels}; silence is made for 1 or 2 channels")
    # id_syn_ele (3), element_instance_tag (4) [, common_window (1)]
    bits = "000" + "0000" if channels == 1 else "001" + "0000" + "0"
    # per channel: global_gain (8), ics_info: reserved (1), window_sequence (2), window_shape
    # (1), max_sfb (6), predictor_data_present (1); then pulse, tns and gain control flags
    bits += ("0" * 8 + "0" + "00" + "0" + "0" * 6 + "0" + "000") * channels
    bits += "111"  # ID_END
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")
