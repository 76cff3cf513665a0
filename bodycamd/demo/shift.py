"""The demo's shift, worked through the control socket as an officer's thumb would: login,
the pre-event buffer, a press, a double-press marker, a 3 s hold, a second recording, the dock;
then the upload, drawn as a one-line progress bar until the flash holds nothing.

Why the `sim` commands and not `record start`: they drive the same mock pins the button logic
reads, so the demo shows what the button does (a bump never stops a recording; a hold does).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..control.client import Connection
from ..errors import ControlError
from .procs import DemoFailed, Processes

OFFICER = "123456"


@dataclass
class ShiftLog:
    """What the shift did, for the summary: recordings in order, and how the marker was made."""

    recordings: list[str] = field(default_factory=list)
    recorded_seconds: dict[str, float] = field(default_factory=dict)  # the daemon's own count
    pressed_seconds: dict[str, float] = field(default_factory=dict)  # wall, press to stop seen
    pre_event: float = 0.0  # the pre-event buffer configured
    marker_by: str = ""
    upload_seconds: float = 0.0  # first upload_started to last segment uploaded (journal)
    polled_seconds: float = 0.0  # dock seen to nothing awaiting, at 1 s polls
    upload_bytes: int = 0
    receipts: int = 0


class Shift:
    def __init__(self, procs: Processes, socket: Path, journal: Path) -> None:
        self._procs = procs
        self._socket = socket
        self._journal = journal
        self._log = procs.log_of("camera")
        self.result = ShiftLog()

    # -- the control socket ---------------------------------------------------------------

    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        try:
            conn = Connection([self._socket])
            try:
                reply = conn.request(cmd, **args)
            finally:
                conn.close()
        except (ControlError, OSError) as exc:
            raise DemoFailed(f"control request {cmd!r} failed ({exc}); see {self._log}") from exc
        if not reply.get("ok"):
            error = json.dumps(reply.get("error"))
            raise DemoFailed(f"control request {cmd!r} refused: {error}; see {self._log}")
        result: dict[str, Any] = reply.get("result") or {}
        return result

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.request("status")["state"]
        return state

    def until(self, ready: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            self._procs.check_alive()
            if time.monotonic() > deadline:
                raise DemoFailed(f"camera: {what} not seen after {timeout:.0f} s; see {self._log}")
            time.sleep(0.1)

    # -- the steps ------------------------------------------------------------------------

    def wait_ready(self, timeout: float = 60.0) -> None:
        self._procs.wait_until("camera", self._socket.exists, timeout)
        self.until(lambda: _answers(self), "the control socket answering", timeout)

    def login(self) -> None:
        self.request("login", personnel_number=OFFICER)
        step(f"officer {OFFICER} logged in")

    def fill_pre_event(self, seconds: float) -> None:
        step(f"waiting {seconds:.0f} s so the pre-event buffer holds footage")
        self.result.pre_event = seconds
        time.sleep(seconds + 0.5)

    def record(self, seconds: float, *, marker_at: float | None) -> None:
        """Press, record `seconds` by the daemon's count (double-press a marker at
        `marker_at`), hold to stop."""
        pressed = time.monotonic()
        self.request("sim", action="press")
        self.until(lambda: self.state()["recording"] == "recording", "recording")
        recording = str(self.state()["recording_id"])
        self.result.recordings.append(recording)
        step(f"button pressed: recording {recording[:8]} started (pre-event footage included)")
        if marker_at is not None:
            self._wait_recorded(marker_at)
            self._double_press(recording)
        self._wait_recorded(seconds)
        step("holding the button 3 s to stop (a short press would not)")
        self.request("sim", action="hold", seconds=3.0)
        self.until(lambda: self.state()["recording"] != "recording", "recording stopped")
        self.result.pressed_seconds[recording] = time.monotonic() - pressed
        seconds_done = self._stopped_seconds(recording)
        self.result.recorded_seconds[recording] = seconds_done
        step(f"recording {recording[:8]} stopped after {seconds_done:.1f} s of footage")

    def _wait_recorded(self, seconds: float) -> None:
        self.until(lambda: self.state()["recording_seconds"] >= seconds, f"{seconds:.0f} s")

    def _double_press(self, recording: str) -> None:
        """Two presses within the double-press window; if the machine is too slow for the
        window, the `marker` command instead (and the summary says so)."""
        before = len(self.markers(recording))
        self.request("sim", action="press")
        self.request("sim", action="press")
        try:
            self.until(lambda: len(self.markers(recording)) > before, "marker", timeout=3.0)
            self.result.marker_by = "button double press"
        except DemoFailed:
            self.request("marker", note="demo marker (double press was too slow)")
            self.until(lambda: len(self.markers(recording)) > before, "marker")
            self.result.marker_by = "marker command (the double press missed its window)"
        step(f"marker added by {self.result.marker_by}")

    def dock(self) -> None:
        self.request("sim", action="dock")
        self.until(lambda: bool(self.state()["docked"]), "docked")
        step("docked: the shift ends, the officer is logged out, the upload begins")

    def upload(self, timeout: float) -> None:
        """Draw the upload's progress once a second until nothing awaits upload."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            self._procs.check_alive()
            uploads = self.request("uploads")
            progress = uploads.get("upload") or {}
            left = len(uploads.get("queue", []))
            _bar(progress, left)
            if left == 0 and progress.get("receipts", 0) > 0:
                break
            if time.monotonic() > deadline:
                print(file=sys.stderr)
                raise DemoFailed(f"upload not finished after {timeout:.0f} s; see {self._log}")
            time.sleep(1.0)
        print()
        self.result.polled_seconds = time.monotonic() - started
        self.result.upload_seconds = self._upload_window() or self.result.polled_seconds
        self.result.upload_bytes = int(progress.get("bytes_done", 0))
        self.result.receipts = int(progress.get("receipts", 0))
        step(f"{self.result.receipts} receipts verified; the flash holds 0 segments")

    # -- the journal (read only) ----------------------------------------------------------

    def audit(self, kind: str) -> list[tuple[int, dict[str, Any]]]:
        """(time_ns, fields) of each audit entry of `kind`, oldest first."""
        with sqlite3.connect(f"file:{self._journal}?mode=ro", uri=True, timeout=10) as db:
            rows = db.execute("SELECT time_ns, fields FROM audit WHERE kind = ?", (kind,))
            return [(int(t), json.loads(f)) for t, f in rows]

    def _upload_window(self) -> float:
        """Seconds from the first `upload_started` to the last segment's upload, as the
        camera's journal recorded them (the 1 s polls are too coarse for a rate)."""
        starts = [t for t, _ in self.audit("upload_started")]
        with sqlite3.connect(f"file:{self._journal}?mode=ro", uri=True, timeout=10) as db:
            (last,) = db.execute("SELECT max(uploaded_ns) FROM segments").fetchone()
        return (int(last) - min(starts)) / 1e9 if starts and last else 0.0

    def markers(self, recording: str) -> list[tuple[int, dict[str, Any]]]:
        hexid = recording.replace("-", "")
        return [(t, f) for t, f in self.audit("marker") if f.get("recording") == hexid]

    def _stopped_seconds(self, recording: str) -> float:
        hexid = recording.replace("-", "")
        self.until(
            lambda: any(f.get("recording") == hexid for _, f in self.audit("recording_stop")),
            "the recording's stop in the audit trail",
        )
        stop = next(f for _, f in self.audit("recording_stop") if f.get("recording") == hexid)
        return float(stop["seconds"])

    def marker_offsets(self, recording: str) -> list[float]:
        """Marker times in seconds from the recording's first frame: the stop entry's wall
        time minus its footage length is when the first frame was taken."""
        hexid = recording.replace("-", "")
        stops = [(t, f) for t, f in self.audit("recording_stop") if f.get("recording") == hexid]
        if not stops:
            return []
        stop_ns, stop = stops[0]
        first_ns = stop_ns - int(float(stop["seconds"]) * 1e9)
        return [(t - first_ns) / 1e9 for t, _ in self.markers(recording)]


def _answers(shift: Shift) -> bool:
    try:
        shift.request("status")
    except DemoFailed:
        return False
    return True


def step(text: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')}  {text}", flush=True)


def _bar(progress: dict[str, Any], left: int, width: int = 30) -> None:
    total = int(progress.get("bytes_total") or 0)
    done = int(progress.get("bytes_done") or 0)
    fraction = min(1.0, done / total) if total else (1.0 if left == 0 else 0.0)
    filled = round(fraction * width)
    rate = float(progress.get("rate") or 0.0) / 1e6
    line = (
        f"  upload [{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}%  "
        f"{done / 1e6:6.2f} MB  {rate:5.2f} MB/s  {left} on flash  "
        f"{progress.get('receipts', 0)} receipts"
    )
    print(f"\r{line:<100}", end="", flush=True)
