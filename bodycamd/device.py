"""The device: policy and transitions over officer, recording, dock and health.

Every request that changes the device (from the control API, the button, the dock sensor)
comes through here, is checked against policy, is audited with who asked (the source, and
the peer's uid/pid for control-socket callers), and ends in a new DeviceState published to
subscribers. Policy, from DESIGN.md §4:

- record while logged out: refused, unless `session.allow_anonymous_recording` (audited);
- docking while recording: keep recording; log out at dock once the recording is sealed;
- quota below `storage.min_free_minutes`: refused with the reason; full mid-recording: the
  recorder seals and stops, never deleting evidence;
- logging out while recording: refused (stop first), so no recording loses its officer;
- logging in while docked (with `session.logout_on_dock`): refused up front (`docked`), not
  accepted and then undone by the dock.
- a recording cut by a camera fault stays the officer's until it resumes: it is reported as
  recording, logout waits for it, a stop cancels its resume, and it resumes only for the
  officer still logged in (`resume_after_camera_fault`; docs/capture.md, "Faults").

Every state-changing request (login, logout, record start/stop, marker, dock, stealth) is
decided and applied as one step under the device's one lock, the recorder's start and the
audit write included: a `logout` can never slip between `record_start`'s check of the
officer and the recording it starts, and a `login` never returns an officer that a racing
`logout` removed. Its waiters are bounded by the callers that can exist at once (the
control pools, the button, the dock, the tick).

Audit (the storage façade's rule, docs/architecture.md): login, logout, stealth and the
anonymous-recording allowance write their event first and are applied only once it is
committed; a journal that cannot be written refuses them with code "storage" and nothing
changes. Dock and clock events are written after the fact and never refused; a failure
shows as the journal_error health flag.

`recording`, `logged_in` and `docked` (the settled dock) are Signals kept in step with the
published state, for the uploader (it runs while docked and yields to recording) and
whoever else must wait for a flip. The uploader reports back through `set_upload`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .clock import clock_synchronised
from .errors import QuotaExceeded, Refused
from .markers import MarkerLimiter
from .recorder.component import CaptureComponent
from .session import Officer, SessionPolicy
from .signals import Signal
from .state import DeviceState, StateChange, StateEvents
from .storage.facade import Storage

log = logging.getLogger(__name__)
TICK_SECONDS = 1.0
RESUME_CANCELLED = "the camera had failed; its recording will not resume"


class DockView(Protocol):
    """What the device follows of the DockComponent (dock.py)."""

    docked: Signal

    @property
    def pending(self) -> str | None: ...

    @property
    def source(self) -> str: ...


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
        storage: Storage,
        capture: CaptureComponent,
        dock: DockView | None = None,
        *,
        clock_synced: Callable[[], bool] = clock_synchronised,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._policy = policy
        self._storage = storage
        self._capture = capture
        self._dock = dock
        self._clock_synced = clock_synced
        self._sleep = sleep
        self.events = StateEvents()
        self.state = DeviceState()
        self.officer: Officer | None = None
        self._docked = False
        self._stealth = False
        self._clock_was_synced: bool | None = None
        self.markers = MarkerLimiter()  # note size and rate bounds (markers.py)
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._changing = asyncio.Lock()  # one audited change at a time: decided, then applied
        self.recording = Signal("recording")
        self.logged_in = Signal("logged_in")
        self._upload_progress: float | None = None
        self._upload_error = False
        if dock is not None:  # a settled dock change is applied by the run loop at once
            dock.docked.listen(lambda _docked: self._wakeup.set())
        # the camera sleeps while nobody is logged in, unless policy lets anyone record
        anonymous = policy.allow_anonymous_recording
        self.logged_in.listen(lambda on: capture.want_camera(on or anonymous))
        capture.want_camera(anonymous)
        capture.resumes.policy = self.resume_after_camera_fault  # under this device's lock

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
        async with self._changing:
            if self._docked and self._policy.logout_on_dock and self.officer is None:
                raise Refused("docked", "the camera is docked; take it out of the dock to log in")
            if self.officer is not None and self.officer.personnel_number != personnel:
                raise Refused(
                    "already_logged_in",
                    f"officer {self.officer.personnel_number} is logged in; log out first",
                )
            if self.officer is None:
                await self._storage.audit_or_refuse(
                    "officer_login", personnel_number=personnel, **caller.audit_fields()
                )
                self.officer = Officer(personnel, time.time_ns())
                log.info("officer %s logged in (%s)", personnel, caller.source)
                self.refresh("login")
                self._recorder_buffering(True)  # its own change: pre-event buffering begins
            return self.officer

    async def logout(self, caller: Caller, *, reason: str = "request") -> None:
        async with self._changing:
            if self.officer is None:
                raise Refused("not_logged_in", "nobody is logged in")
            if self._is_recording():
                raise Refused("recording", "stop the recording before logging out")
            await self._audit_logout(caller, reason)
            self._clear_officer()
            self.refresh("logout")

    async def _audit_logout(self, caller: Caller, reason: str) -> None:
        assert self.officer is not None
        number = self.officer.personnel_number
        stealth = {"stealth_ended": True} if self._stealth else {}  # _clear_officer ends it
        await self._storage.audit_or_refuse(
            "officer_logout",
            personnel_number=number,
            reason=reason,
            **stealth,
            **caller.audit_fields(),
        )
        log.info("officer %s logged out (%s, %s)", number, caller.source, reason)

    def _clear_officer(self) -> None:
        """Stealth is the logged-in officer's choice and ends with the session (the logout's
        audit event says so): the next officer records with the announce LED on until they
        choose otherwise."""
        self.officer = None
        self._stealth = False
        self._recorder_buffering(False)

    def _logout_due_at_dock(self, docked: bool) -> bool:
        return (
            docked
            and self.officer is not None
            and self._policy.logout_on_dock
            and not self._is_recording()
        )

    async def _logout_at_dock(self, docked: bool) -> bool:
        """Audit the dock's logout when policy asks for it; False when it is not due, or
        the journal refused it (then the officer stays, and the next tick tries again)."""
        if not self._logout_due_at_dock(docked):
            return False
        try:
            await self._audit_logout(Caller("dock"), "docked")
        except Refused as exc:
            log.error("logout at the dock postponed: %s", exc)
            return False
        return True

    async def record_start(self, caller: Caller) -> str:
        async with self._changing:  # decided and applied as one step
            recorder = self._capture.recorder
            if recorder is None:
                raise Refused("camera_unavailable", "the camera is not running")
            running = recorder.recording or self._capture.resumes.pending
            if running is not None:  # already recording (or resuming): nothing to do
                return running.recording_id.hex
            if self._capture.fault is not None:
                raise Refused("camera_fault", f"camera fault: {self._capture.fault}")
            if self.officer is None:
                if not self._policy.allow_anonymous_recording:
                    raise Refused("not_logged_in", "log in with a personnel number to record")
                await self._storage.audit_or_refuse(
                    "anonymous_recording_allowed", **caller.audit_fields()
                )
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

    async def record_stop(self, caller: Caller) -> str | None:
        """Stop the recording; during a camera fault, cancel its resume instead (the
        returned note says so, for the answer; None for a plain stop)."""
        async with self._changing:  # decided and applied as one step
            recorder = self._capture.recorder
            cancelled = await self._capture.resumes.cancel(
                "stop_requested", **caller.audit_fields()
            )
            if recorder is None or recorder.recording is None:
                if cancelled is None:
                    raise Refused("not_recording", "not recording")
                self.refresh("record_stop")
                return RESUME_CANCELLED
            try:
                await recorder.stop(caller.source, caller.audit_fields())
            finally:  # a stop that failed part-way still ended the recording: show it
                self.refresh("record_stop")
            return None

    async def resume_after_camera_fault(self) -> None:
        """The capture component's resume policy, once the camera is back (resume.py):
        under the lock every change takes, resume the cut recording only for the officer
        who is still logged in (the anonymous-recording rule for none). A stop since the
        fault has already cancelled it (record_stop); anything else is cancelled here and
        audited, never resumed for whoever holds the camera now."""
        async with self._changing:
            pending = self._capture.resumes.pending
            if pending is None:
                return
            officer = self.officer.personnel_number if self.officer else None
            if officer != pending.officer:
                await self._capture.resumes.cancel("officer_changed", officer=officer)
            elif officer is None and not self._policy.allow_anonymous_recording:
                await self._capture.resumes.cancel("not_logged_in")
            else:
                await self._capture.resumes.resume(self._capture.recorder)
            self.refresh("record_resume")

    async def marker(self, note: str, caller: Caller) -> None:
        async with self._changing:  # decided and applied as one step
            recorder = self._capture.recorder
            cut = self._capture.resumes.pending  # during a camera fault: still theirs
            if recorder is None or (recorder.recording is None and cut is None):
                raise Refused("not_recording", "a marker needs a recording")
            self.markers.admit(note, storage_full="storage_full" in self._storage.health())
            await recorder.marker(note, caller.audit_fields(), recording=cut)
            self.refresh("marker")

    async def set_docked(self, docked: bool, caller: Caller) -> None:
        """Docked (or not), and the logout the dock brings, decided and audited first, then
        applied and published in one step: nobody sees "docked" with the officer still on."""
        async with self._changing:
            if docked == self._docked:
                return
            log.info("%s (%s)", "docked" if docked else "undocked", caller.source)
            await self._storage.audit("dock" if docked else "undock", **caller.audit_fields())
            logout = await self._logout_at_dock(docked)
            self._docked = docked
            if logout:
                self._clear_officer()
            self.refresh("dock" if docked else "undock")

    async def set_stealth(self, stealth: bool, allowed: bool, caller: Caller) -> None:
        if stealth and not allowed:
            raise Refused("stealth_not_allowed", "policy does not allow stealth recording")
        async with self._changing:
            if stealth != self._stealth:
                await self._storage.audit_or_refuse(
                    "indicator_policy", stealth=stealth, **caller.audit_fields()
                )
                self._stealth = stealth
                self.refresh("stealth")

    def set_upload(self, progress: float | None, error: bool) -> None:
        """The uploader's report: 0..1 while uploading (None otherwise) and whether its
        latest attempt failed (the upload_error health flag and its LED pattern)."""
        if (progress, error) != (self._upload_progress, self._upload_error):
            self._upload_progress, self._upload_error = progress, error
            self.refresh("upload")

    # -- state ------------------------------------------------------------------------------

    def changed(self) -> None:
        """Something a component owns changed: recompute now, run policy on the next tick."""
        self.refresh("component")
        self._wakeup.set()

    async def settle(self) -> None:
        """Follow the dock, apply the policies that act on their own (logout at the dock),
        audit clock-sync changes, then publish the state."""
        dock = self._dock
        if dock is not None and dock.docked.value != self._docked:
            await self.set_docked(dock.docked.value, Caller(f"dock:{dock.source}"))
        if self._logout_due_at_dock(self._docked):  # docked while recording, now stopped
            async with self._changing:
                if await self._logout_at_dock(self._docked):
                    self._clear_officer()
                    self.refresh("logout")
        synced = self._clock_synced()
        if synced != self._clock_was_synced:
            if self._clock_was_synced is not None:
                await self._storage.audit("clock_sync_changed", synchronised=synced)
            self._clock_was_synced = synced
        await self._storage.check_thresholds()
        self.refresh("tick")

    def refresh(self, reason: str) -> None:
        new = self._compute()
        if new != self.state:
            old, self.state = self.state, new
            self.logged_in.set(new.officer is not None)
            self.recording.set(new.recording == "recording")
            self.events.publish(StateChange(old, new, reason))

    def _compute(self) -> DeviceState:
        recorder = self._capture.recorder
        pending = self._capture.resumes.pending  # cut by a camera fault, still recording
        recording = (recorder.recording if recorder else None) or pending
        health = set(self._storage.health())
        figures = self._storage.figures()
        if self._capture.fault is not None:
            health.add("camera_fault")
        if self._capture.audio_fault is not None:
            health.add("audio_fault")
        if self._capture.recorder_error is not None:
            health.add("recorder_error")
        if not self._clock_synced():
            health.add("clock_unsynced")
        if self._upload_error:
            health.add("upload_error")
        return dataclasses.replace(
            self.state,
            officer=self.officer.personnel_number if self.officer else None,
            recording="recording" if pending else recorder.state.value if recorder else "idle",
            recording_id=recording.recording_id.hex if recording else None,
            recording_seconds=round(recording.duration_s, 1) if recording else 0.0,
            docked=self._docked,
            dock_pending=self._dock.pending if self._dock is not None else None,
            stealth=self._stealth,
            health=frozenset(health),
            awaiting_upload=figures.awaiting_upload if figures else 0,
            upload_progress=self._upload_progress,
        )

    def _is_recording(self) -> bool:
        """Recording, or resuming one a camera fault cut (no logout until it is stopped)."""
        recorder = self._capture.recorder
        running = recorder is not None and recorder.recording is not None
        return running or self._capture.resumes.pending is not None

    def _recorder_buffering(self, enabled: bool) -> None:
        if self._capture.recorder is not None:
            self._capture.recorder.set_buffering(enabled)
