"""What the record button means, as pure logic over timed edges (no pins, no threads).

Defaults follow the leading body cameras: one press starts a recording; stopping needs a
hold of `hold_seconds` (3 s), so a bump never ends a recording; a double press while
recording adds a marker. Edges closer together than `debounce_seconds` are contact bounce
and are ignored (gpiozero's mock pins, unlike real contacts, never bounce; ours are
debounced here, in software, either way).

Feed it `pressed(t)` / `released(t)` with monotonic seconds and `poll(t)` from a timer; each
returns the actions to take. Time is always passed in, so tests use exact instants.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Action(enum.Enum):
    START = "start"
    STOP = "stop"
    MARKER = "marker"


@dataclass(frozen=True)
class ButtonTiming:
    debounce_seconds: float = 0.05
    hold_seconds: float = 3.0
    double_press_seconds: float = 0.5


class ButtonLogic:
    def __init__(self, timing: ButtonTiming) -> None:
        self._timing = timing
        self._down_since: float | None = None
        self._last_edge = float("-inf")
        self._last_press_recording: float | None = None
        self._hold_fired = False

    @property
    def hold_due(self) -> float | None:
        """When `poll` should next be called to catch a hold, if the button is down."""
        if self._down_since is None or self._hold_fired:
            return None
        return self._down_since + self._timing.hold_seconds

    def pressed(self, t: float, recording: bool) -> list[Action]:
        if self._down_since is not None or t - self._last_edge < self._timing.debounce_seconds:
            return []
        self._last_edge = t
        self._down_since = t
        self._hold_fired = False
        if not recording:
            self._last_press_recording = None
            return [Action.START]
        previous = self._last_press_recording
        self._last_press_recording = t
        if previous is not None and t - previous <= self._timing.double_press_seconds:
            self._last_press_recording = None
            return [Action.MARKER]
        return []

    def released(self, t: float, recording: bool) -> list[Action]:
        if self._down_since is None or t - self._last_edge < self._timing.debounce_seconds:
            return []
        actions = self.poll(t, recording)
        self._last_edge = t
        self._down_since = None
        return actions

    def poll(self, t: float, recording: bool) -> list[Action]:
        """A hold is recognised as soon as it has lasted `hold_seconds`, still held or not."""
        due = self.hold_due
        if due is None or t < due:
            return []
        self._hold_fired = True
        self._last_press_recording = None
        return [Action.STOP] if recording else []
