"""What the record button means, as pure logic over timed edges (no pins, no threads).

Defaults follow the leading body cameras: one press starts a recording; stopping needs a
hold of `hold_seconds` (3 s), so a bump never ends a recording; a double press while
recording adds a marker.

Debouncing (gpiozero's mock pins never bounce, real contacts do; ours are debounced here, in
software, either way): the first edge after a quiet spell is taken at once, so a press acts
without delay; edges within `debounce_seconds` of it are bounce, but the level they leave
behind is remembered and taken when the window closes, so a press that is released inside
the window still ends as released. A level taken late is dated from the edge that left it,
not from when it was taken: a hold begun just after a release (inside its window) is timed
from when the button went down, so a 3 s hold stops a recording however soon it follows the
press that started it.

Edges may reach us late and in a batch (the panel queues them while a device action is in
flight), so each call first settles what the earlier edges left, at their own times, before
it judges a hold at the later time: a short press is never judged long because its release
was still queued, and a tap left pending in a window is never lost to the next edge.

Feed it `edge(level, t)` and call `poll(t)` when `next_due` comes; both return the actions to
take. Time is always passed in, so tests use exact instants.
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
        self._down = False  # the debounced level
        self._raw = False  # the last level the pin reported
        self._raw_at = 0.0  # when it reported it
        self._accepted_at = float("-inf")
        self._down_since = 0.0
        self._hold_fired = False
        self._last_press_recording: float | None = None

    @property
    def pressed(self) -> bool:
        """The debounced level: True while the button counts as held down."""
        return self._down

    @property
    def next_due(self) -> float | None:
        """When `poll` must next run: a bounce window closing, or a hold completing."""
        due = []
        if self._raw != self._down:
            due.append(self._accepted_at + self._timing.debounce_seconds)
        if self._down and not self._hold_fired:
            due.append(self._down_since + self._timing.hold_seconds)
        return min(due, default=None)

    def edge(self, level: bool, t: float, recording: bool) -> list[Action]:
        actions = self._settle(t, recording)
        self._raw, self._raw_at = level, t
        if level == self._down or t < self._accepted_at + self._timing.debounce_seconds:
            return actions + self._hold(t, recording)
        return actions + self._accept(level, t, recording)

    def poll(self, t: float, recording: bool) -> list[Action]:
        actions = self._settle(t, recording)
        return actions + self._hold(t, recording)

    def _settle(self, t: float, recording: bool) -> list[Action]:
        """Take the level bounce left behind once its window has closed by `t`, dated from
        the edge that left it (when the button really went down or up)."""
        if self._raw == self._down or t < self._accepted_at + self._timing.debounce_seconds:
            return []
        return self._accept(self._raw, self._raw_at, recording)

    def _accept(self, level: bool, t: float, recording: bool) -> list[Action]:
        self._accepted_at = t
        if not level:
            actions = self._hold(t, recording)
            self._down = False
            return actions
        self._down, self._down_since, self._hold_fired = True, t, False
        if not recording:
            self._last_press_recording = None
            return [Action.START]
        previous, self._last_press_recording = self._last_press_recording, t
        if previous is not None and t - previous <= self._timing.double_press_seconds:
            self._last_press_recording = None
            return [Action.MARKER]
        return []

    def _hold(self, t: float, recording: bool) -> list[Action]:
        """A hold counts as soon as it has lasted `hold_seconds`, held still or just let go."""
        if not self._down or self._hold_fired or t < self._down_since + self._timing.hold_seconds:
            return []
        self._hold_fired = True
        self._last_press_recording = None
        return [Action.STOP] if recording else []
