"""Recording real H.264 + AAC through the recorder into encrypted segments, then decrypting
with the operator tool's reader and decoding with PyAV."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

from bodycamd.evidence.chain import ChainLink, check_chain
from bodycamd.evidence.reader import scan_segment
from bodycamd.recorder.recorder import Recorder
from tests.recorder.helpers import (
    FPS,
    decode,
    decrypt,
    recorder_config,
    synthetic_packets,
    video_only,
)
from tests.storage.helpers import make_spool, storage_for

TEN_SECONDS, PARAMS = synthetic_packets(10)


async def test_ten_seconds_decode_frame_exact(tmp_path: Path) -> None:
    spool, keys = make_spool(tmp_path / "state")
    recorder = Recorder(storage_for(spool), recorder_config(segment_seconds=4.0), PARAMS)
    await recorder.start("123456", "test")
    for packet in TEN_SECONDS:
        await recorder.handle(packet)
    await recorder.stop("test")
    await recorder.close()
    rows = spool.journal.segments()
    assert len(rows) == 3  # 0-4 s, 4-8 s, 8-10 s
    all_pts: list[float] = []
    audio = 0.0
    for row in rows:
        ts, metadata = decrypt(spool.layout.root / row.path, keys)
        meta = json.loads(metadata)
        assert meta["officer"] == "123456" and meta["stream"]["video"]["width"] == 320
        decoded = decode(ts)  # each segment decodes on its own...
        assert decoded.keyframes[0], "...and starts on a keyframe"
        all_pts += decoded.video_pts
        audio += decoded.audio_seconds
    assert len(all_pts) == 10 * FPS
    assert all(b > a for a, b in itertools.pairwise(all_pts)), "strictly increasing"
    assert abs(audio - 10.0) < 0.1


async def test_rollover_at_keyframes_chain_verifies(tmp_path: Path) -> None:
    spool, keys = make_spool(tmp_path / "state")
    recorder = Recorder(storage_for(spool), recorder_config(segment_seconds=2.0), PARAMS)
    await recorder.start(None, "test")
    for packet in TEN_SECONDS:
        await recorder.handle(packet)
    await recorder.stop("test")
    await recorder.close()
    paths = [spool.layout.root / row.path for row in spool.journal.segments()]
    assert len(paths) == 5
    verdicts = [scan_segment(p, keys.device_public) for p in paths]
    assert [v.end_of_recording for v in verdicts] == [False] * 4 + [True]
    report = check_chain([ChainLink(p.name, v) for p, v in zip(paths, verdicts, strict=True)])
    assert report.segments == 5 and report.ending == "end-of-recording"
    for path in paths:
        decoded = decode(decrypt(path, keys)[0])
        assert decoded.keyframes[0] and len(decoded.video_pts) == 2 * FPS


async def test_pre_event_window(tmp_path: Path) -> None:
    packets, params = synthetic_packets(25, audio=False)
    spool, keys = make_spool(tmp_path / "state")
    recorder = Recorder(storage_for(spool), recorder_config(pre_event_seconds=5.0), params)
    recorder.set_buffering(True)
    start_us = packets[0].pts_us + 20_000_000
    before = [p for p in packets if p.pts_us <= start_us]
    after = [p for p in packets if p.pts_us > start_us]
    for packet in before:
        await recorder.handle(packet)
    assert recorder.buffered_bytes > 0
    await recorder.start(None, "button")
    for packet in after:
        await recorder.handle(packet)
    await recorder.stop("test")
    await recorder.close()
    (row,) = spool.journal.segments()
    decoded = decode(decrypt(spool.layout.root / row.path, keys)[0])
    assert decoded.keyframes[0]
    # frames run without gaps to the last packet, so the count says where the recording began
    video = video_only(packets)
    first = video[len(video) - len(decoded.video_pts)]
    window_start = start_us - 5_000_000
    assert first.keyframe
    assert window_start - 1_000_000 <= first.pts_us <= window_start + 1_000_000  # ± one GOP
    assert first.pts_us >= window_start, "nothing older than the window"


@pytest.mark.parametrize("then", ["a live packet", "a stop"])
async def test_start_returns_before_the_pre_event_reaches_flash(tmp_path: Path, then: str) -> None:
    """`start` decides, audits and returns without writing a byte of footage: the LEDs that
    tell the person filmed follow it at once, not after seconds of pre-event footage and
    their fsyncs (on an SD card, 2 s for a 30 s buffer). The next packet, or a stop that
    comes first, writes the pre-event before anything newer; nothing of it is lost."""
    packets, params = synthetic_packets(10, audio=False)
    fsyncs: list[int] = []

    def counted(fd: int) -> None:
        fsyncs.append(fd)
        os.fsync(fd)

    spool, keys = make_spool(tmp_path / "state", fsync=counted)
    recorder = Recorder(storage_for(spool), recorder_config(pre_event_seconds=5.0), params)
    recorder.set_buffering(True)
    for packet in packets[:-1]:
        await recorder.handle(packet)
    await recorder.start(None, "button")
    assert fsyncs == [] and list(spool.layout.root.rglob("*.part")) == []
    if then == "a live packet":
        await recorder.handle(packets[-1])
        assert fsyncs, "the pre-event is written before the live packet"
    await recorder.stop("test")
    await recorder.close()
    (row,) = spool.journal.segments()
    decoded = decode(decrypt(spool.layout.root / row.path, keys)[0])
    # the 5 s window from its first keyframe (at most one GOP later), every frame after it
    assert decoded.keyframes[0] and 4 * FPS <= len(decoded.video_pts) <= 5 * FPS + 1
    assert all(b > a for a, b in itertools.pairwise(decoded.video_pts))


async def test_zero_window_starts_at_next_keyframe(tmp_path: Path) -> None:
    packets, params = synthetic_packets(5, audio=False)
    spool, keys = make_spool(tmp_path / "state")
    recorder = Recorder(storage_for(spool), recorder_config(pre_event_seconds=0.0), params)
    recorder.set_buffering(True)
    video = video_only(packets)
    split = FPS * 2 + 10  # start 10 frames after the keyframe at 2 s
    for packet in video[:split]:
        await recorder.handle(packet)
    await recorder.start(None, "button")
    for packet in video[split:]:
        await recorder.handle(packet)
    await recorder.stop("test")
    await recorder.close()
    (row,) = spool.journal.segments()
    decoded = decode(decrypt(spool.layout.root / row.path, keys)[0])
    assert len(decoded.video_pts) == FPS * 2  # from the keyframe at 3 s to the end at 5 s
    assert decoded.keyframes[0]


async def test_buffering_only_when_allowed(tmp_path: Path) -> None:
    packets, params = synthetic_packets(3, audio=False)
    spool, _ = make_spool(tmp_path / "state")
    recorder = Recorder(storage_for(spool), recorder_config(pre_event_seconds=30.0), params)
    for packet in packets:
        await recorder.handle(packet)
    assert recorder.buffered_bytes == 0  # idle: nothing kept
    recorder.set_buffering(True)
    for packet in packets:
        await recorder.handle(packet)
    assert recorder.buffered_bytes > 0
    recorder.set_buffering(False)
    assert recorder.buffered_bytes == 0
    assert not list(spool.layout.root.rglob("*.part"))  # never on flash
    await recorder.close()


@pytest.mark.parametrize("quota", ["700KiB", "760KiB", "800KiB", "850KiB", "900KiB"])
async def test_quota_reached_at_a_rollover_ends_cleanly(tmp_path: Path, quota: str) -> None:
    """The card fills just as a new segment is due: the current one becomes the last one
    (flagged so), the recording stops as storage_full, and nothing crashes."""
    packets, params = synthetic_packets(12, audio=False, width=640, height=480)
    spool, keys = make_spool(tmp_path / "state", quota=quota)
    recorder = Recorder(storage_for(spool), recorder_config(segment_seconds=1.0), params)
    await recorder.start(None, "test")
    for packet in packets:
        await recorder.handle(packet)
    assert recorder.recording is None and recorder.last_stop_reason == "storage_full"
    await recorder.close()
    paths = [spool.layout.root / row.path for row in spool.journal.segments()]
    verdicts = [scan_segment(p, keys.device_public) for p in paths]
    assert len(paths) >= 2
    assert [v.end_of_recording for v in verdicts] == [False] * (len(paths) - 1) + [True]
    check_chain([ChainLink(p.name, v) for p, v in zip(paths, verdicts, strict=True)])
    assert all(v.status == "complete" for v in verdicts)


async def test_a_packet_the_muxer_refuses_costs_that_packet_only(tmp_path: Path) -> None:
    from dataclasses import replace

    packets, params = synthetic_packets(3, audio=False)
    spool, keys = make_spool(tmp_path / "state")
    recorder = Recorder(storage_for(spool), recorder_config(), params)
    await recorder.start(None, "test")
    broken = replace(packets[40], pts_us=packets[10].pts_us)  # time runs backwards once
    for packet in [*packets[:41], broken, *packets[41:]]:
        await recorder.handle(packet)
    await recorder.stop("test")
    await recorder.close()
    assert recorder.packets_refused == 1
    (row,) = spool.journal.segments()
    assert len(decode(decrypt(spool.layout.root / row.path, keys)[0]).video_pts) == len(packets)


@pytest.mark.parametrize(("late", "expected"), [(False, {3, 4}), (True, {5, 6})])
async def test_checkpoints_follow_wall_time_when_footage_arrives_late(
    tmp_path: Path, late: bool, expected: set[int]
) -> None:
    """Checkpoints every `durability_interval` of footage, and of wall time when the footage
    lags it: what a power cut can take is bounded on the wall clock too. Two seconds of
    footage at 0.5 s: 4 checkpoints by footage time; delivered over 3 s, 6 by wall time."""
    spool, _ = make_spool(tmp_path / "state")
    now = [1000.0]
    config = recorder_config(segment_seconds=60.0, durability_interval=0.5)
    recorder = Recorder(storage_for(spool), config, PARAMS, clock=lambda: now[0])
    await recorder.start(None, "test")
    end_us = TEN_SECONDS[0].pts_us + 2_000_000
    for packet in itertools.takewhile(lambda p: p.pts_us < end_us, TEN_SECONDS):
        if late and packet.stream.value == "video":
            now[0] += 0.05  # a frame every 50 ms for footage of one every 33 ms
        await recorder.handle(packet)
    await recorder.stop("test")
    await recorder.close()
    (row,) = spool.journal.segments()
    assert scan_segment(spool.layout.root / row.path).checkpoints in expected
