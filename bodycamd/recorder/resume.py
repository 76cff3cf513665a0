"""A recording cut by a camera fault, from the fault until it resumes or is cancelled.

At a camera fault the capture component seals the running recording (`camera_fault`) and
keeps it here as *pending*: to the officer it is still their recording (the device reports
it as recording, so the button's hold stops it), and the camera is kept running for it.
Once frames flow again the component calls `policy`. The device's policy (device.py) takes
its lock and resumes only for the officer who is still logged in and only if nobody asked to
stop since the fault; without a device the component resumes it.

Resuming starts a new recording for the same officer, reason `resumed_after_camera_fault`,
its start event naming the cut one (`resumes`). A resume that does not happen is audited
`recording_resume_cancelled` with why: `stop_requested` (with who asked), `officer_changed`,
`storage_full` (less than `storage.min_free_minutes` fit: what a refused start answers),
`storage_error`, `shutdown`. Never an exception into the capture task: the daemon stays up.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import QuotaExceeded, StorageError
from ..storage.facade import RecordingStorage
from .recorder import Recorder
from .recording import Recording

log = logging.getLogger(__name__)

ResumePolicy = Callable[[], Awaitable[object]]


class FaultResume:
    def __init__(self, storage: RecordingStorage, on_change: Callable[[], None]) -> None:
        self._storage = storage
        self._on_change = on_change
        self.pending: Recording | None = None
        self.policy: ResumePolicy | None = None  # the device's (device.py)

    async def decide(self, recorder: Recorder | None) -> None:
        """The camera is back: let the policy decide, or resume when there is none."""
        if self.pending is None:
            return
        if self.policy is None:
            await self.resume(recorder)
        else:
            await self.policy()

    async def resume(
        self, recorder: Recorder | None, requested_by: dict[str, Any] | None = None
    ) -> Recording | None:
        """Resume the pending recording as a new one (None when there is none, or the card
        refused it: then the resume is cancelled, audited, and nothing is raised)."""
        pending = self.pending
        if pending is None or recorder is None:
            return None
        try:
            recording = await recorder.start(
                pending.officer,
                "resumed_after_camera_fault",
                {"resumes": pending.recording_id.hex, **(requested_by or {})},
            )
        except StorageError as exc:
            log.warning("cannot resume after the camera fault: %s", exc)
            code = "storage_full" if isinstance(exc, QuotaExceeded) else "storage_error"
            await self.cancel(code, error=str(exc))
            return None
        self.pending = None  # only now: the state never shows a gap in between
        return recording

    async def cancel(self, reason: str, **fields: Any) -> Recording | None:
        """Drop the pending resume, audited with `reason` (and `fields`); the cut recording
        stays as it was sealed at the fault. None when nothing was pending."""
        pending, self.pending = self.pending, None
        if pending is None:
            return None
        log.warning(
            "recording %s not resumed after the camera fault: %s",
            pending.recording_id.hex[:8],
            reason,
        )
        await self._storage.audit(
            "recording_resume_cancelled",
            recording=pending.recording_id.hex,
            reason=reason,
            **fields,
        )
        self._on_change()
        return pending
