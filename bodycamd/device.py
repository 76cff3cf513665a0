"""The device: policy and transitions over officer, recording, dock and health.

Every request that changes the device (from the control API, the button, the dock sensor)
comes through here, is checked against policy, is audited with who asked (the source, and
the peer's uid/pid for control-socket callers), and ends in a new DeviceState published to
subscribers. Policy, from DESIGN.md §4:

- record while logged out: refused, unless `session.allow_anonymous_recording` (audited);
- docking while recording: keep recording; log out at dock once the recording is sealed;
- quota below `storage.min_free_minutes`: refused with the reason; full mid-recording: the
  recorder seals and stops, never deleting evidence;
- logging out while recording: refused (stop first), so no recording loses its officer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .clock import clock_synchronised
from .errors import QuotaExceeded, Refused
from .recorder.component import CaptureComponent
from .session import Officer, SessionPolicy
from .signals import Signal
from .state import DeviceState, StateChange, StateEvents
from .storage.component import StorageComponent

log = logging.getLogger(__name__)
TICK_SECONDS = 1.0


@dataclass(frozen=True)
class Caller:
    """Who asked: a source name and, for control-socket callers, their credentials."""

    source: str
    uid: int | None = None
    pid: int | None = None

    def audit_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"source": self.source}
        if self.uid is not None:
            fields.update(peer_uid=self.uid, peer_pid=self.pid)
        return fields


class Device:
    name = "device"

    def __init__(
        self,
        policy: SessionPolicy,
        storage: StorageComponent,
        capture: CaptureComponent,
        *,
        clock_synced: Callable[[], bool] = clock_synchronised,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._policy = policy
        self._storage = storage
        self._capture = capture
        self._clock_synced = clock_synced
        self._sleep = sleep
        self.events = StateEvents()
        self.state = DeviceState()
        self.officer: Officer | None = None
        self._docked = False
        self._stealth = False
        self._upload_progress: float | None = None
        self._upload_error = False
        self._clock_was_synced: bool | None = None
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        # the camera sleeps while nobody is logged in, unless policy lets anyone record
        self.logged_in = Signal("logged_in")
        anonymous = policy.allow_anonymous_recording
        self.logged_in.listen(lambda on: capture.want_camera(on or anonymous))
        capture.want_camera(anonymous)

    # -- component lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        self.refresh("start")

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                async with asyncio.timeout(TICK_SECONDS):
                    await self._wakeup.wait()
            except TimeoutError:
                pass
            self._wakeup.clear()
            await self.settle()

    async def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    def status(self) -> str:
        return f"device: {self.state.summary()}"

    # -- requests ---------------------------------------------------------------------------

    async def login(self, number: object, caller: Caller) -> Officer:
        personnel = self._policy.validate(number)
        if self.officer is not None and self.officer.personnel_number != personnel:
            raise Refused(
                "already_logged_in",
                f"officer {self.officer.personnel_number} is logged in; log out first",
            )
        if self.officer is None:
            self.officer = Officer(personnel, time.time_ns())
            await self._audit("officer_login", personnel_number=personnel, **caller.audit_fields())
            self.logged_in.set(True)
            self.refresh("login")
            self._recorder_buffering(True)  # its own change: pre-event buffering begins
        return self.officer

    async def logout(self, caller: Caller, *, reason: str = "request") -> None:
        if self.officer is None:
            raise Refused("not_logged_in", "nobody is logged in")
        if self._is_recording():
            raise Refused("recording", "stop the recording before logging out")
        number = self.officer.personnel_number
        self.officer = None
        self.logged_in.set(False)
        self._recorder_buffering(False)
        await self._audit(
            "officer_logout", personnel_number=number, reason=reason, **caller.audit_fields()
        )
        self.refresh("logout")

    async def record_start(self, caller: Caller) -> str:
        recorder = self._capture.recorder
        if recorder is None:
            raise Refused("camera_unavailable", "the camera is not running")
        if recorder.recording is not None:
            return recorder.recording.recording_id.hex  # already recording: nothing to do
        if self._capture.fault is not None:
            raise Refused("camera_fault", f"camera fault: {self._capture.fault}")
        if self.officer is None:
            if not self._policy.allow_anonymous_recording:
                raise Refused("not_logged_in", "log in with a personnel number to record")
            await self._audit("anonymous_recording_allowed", **caller.audit_fields())
        try:
            recording = await recorder.start(
                self.officer.personnel_number if self.officer else None,
                caller.source,
                caller.audit_fields(),
            )
        except QuotaExceeded as exc:
            self.refresh("storage")
            raise Refused("storage_full", str(exc)) from exc
        self.refresh("record_start")
        return recording.recording_id.hex

    async def record_stop(self, caller: Caller) -> None:
        recorder = self._capture.recorder
        if recorder is None or recorder.recording is None:
            raise Refused("not_recording", "not recording")
        await recorder.stop(caller.source, caller.audit_fields())
        self.refresh("record_stop")

    async def marker(self, note: str, caller: Caller) -> None:
        recorder = self._capture.recorder
        if recorder is None or recorder.recording is None:
            raise Refused("not_recording", "a marker needs a recording")
        await recorder.marker(note, caller.audit_fields())
        self.refresh("marker")

    async def set_docked(self, docked: bool, caller: Caller) -> None:
        if docked == self._docked:
            return
        self._docked = docked
        await self._audit("dock" if docked else "undock", **caller.audit_fields())
        self.refresh("dock" if docked else "undock")
        await self.settle()

    async def set_stealth(self, stealth: bool, allowed: bool, caller: Caller) -> None:
        if stealth and not allowed:
            raise Refused("stealth_not_allowed", "policy does not allow stealth recording")
        if stealth != self._stealth:
            self._stealth = stealth
            await self._audit("indicator_policy", stealth=stealth, **caller.audit_fields())
            self.refresh("stealth")

    def set_upload(self, progress: float | None, error: bool) -> None:
        self._upload_progress, self._upload_error = progress, error
        self.changed()

    # -- state ------------------------------------------------------------------------------

    def changed(self) -> None:
        """Something a component owns changed: recompute now, run policy on the next tick."""
        self.refresh("component")
        self._wakeup.set()

    async def settle(self) -> None:
        """Apply the policies that act on their own (logout at the dock), audit clock-sync
        changes, then publish the state."""
        if (
            self._docked
            and self.officer is not None
            and self._policy.logout_on_dock
            and not self._is_recording()
        ):
            await self.logout(Caller("dock"), reason="docked")
        synced = self._clock_synced()
        if synced != self._clock_was_synced:
            if self._clock_was_synced is not None:
                await self._audit("clock_sync_changed", synchronised=synced)
            self._clock_was_synced = synced
        if self._storage.spool is not None:
            changed = self._storage.threshold_change()
            if changed is not None:
                await asyncio.to_thread(self._storage.audit_thresholds, changed)
        self.refresh("tick")

    def refresh(self, reason: str) -> None:
        new = self._compute()
        if new != self.state:
            old, self.state = self.state, new
            self.events.publish(StateChange(old, new, reason))

    def _compute(self) -> DeviceState:
        recorder = self._capture.recorder
        recording = recorder.recording if recorder else None
        health: set[str] = set()
        storage_figures = self._storage.figures()
        if storage_figures is not None:
            if storage_figures.low:
                health.add("storage_low")
            if storage_figures.full:
                health.add("storage_full")
        if self._capture.fault is not None:
            health.add("camera_fault")
        if not self._clock_synced():
            health.add("clock_unsynced")
        if self._upload_error:
            health.add("upload_error")
        return dataclasses.replace(
            self.state,
            officer=self.officer.personnel_number if self.officer else None,
            recording=recorder.state.value if recorder else "idle",
            recording_id=recording.recording_id.hex if recording else None,
            recording_seconds=round(recording.duration_s, 1) if recording else 0.0,
            docked=self._docked,
            stealth=self._stealth,
            health=frozenset(health),
            awaiting_upload=self._storage.awaiting_upload(),
            upload_progress=self._upload_progress,
        )

    def _is_recording(self) -> bool:
        recorder = self._capture.recorder
        return recorder is not None and recorder.recording is not None

    def _recorder_buffering(self, enabled: bool) -> None:
        if self._capture.recorder is not None:
            self._capture.recorder.set_buffering(enabled)

    async def _audit(self, kind: str, **fields: Any) -> None:
        spool = self._storage.spool
        if spool is not None:
            await asyncio.to_thread(spool.journal.audit, kind, **fields)
        log.info("%s %s", kind, fields)
