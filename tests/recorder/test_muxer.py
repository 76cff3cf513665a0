"""A recording as a player sees it: its segments, decrypted and laid end to end, decode as one
stream without a single warning from FFmpeg (continuity counters and timestamps run on across
segments), and the audio stream is described from the first packet even when the pre-event is
video only."""

from __future__ import annotations

import dataclasses
import io
import itertools
from pathlib import Path

import av
import av.logging
import pytest

from bodycamd.camera import EncodedPacket, StreamKind
from bodycamd.recorder.muxer import MuxState, TsMuxer, _AdtsFraming, continue_counters
from bodycamd.recorder.recorder import Recorder
from tests.recorder.helpers import decode_capturing, decrypt, recorder_config, synthetic_packets
from tests.storage.helpers import make_spool, storage_for

PACKETS, PARAMS = synthetic_packets(7)


async def record(
    tmp_path: Path, packets: list[EncodedPacket], *, pre_event: float, started_at: int
) -> list[bytes]:
    spool, keys = make_spool(tmp_path / "state")
    config = recorder_config(segment_seconds=2.0, pre_event_seconds=pre_event)
    recorder = Recorder(storage_for(spool), config, PARAMS)
    recorder.set_buffering(True)
    for packet in packets[:started_at]:
        await recorder.handle(packet)
    await recorder.start(None, "test")
    for packet in packets[started_at:]:
        await recorder.handle(packet)
    await recorder.stop("test")
    return [decrypt(spool.layout.root / row.path, keys)[0] for row in spool.journal.segments()]


@pytest.mark.parametrize("pre_event", [0.0, 3.0])
async def test_a_recording_decodes_whole_without_a_warning(
    tmp_path: Path, pre_event: float
) -> None:
    segments = await record(tmp_path, PACKETS, pre_event=pre_event, started_at=len(PACKETS) // 2)
    assert len(segments) >= 2
    warnings, dts = decode_capturing(b"".join(segments))
    assert warnings == []
    assert set(dts) == {0, 1}
    for stream in dts.values():
        assert all(b > a for a, b in itertools.pairwise(stream)), "DTS strictly increasing"


async def test_audio_is_described_from_the_first_packet_with_a_video_only_pre_event(
    tmp_path: Path,
) -> None:
    segments = await record(tmp_path, PACKETS, pre_event=3.0, started_at=len(PACKETS) * 3 // 4)
    # a probe that sees only the first few hundred KB, as ffprobe on a long pre-event does
    options = {"probesize": "32768", "analyzeduration": "500000"}
    with av.open(io.BytesIO(segments[0]), format="mpegts", options=options) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.sample_rate == PARAMS.audio_rate
        assert audio.codec_context.channels == PARAMS.audio_channels


def test_continuity_counters_run_on_across_muxers() -> None:
    state = MuxState(PACKETS[0].pts_us)
    first, second = TsMuxer(PARAMS, state), TsMuxer(PARAMS, state)
    data = first.mux(PACKETS[0]) + first.close()
    data += second.mux(PACKETS[1]) + second.close()
    counters: dict[int, int] = {}
    for start in range(0, len(data), 188):
        pid = ((data[start + 1] & 0x1F) << 8) | data[start + 2]
        has_payload, counter = data[start + 3] & 0x10, data[start + 3] & 0x0F
        if pid in counters and has_payload:
            assert counter == (counters[pid] + 1) % 16, (start, pid)
        counters[pid] = counter
    carried = dict(state.continuity)
    again = bytearray(data[:188])
    pid = ((again[1] & 0x1F) << 8) | again[2]
    continue_counters(again, carried)
    assert carried[pid] == (state.continuity[pid] + 1) % 16  # a third muxer goes on counting


def counters_one_by_one(data: bytes, continuity: dict[int, int]) -> bytes:
    """The rule of ISO/IEC 13818-1 §2.4.3.3 applied packet by packet: the oracle for the
    column-at-a-time rewrite."""
    out = bytearray(data)
    for start in range(0, len(out), 188):
        pid = ((out[start + 1] & 0x1F) << 8) | out[start + 2]
        if pid == 0x1FFF:
            continue
        previous = continuity.get(pid)
        step = 1 if out[start + 3] & 0x10 else 0
        counter = 0 if previous is None else (previous + step) % 16
        continuity[pid] = counter
        out[start + 3] = (out[start + 3] & 0xF0) | counter
    return bytes(out)


@pytest.mark.parametrize("carried", [{}, {0x100: 15, 0x101: 3, 0: 7}, {0x100: 4, 0x1000: 9}])
def test_counters_rewritten_a_column_at_a_time_follow_the_rule(carried: dict[int, int]) -> None:
    muxer = TsMuxer(PARAMS, MuxState(PACKETS[0].pts_us))
    for packet in PACKETS[:40]:
        muxer.add(packet)
    raw = bytes(muxer._out.buffer)  # FFmpeg's own counters, before any rewrite
    raw = raw[: len(raw) - len(raw) % 188]
    null = bytes([0x47, 0x1F, 0xFF, 0x1A]) + b"\xff" * 184  # a counter that must not change
    raw = raw[: 188 * 3] + null + raw[188 * 3 :]
    expected_state, state = dict(carried), dict(carried)
    expected = counters_one_by_one(raw, expected_state)
    data = bytearray(raw)
    continue_counters(data, state)
    assert bytes(data) == expected and state == expected_state
    assert data[188 * 3 : 188 * 4] == null
    muxer.close()


def test_lost_sync_is_named_by_byte() -> None:
    data = bytearray(bytes([0x47, 0, 0, 0x10]) + bytes(184)) * 3
    data[376] = 0x00
    with pytest.raises(ValueError, match="lost TS sync at byte 376"):
        continue_counters(data, {})


def test_packets_older_than_the_recording_are_dropped_not_shifted() -> None:
    state = MuxState(PACKETS[10].pts_us)
    muxer = TsMuxer(PARAMS, state)
    assert muxer.mux(PACKETS[0]) == b"" and state.dropped_early == 1
    muxer.close()


def test_silence_is_framed_when_the_packets_come_framed_without_a_config() -> None:
    """A replayed .ts gives ADTS-framed AAC and no AudioSpecificConfig (its header-only
    probe has none): the primer silence must be framed too, from the rate and channels, or
    players drop it and the audio is not described from the first packet."""
    framing = _AdtsFraming.from_config(PARAMS.audio_extradata)
    assert framing is not None
    params = dataclasses.replace(PARAMS, audio_extradata=None)
    packets = [
        dataclasses.replace(p, data=framing.frame(p.data)) if p.stream is StreamKind.AUDIO else p
        for p in PACKETS
    ]
    state = MuxState(packets[0].pts_us)
    muxer = TsMuxer(params, state)
    data = b"".join(muxer.mux(packet) for packet in packets) + muxer.close()
    warnings, _ = decode_capturing(data)
    assert warnings == []
    with av.open(io.BytesIO(data), format="mpegts") as container:
        audio = [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]
    sent = sum(1 for p in packets if p.stream is StreamKind.AUDIO and p.pts_us >= state.base_us)
    assert len(audio) == sent + 2  # both frames of silence arrive, framed
    assert all(frame[:2] == b"\xff\xf1" for frame in audio[:2])
