"""The recorder when things fail under it, through the real spool, writer and journal, the
failure injected once at the spool's fsync seam: an fsync error or a full filesystem at the
seal of a segment roll, and an exception nobody expects (the capture component survives it)."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import pytest

from bodycamd.camera import StreamKind
from bodycamd.evidence.chain import ChainLink, assess_chain
from bodycamd.evidence.reader import scan_segment
from bodycamd.recorder.component import CaptureComponent
from bodycamd.recorder.recorder import Recorder
from hw.camera.synthetic import SyntheticCamera
from tests.device_rig import CAMERA as RIG_CAMERA
from tests.recorder.helpers import FPS, decode, decrypt, recorder_config, synthetic_packets
from tests.recorder.test_capture_component import run_component, wait_for
from tests.storage.helpers import make_spool, storage_for

THREE_SECONDS, PARAMS = synthetic_packets(3, audio=False)


class Card:
    """The spool's fsync: the real one, except that once armed the next call fails with
    `armed`: an errno, as a failing SD card does, or any exception (a bug below the
    recorder, which it cannot expect)."""

    def __init__(self) -> None:
        self.armed: int | Exception | None = None
        self.skip = 0  # fsyncs that still succeed once armed
        self.failures = 0

    def fsync(self, fd: int) -> None:
        if self.armed is not None and self.skip:
            self.skip -= 1
        elif self.armed is not None:
            failure, self.armed = self.armed, None
            self.failures += 1
            if isinstance(failure, int):
                raise OSError(failure, os.strerror(failure))
            raise failure
        os.fsync(fd)


@pytest.mark.parametrize("error", [errno.EIO, errno.ENOSPC])
async def test_a_failed_seal_at_a_roll_is_handled_like_a_failed_write(
    tmp_path: Path, error: int
) -> None:
    """The first roll's seal fails. EIO: that segment is abandoned and salvaged (audited
    `segment_abandoned`), and the recording carries on in the next segment, chained to the
    salvaged one. ENOSPC: the same salvage, and the recording stops as storage_full. Never
    an exception out of handle(), which would end the capture task and the daemon."""
    card = Card()
    spool, keys = make_spool(tmp_path / "state", fsync=card.fsync)
    config = recorder_config(segment_seconds=1.0, durability_interval=0.5)
    recorder = Recorder(storage_for(spool), config, PARAMS, clock=lambda: 0.0)  # footage time
    await recorder.start("123456", "button")
    keyframes = 0
    for packet in THREE_SECONDS:
        if packet.stream is StreamKind.VIDEO and packet.keyframe:
            keyframes += 1
            if keyframes == 2:  # the roll: nothing is fsynced before the seal's own fsync
                card.armed = error
        await recorder.handle(packet)
    assert card.failures == 1
    if error == errno.EIO:
        assert recorder.recording is not None, "the recording carries on"
        await recorder.stop("button")
        assert recorder.last_stop_reason == "button"
    else:
        assert recorder.recording is None and recorder.last_stop_reason == "storage_full"
    await recorder.close()

    paths = [spool.layout.root / row.path for row in spool.journal.segments()]
    verdicts = [scan_segment(path, keys.device_public) for path in paths]
    first = verdicts[0]
    # salvaged and journalled, cut back to what the last successful fsync made durable: the
    # footer reads back whole from the page cache, but its fsync is the one that failed, so
    # it is no proof of flash; sealed torn, never a .part left
    assert first.status == "torn" and first.sealed_torn and first.data_records > 0
    assert first.vouched_plaintext < sum(len(p.data) for p in THREE_SECONDS)
    assert not list(spool.layout.root.rglob("*.part"))
    abandoned = [e.fields for e in spool.journal.events() if e.kind == "segment_abandoned"]
    assert len(abandoned) == 1 and abandoned[0]["salvaged"] is True
    assert "fsync failed" in str(abandoned[0]["reason"])
    stops = [e.fields["reason"] for e in spool.journal.events() if e.kind == "recording_stop"]
    if error == errno.ENOSPC:
        assert len(paths) == 1 and stops == ["storage_full"]
        return
    assert len(paths) == 3 and stops == ["button"]
    assert verdicts[1].header.prev_digest == first.digest, "the chain goes on from it"
    chain = assess_chain([ChainLink(p.name, v) for p, v in zip(paths, verdicts, strict=True)])
    assert chain.ending == "end-of-recording"
    assert all(fault.explained for fault in chain.faults), chain.faults
    frames = [len(decode(decrypt(path, keys)[0]).video_pts) for path in paths[1:]]
    assert frames == [FPS, FPS], "nothing lost after the abandoned segment"


async def test_an_unexpected_error_stops_the_recording_not_the_capture(tmp_path: Path) -> None:
    """An exception the recorder does not expect (here raised by the card's fsync at a
    checkpoint) must not end the capture task, and with it the daemon: the recording stops
    as `recorder_error`, sealed and readable, the error is audited once and raised as a
    health flag, and the next recording runs and clears it."""
    card = Card()
    spool, keys = make_spool(tmp_path / "state", fsync=card.fsync)
    changed = asyncio.Event()
    capture = CaptureComponent(
        lambda post, fault: SyntheticCamera(RIG_CAMERA, post, fault),
        storage_for(spool),
        RIG_CAMERA,
        recorder_config(),
        on_change=changed.set,
    )
    task = await run_component(capture)
    recorder = capture.recorder
    assert recorder is not None
    first = await recorder.start("123456", "button")
    await wait_for(lambda: first.segment is not None, changed)
    card.armed = RuntimeError("a bug below the recorder")  # the next fsync: a checkpoint's
    await wait_for(lambda: capture.recorder_error is not None, changed)
    assert recorder.recording is None and recorder.last_stop_reason == "recorder_error"
    assert capture.recorder_error == "RuntimeError: a bug below the recorder"
    assert not task.done(), "the capture task carries on"
    second = await recorder.start("123456", "button")
    await wait_for(lambda: capture.recorder_error is None, changed)  # its packets record
    await capture.stop()
    await task
    events = [(e.kind, e.fields) for e in spool.journal.events()]
    errors = [f for kind, f in events if kind == "recorder_error"]
    assert len(errors) == 1 and errors[0]["recording"] == first.recording_id.hex
    stops = [(f["recording"], f["reason"]) for kind, f in events if kind == "recording_stop"]
    assert stops == [
        (first.recording_id.hex, "recorder_error"),
        (second.recording_id.hex, "shutdown"),
    ]
    row = spool.journal.segments()[0]
    assert decode(decrypt(spool.layout.root / row.path, keys)[0]).video_pts, "first is sealed"


async def test_a_failure_writing_the_pre_event_still_ends_the_recording(tmp_path: Path) -> None:
    """The pre-event footage is written by the stop when no packet came first. If that
    write fails with an error nobody expects, the recording still ends, sealed as far as it
    went: it used to stay "recording", with the rest of the pre-event queued, and every later
    stop failed the same way."""
    card = Card()
    spool, keys = make_spool(tmp_path / "state", fsync=card.fsync)
    config = recorder_config(pre_event_seconds=3.0, durability_interval=0.5)
    recorder = Recorder(storage_for(spool), config, PARAMS, clock=lambda: 0.0)
    recorder.set_buffering(True)
    for packet in THREE_SECONDS[:-1]:
        await recorder.handle(packet)
    recording = await recorder.start("123456", "button")
    assert recording.backlog
    card.armed = RuntimeError("a bug below the recorder")
    card.skip = 2  # the first fsyncs succeed (the segment exists, footage in it); a later fails
    with pytest.raises(RuntimeError, match="a bug below the recorder"):
        await recorder.stop("button")
    assert recorder.recording is None and recorder.last_stop_reason == "button"
    await recorder.close()
    (row,) = spool.journal.segments()
    verdict = scan_segment(spool.layout.root / row.path, keys.device_public)
    assert verdict.end_of_recording and verdict.data_records > 0
