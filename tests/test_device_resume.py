"""A recording cut by a camera fault, through the device: it resumes only for the officer
still logged in and only if nobody asked to stop since, and a card with no room refuses the
resume without stopping the daemon. Real camera, recorder, spool and journal; the fault is
a camera whose restarts fail until the test reconnects it (tests/device_rig.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bodycamd.config import SessionConfig
from bodycamd.device import RESUME_CANCELLED, Caller, Device
from bodycamd.errors import Refused
from bodycamd.recorder.component import CaptureComponent
from bodycamd.recorder.recorder import Recorder
from bodycamd.storage.quota import FsSpace
from bodycamd.storage.spool import Spool
from tests.device_rig import Backoff, FlakyCamera, make_device

OFFICER, NEXT_OFFICER = "111111", "222222"
CONTROL = Caller("control", uid=1000, pid=42)
BUTTON = Caller("button")
ROOMY = FsSpace(total=2**30, free=2**30, block=4096)


@dataclass
class Rig:
    device: Device
    capture: CaptureComponent
    spool: Spool
    camera: FlakyCamera
    backoff: Backoff
    decided: asyncio.Event  # the camera is back and the resume was decided
    run: asyncio.Task[None]
    space: list[FsSpace]

    @property
    def recorder(self) -> Recorder:
        assert self.capture.recorder is not None
        return self.capture.recorder

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e.fields for e in self.spool.journal.events() if e.kind == kind]

    async def cut_by_a_fault(self, caller: Caller) -> str:
        """Record, then the camera fails; the cut recording's id once the fault is handled
        (recording sealed, the first restart failed, the component in its backoff)."""
        recording_id = await self.device.record_start(caller)
        self.camera.disconnect(self.capture)
        await self.backoff.waiting.wait()
        assert self.capture.fault is not None and self.recorder.recording is None
        return recording_id

    async def reconnect(self) -> None:
        self.camera.connected = True
        self.backoff.release()
        async with asyncio.timeout(20):  # a hang guard, not a timing assertion
            await self.decided.wait()

    async def close(self) -> None:
        await self.capture.stop()
        await self.run


async def rig(
    tmp_path: Path, officer: str | None = OFFICER, session: SessionConfig | None = None
) -> Rig:
    camera, backoff, space = FlakyCamera(), Backoff(), [ROOMY]
    device, capture, spool = await make_device(
        tmp_path,
        session,
        camera=camera,
        sleep=backoff,
        space=lambda _: space[0],
        follow_capture=True,
    )
    if officer is not None:  # before the watchdog runs: the camera never sleeps
        await device.login(officer, CONTROL)
    decided = asyncio.Event()
    decide = capture.resumes.decide

    async def decide_and_tell(recorder: Recorder | None) -> None:
        await decide(recorder)
        decided.set()

    capture.resumes.decide = decide_and_tell  # type: ignore[method-assign]
    run = asyncio.create_task(capture.run())
    return Rig(device, capture, spool, camera, backoff, decided, run, space)


async def test_the_cut_recording_is_still_the_officers_and_resumes_for_them(
    tmp_path: Path,
) -> None:
    """The review's case: during the fault the officer cannot log out (the recording is
    still theirs, shown as recording with the camera fault) and nobody else can log in; once
    the camera is back it resumes for the same officer, naming the recording it continues."""
    r = await rig(tmp_path)
    cut = await r.cut_by_a_fault(BUTTON)
    state = r.device.state
    assert (state.recording, state.recording_id) == ("recording", cut)
    assert "camera_fault" in state.health
    with pytest.raises(Refused) as logout:
        await r.device.logout(CONTROL)
    assert logout.value.code == "recording"
    with pytest.raises(Refused) as login:
        await r.device.login(NEXT_OFFICER, CONTROL)
    assert login.value.code == "already_logged_in"
    assert await r.device.record_start(CONTROL) == cut  # already recording: nothing to do
    await r.device.marker("shots fired", CONTROL)  # a marker belongs to the cut recording
    assert r.events("marker")[-1]["recording"] == cut
    await r.reconnect()
    resumed = r.recorder.recording
    assert resumed is not None and resumed.officer == OFFICER
    assert resumed.reason == "resumed_after_camera_fault"
    start = r.events("recording_start")[-1]
    assert (start["officer"], start["resumes"]) == (OFFICER, cut)
    assert r.device.state.recording_id == resumed.recording_id.hex
    assert "camera_fault" not in r.device.state.health
    assert [f["reason"] for f in r.events("recording_stop")] == ["camera_fault"]
    await r.close()


@pytest.mark.parametrize("caller", [BUTTON, CONTROL], ids=["button-hold", "control"])
async def test_a_stop_during_the_fault_cancels_the_resume(tmp_path: Path, caller: Caller) -> None:
    """A stop asked for while the camera restarts (the button's hold, which the panel sends
    because the state still says recording, or `record stop`) succeeds, saying the
    recording will not resume; the camera comes back and nothing restarts by itself."""
    r = await rig(tmp_path)
    cut = await r.cut_by_a_fault(BUTTON)
    assert await r.device.record_stop(caller) == RESUME_CANCELLED
    assert r.device.state.recording == "buffering"
    with pytest.raises(Refused) as again:
        await r.device.record_stop(caller)
    assert again.value.code == "not_recording"
    await r.reconnect()
    assert r.recorder.recording is None and r.device.state.recording == "buffering"
    (cancelled,) = r.events("recording_resume_cancelled")
    assert (cancelled["recording"], cancelled["reason"]) == (cut, "stop_requested")
    assert cancelled["source"] == caller.source
    assert len(r.events("recording_start")) == 1
    await r.device.logout(CONTROL)  # nothing is recording now
    await r.close()


async def test_an_anonymous_recording_does_not_resume_under_an_officer(tmp_path: Path) -> None:
    """Anonymous recording allowed: an officer who logs in during the fault is not handed
    the cut recording (nor is it resumed anonymously under them); audited why."""
    r = await rig(tmp_path, None, SessionConfig(allow_anonymous_recording=True))
    cut = await r.cut_by_a_fault(BUTTON)
    await r.device.login(NEXT_OFFICER, CONTROL)
    await r.reconnect()
    assert r.recorder.recording is None
    assert (r.device.state.officer, r.device.state.recording) == (NEXT_OFFICER, "buffering")
    (cancelled,) = r.events("recording_resume_cancelled")
    assert (cancelled["recording"], cancelled["reason"]) == (cut, "officer_changed")
    assert cancelled["officer"] == NEXT_OFFICER
    await r.close()


async def test_a_resume_the_card_refuses_is_audited_and_the_daemon_carries_on(
    tmp_path: Path,
) -> None:
    """The card filled up during the fault: less than `min_free_minutes` fit, so the resume
    is refused as a start would be (storage_full), audited, and the capture task, the
    device and the daemon carry on."""
    r = await rig(tmp_path)
    cut = await r.cut_by_a_fault(BUTTON)
    r.space[0] = FsSpace(total=2**30, free=64 * 1024, block=4096)  # others filled the card
    await r.reconnect()
    assert r.recorder.recording is None and not r.run.done()
    (cancelled,) = r.events("recording_resume_cancelled")
    assert (cancelled["recording"], cancelled["reason"]) == (cut, "storage_full")
    assert "min of footage fit" in cancelled["error"]
    assert r.device.state.recording == "buffering"
    assert r.capture.fault is None
    await r.close()  # ends cleanly: the task never failed
