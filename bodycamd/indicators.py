"""Indicators: what the LEDs and the buzzer show, as a pure function of the device state.

The announce LED faces the person being filmed and the tones are heard by them: telling
people they are recorded is a legal feature. Stealth (everything dark and silent while
recording) exists only when policy allows it, and every change of it is audited.

`patterns(state)` gives each light a Blink (solid, dark or a period); `tones(old, new)` gives
the beeps a state change sounds. A request the device refuses (a press while logged out, no
room to record) is shown where it was made: `IndicatorDriver.refused(t)` sounds REFUSAL_TONE
and flashes the amber LED (REFUSAL_FLASH) for REFUSAL_SECONDS, then the state's own pattern
returns; a stealth recording stays dark and silent. The driver (IndicatorDriver) turns all
of it into pin levels at given instants, so every pattern is testable with exact times and
no hardware.
docs/indicators.md carries the table `indicator_table()` generates.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from .config import IndicatorConfig
from .state import DeviceState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Blink:
    on: float
    off: float

    def level_at(self, t: float) -> bool:
        if self.off == 0:
            return True
        if self.on == 0:
            return False
        return math.fmod(t, self.on + self.off) < self.on

    def next_change(self, t: float) -> float:
        if self.on == 0 or self.off == 0:
            return math.inf
        period = self.on + self.off
        phase = math.fmod(t, period)
        return t + (self.on - phase if phase < self.on else period - phase)

    def describe(self) -> str:
        if self.off == 0:
            return "on"
        if self.on == 0:
            return "off"
        return f"blink {self.on:g} s on / {self.off:g} s off"


SOLID = Blink(1.0, 0.0)
DARK = Blink(0.0, 1.0)
SHORT_BEEPS = ((0.1, 0.1), (0.1, 0.0))  # recording started
LONG_BEEP = ((0.6, 0.0),)  # recording stopped
REMINDER = ((0.05, 0.0),)  # still recording
REFUSAL_TONE = ((0.05, 0.05), (0.05, 0.05), (0.05, 0.0))  # three pips: "no"
REFUSAL_FLASH = Blink(0.05, 0.05)  # status amber, fast, for REFUSAL_SECONDS
REFUSAL_SECONDS = 1.0


@dataclass(frozen=True)
class Outputs:
    record_led: Blink = DARK
    announce_led: Blink = DARK
    status_green: Blink = DARK
    status_amber: Blink = DARK


@dataclass(frozen=True)
class IndicatorPolicy:
    announce_blink: float = 0.0  # Hz; 0 means solid
    reminder_seconds: float = 120.0

    @classmethod
    def from_config(cls, config: IndicatorConfig) -> IndicatorPolicy:
        """The one reading of `[indicators]`: the panel drives the lights with it and the
        control server reports them with it, so `status` says what the LEDs do."""
        return cls(config.announce_blink_hz, config.reminder_seconds)


# (health flag, amber pattern), highest priority first. Every flag that asks someone to act
# has one: a flag without a pattern left the green LED saying "all is well" (a rejected
# segment showed solid green, "all uploaded", in the dock). audio_fault has none: the
# recording goes on and `status` says it.
HEALTH_PATTERNS: tuple[tuple[str, Blink], ...] = (
    ("camera_fault", Blink(0.1, 0.1)),
    ("recorder_error", Blink(0.1, 0.4)),
    ("journal_error", Blink(0.25, 0.75)),
    ("storage_full", Blink(0.25, 0.25)),
    ("battery_low", Blink(0.1, 1.9)),
    ("storage_low", Blink(1.0, 1.0)),
    ("upload_error", Blink(0.5, 0.2)),
    ("upload_rejected", Blink(0.5, 1.5)),
    ("clock_unsynced", Blink(0.1, 0.9)),
)


def patterns(state: DeviceState, policy: IndicatorPolicy = IndicatorPolicy()) -> Outputs:
    recording = state.recording == "recording"
    if recording and state.stealth:
        return Outputs()
    outputs = Outputs()
    if recording:
        announce = SOLID
        if policy.announce_blink > 0:
            half = 0.5 / policy.announce_blink
            announce = Blink(half, half)
        outputs = replace(outputs, record_led=SOLID, announce_led=announce)
    for flag, amber in HEALTH_PATTERNS:
        if flag in state.health:
            return replace(outputs, status_amber=amber)
    if state.officer is None:
        return replace(outputs, status_amber=SOLID)
    if state.docked:
        if state.upload_progress is not None:
            return replace(outputs, status_green=Blink(0.25, 0.25))
        if state.awaiting_upload == 0:
            return replace(outputs, status_green=SOLID)
    return replace(outputs, status_green=Blink(1.0, 1.0))


def tones(old: DeviceState, new: DeviceState) -> tuple[tuple[float, float], ...]:
    if old.stealth or new.stealth:  # silent into, during and out of a stealth recording
        return ()
    if old.recording != "recording" and new.recording == "recording":
        return SHORT_BEEPS
    if old.recording == "recording" and new.recording != "recording":
        return LONG_BEEP
    return ()


OUTPUT_NAMES = ("record_led", "announce_led", "status_green", "status_amber", "buzzer")


class IndicatorDriver:
    """Applies patterns and beeps to outputs at the instants it is asked to render."""

    def __init__(self, set_output: Callable[[str, bool], None], policy: IndicatorPolicy) -> None:
        self._set = set_output
        self._policy = policy
        self._outputs = Outputs()
        self._epoch = 0.0  # patterns run from the moment they were set
        self._state = DeviceState()
        self._beeps: list[tuple[float, float]] = []  # (start, end) of each beep
        self._last_tone = 0.0
        self._levels: dict[str, bool] = {}
        self._refused_at: float | None = None  # the amber refusal flash runs from here

    def update(self, state: DeviceState, t: float) -> None:
        new = patterns(state, self._policy)
        if new != self._outputs:
            self._outputs, self._epoch = new, t
            log.info(
                "indicators: %s",
                ", ".join(
                    f"{name.replace('_', ' ')} {getattr(new, name).describe()}"
                    for name in OUTPUT_NAMES[:-1]
                ),
            )
        sequence = tones(self._state, state)
        if sequence:
            self._play(sequence, t)
        if state.recording == "recording" and self._state.recording != "recording":
            self._last_tone = t
        self._state = state

    def refused(self, t: float) -> None:
        """Something asked of the device was refused: pips and an amber flash, now."""
        if self._state.stealth and self._state.recording == "recording":
            return
        self._refused_at = t
        self._play(REFUSAL_TONE, t)

    def _refusal_started(self, t: float) -> float | None:
        """When the refusal flash showing at `t` began, or None when none shows."""
        if self._refused_at is not None and t >= self._refused_at + REFUSAL_SECONDS:
            self._refused_at = None
        return self._refused_at

    def _play(self, sequence: tuple[tuple[float, float], ...], t: float) -> None:
        start = max(t, self._beeps[-1][1] + 0.1) if self._beeps else t
        for on, off in sequence:
            self._beeps.append((start, start + on))
            start += on + off
        self._last_tone = t

    def render(self, t: float) -> float:
        """Set every output for instant `t`; returns when something next changes."""
        if (
            self._state.recording == "recording"
            and not self._state.stealth
            and t - self._last_tone >= self._policy.reminder_seconds
        ):
            self._play(REMINDER, t)
        self._beeps = [b for b in self._beeps if b[1] > t]
        phase = t - self._epoch
        levels = {name: getattr(self._outputs, name).level_at(phase) for name in OUTPUT_NAMES[:-1]}
        upcoming = [
            self._epoch + getattr(self._outputs, n).next_change(phase) for n in OUTPUT_NAMES[:-1]
        ]
        refused_at = self._refusal_started(t)
        if refused_at is not None:
            since = t - refused_at
            levels["status_green"] = False
            levels["status_amber"] = REFUSAL_FLASH.level_at(since)
            upcoming.append(refused_at + REFUSAL_SECONDS)
            upcoming.append(refused_at + REFUSAL_FLASH.next_change(since))
        levels["buzzer"] = any(start <= t < end for start, end in self._beeps)
        for name, level in levels.items():
            if self._levels.get(name) != level:
                self._levels[name] = level
                self._set(name, level)
        upcoming += [edge for beep in self._beeps for edge in beep if edge > t]
        if self._state.recording == "recording":
            upcoming.append(self._last_tone + self._policy.reminder_seconds)
        return min(upcoming, default=math.inf)


def table_states() -> list[tuple[str, DeviceState]]:
    """One example state per row of the documented table."""
    logged_in = DeviceState(officer="123456", recording="buffering")
    rows = [
        ("not logged in", DeviceState()),
        ("logged in, buffering (ready)", logged_in),
        ("recording", replace(logged_in, recording="recording")),
        (
            "recording cut by a camera fault, to resume",
            replace(logged_in, recording="recording", health=frozenset({"camera_fault"})),
        ),
        (
            "recording, stealth allowed and on",
            replace(logged_in, recording="recording", stealth=True),
        ),
        (
            "docked, uploading",
            replace(logged_in, docked=True, upload_progress=0.5, awaiting_upload=3),
        ),
        ("docked, all uploaded", replace(logged_in, docked=True)),
    ]
    rows += [
        (flag.replace("_", " "), replace(logged_in, health=frozenset({flag})))
        for flag, _ in HEALTH_PATTERNS
    ]
    return rows


def indicator_table() -> list[str]:
    """The table of docs/indicators.md, generated from `patterns` itself."""
    lines = [
        "| state | record LED | announce LED | status green | status amber |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, state in table_states():
        out = patterns(state)
        lines.append(
            f"| {name} | {out.record_led.describe()} | {out.announce_led.describe()} "
            f"| {out.status_green.describe()} | {out.status_amber.describe()} |"
        )
    return lines
