"""Device state as data: `(officer, recording, dock, health)` and the events that change it.

The state is a frozen value; whoever owns a part of it (device.py) makes a new one and
publishes the change. Consumers (the control API's event stream, the indicator driver, the
systemd STATUS line) read values and subscribe to changes; none of them holds a flag of its
own. Indicator patterns are a pure function of this value (indicators.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

RecordingState = Literal["idle", "buffering", "recording"]
HEALTH_FLAGS = (
    "storage_low",
    "storage_full",
    "camera_fault",
    "audio_fault",
    "recorder_error",  # a recording stopped by an error the recorder did not expect
    "clock_unsynced",
    "battery_low",
    "upload_error",
    "upload_rejected",  # the ingest refused a segment: kept on flash until an operator acts
    "journal_error",  # the audit trail could not be written (storage façade rule)
)


@dataclass(frozen=True)
class DeviceState:
    officer: str | None = None
    recording: RecordingState = "idle"
    recording_id: str | None = None
    recording_seconds: float = 0.0
    docked: bool = False
    dock_pending: str | None = None  # "docking" / "undocking" while the dock level settles
    stealth: bool = False
    health: frozenset[str] = frozenset()
    awaiting_upload: int = 0
    upload_progress: float | None = None  # 0..1 while uploading, None when not

    def summary(self) -> str:
        """One line for people: the STATUS= line and `bodycamctl status` headline."""
        parts = [f"officer {self.officer}" if self.officer else "nobody logged in"]
        if self.recording == "recording":
            minutes, seconds = divmod(int(self.recording_seconds), 60)
            parts.append(f"RECORDING {minutes:02d}:{seconds:02d}")
        else:
            parts.append(self.recording)
        if self.dock_pending:
            parts.append(f"{self.dock_pending}…")
        elif self.docked:
            parts.append("docked")
        if self.stealth:
            parts.append("stealth")
        if self.health:
            parts.append("health: " + ",".join(sorted(self.health)))
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["health"] = sorted(self.health)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceState:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["health"] = frozenset(values.get("health", ()))
        return cls(**values)


@dataclass(frozen=True)
class StateChange:
    old: DeviceState
    new: DeviceState
    reason: str

    def to_json(self) -> dict[str, Any]:
        changed = [
            f.name
            for f in dataclasses.fields(DeviceState)
            if getattr(self.old, f.name) != getattr(self.new, f.name)
        ]
        return {"reason": self.reason, "changed": changed, "state": self.new.to_json()}


@dataclass
class Subscription:
    """A bounded mailbox. A reader that falls behind loses the oldest changes, not the
    daemon's memory; `overflowed` tells it so it can re-read the whole state."""

    limit: int
    _items: deque[StateChange] = field(default_factory=deque)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: int = 0
    closed: bool = False

    def push(self, change: StateChange) -> None:
        if len(self._items) >= self.limit:
            self._items.popleft()
            self.overflowed += 1
        self._items.append(change)
        self._wakeup.set()

    async def next(self) -> StateChange:
        while not self._items:
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._items.popleft()


class StateEvents:
    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []

    def subscribe(self, limit: int = 256) -> Subscription:
        subscription = Subscription(limit)
        self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.closed = True
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)

    def publish(self, change: StateChange) -> None:
        for subscriber in self._subscribers:
            subscriber.push(change)
