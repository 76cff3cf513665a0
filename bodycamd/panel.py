"""The panel component: the record button and the indicators, between the GPIO hardware
(hw/gpio) and the device (device.py). Dock sensing is the DockComponent's (dock.py); the
dock contact's edges are routed to it before they reach the panel (app.py).

Edges arrive from gpiozero's thread through `post` (call_soon_threadsafe only) into a small
bounded queue on the loop (when full, the newest waiting edge gives way to the latest, so
the pin's last level is never lost); button logic is pure (button.py); every device state
change is rendered by the indicator driver onto the outputs. Time comes from an injected
clock, so tests drive it with exact instants.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from .button import Action, ButtonLogic, ButtonTiming
from .config import GpioConfig, IndicatorConfig
from .device import Caller, Device
from .errors import BodycamError, Refused
from .indicators import IndicatorDriver, IndicatorPolicy
from .state import Subscription

log = logging.getLogger(__name__)
EVENT_LIMIT = 64
OUTCOME_LIMIT = 16
EdgeSink = Callable[[str, bool, float], None]


@dataclass(frozen=True)
class ButtonOutcome:
    """What one button action did: `code` is None when it was done, else the refusal's code
    (the simulator reports it to whoever pressed; the indicators signal it on the device)."""

    action: str  # start, stop, marker
    code: str | None = None
    message: str = ""


class PanelHardware(Protocol):
    def set_output(self, name: str, level: bool) -> None: ...

    def close(self) -> None: ...


class PanelComponent:
    name = "panel"

    def __init__(
        self,
        hardware: Callable[[EdgeSink], PanelHardware],
        device: Device,
        gpio: GpioConfig,
        indicators: IndicatorConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._make_hardware = hardware
        self._device = device
        self._gpio = gpio
        self._indicator_config = indicators
        self._clock = clock
        self._sleep = sleep
        self._logic = ButtonLogic(
            ButtonTiming(gpio.debounce_seconds, gpio.hold_seconds, gpio.double_press_seconds)
        )
        # (kind, level, t, edges it stands for: more than 1 once it replaced waiting ones)
        self._events: deque[tuple[str, bool, float, int]] = deque()
        self._wakeup = asyncio.Event()
        self.coalesced_edges = 0  # edges replaced by a later one in a full queue
        self.button_edges = 0  # button edges handled so far (the simulator waits on it)
        self.outcomes: deque[ButtonOutcome] = deque(maxlen=OUTCOME_LIMIT)
        self.outcome_count = 0
        self._edge_handled = asyncio.Event()
        self.hardware: PanelHardware | None = None
        self.driver: IndicatorDriver | None = None
        self._subscription: Subscription | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.hardware = await asyncio.to_thread(self._make_hardware, self._post)
        policy = IndicatorPolicy.from_config(self._indicator_config)
        self.driver = IndicatorDriver(self.hardware.set_output, policy)
        self._subscription = self._device.events.subscribe()
        await self.tick(self._clock())

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            helpers = [group.create_task(self._follow_state(), name="indicator-state")]
            while not self._stopping.is_set():
                due = await self.tick(self._clock())
                wait = min(max(due - self._clock(), 0.0), 1.0)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wakeup.wait()
                self._wakeup.clear()
                await self.drain()
            for task in helpers:
                task.cancel()

    async def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()
        if self._subscription is not None:
            self._device.events.unsubscribe(self._subscription)
        hardware, self.hardware = self.hardware, None
        if hardware is not None:
            await asyncio.to_thread(hardware.close)

    def status(self) -> str:
        return ""

    # -- the thread hop ---------------------------------------------------------------------

    def _post(self, kind: str, level: bool, t: float) -> None:
        """Runs on gpiozero's thread: schedule and return."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._enqueue, kind, level, t)

    def _enqueue(self, kind: str, level: bool, t: float) -> None:
        """Queue an edge; when EVENT_LIMIT are already waiting (a bouncing contact while a
        device action is in flight), the newest waiting edge is replaced by this one. The
        queue stays bounded, the edges that began the burst (the press that starts a
        recording) are kept, and the last slot always holds the pin's latest level and its
        time: dropping that instead could lose the final release, and the logic would judge
        the button still down and fire a hold (STOP) 3 s later. Only button edges come here
        (the dock's are routed to the DockComponent, app.py), so no other kind is lost."""
        stands_for = 1
        if len(self._events) >= EVENT_LIMIT:
            stands_for += self._events.pop()[3]
            self.coalesced_edges += 1
        self._events.append((kind, level, t, stands_for))
        self._wakeup.set()

    # -- work on the loop -------------------------------------------------------------------

    async def drain(self) -> None:
        """Handle every queued edge, in order."""
        while self._events:
            kind, level, t, stands_for = self._events.popleft()
            if kind == "button":
                recording = self._device.state.recording == "recording"
                await self._act(self._logic.edge(level, t, recording), t)
                self.button_edges += stands_for  # those it replaced count as handled too
                self._edge_handled.set()

    async def tick(self, t: float) -> float:
        """Timers: a hold that has lasted long enough, the indicators. Returns when the next
        one is due. Edges already queued happened before `t`, so they are taken first: a
        release still in the queue must end a press before the press is judged a hold."""
        await self.drain()
        recording = self._device.state.recording == "recording"
        await self._act(self._logic.poll(t, recording), t)
        due = math.inf
        if self.driver is not None:
            self.driver.update(self._device.state, t)
            due = self.driver.render(t)
        if self._logic.next_due is not None:
            due = min(due, self._logic.next_due)
        return due

    @property
    def button_pressed(self) -> bool:
        """The button's debounced level, as the button logic last judged it."""
        return self._logic.pressed

    async def button_handled(self, edges: int) -> None:
        """Until `edges` button edges in all have been handled (their actions taken); edges
        coalesced in a full queue count once the edge that replaced them is handled."""
        while self.button_edges < edges:
            self._edge_handled.clear()
            await self._edge_handled.wait()

    def outcomes_since(self, count: int) -> list[ButtonOutcome]:
        """The outcomes after the `count`-th (as many as are still kept)."""
        new = min(self.outcome_count - count, len(self.outcomes))
        return list(self.outcomes)[len(self.outcomes) - new :]

    async def _act(self, actions: list[Action], t: float) -> None:
        for action in actions:
            caller = Caller("button")
            outcome = ButtonOutcome(action.value)
            try:
                if action is Action.START:
                    await self._device.record_start(caller)
                elif action is Action.STOP:
                    await self._device.record_stop(caller)
                else:
                    await self._device.marker("button double press", caller)
            except Refused as exc:
                log.warning("button %s refused: %s", action.value, exc)
                outcome = ButtonOutcome(action.value, exc.code, str(exc))
                if self.driver is not None:
                    self.driver.refused(t)  # pips and an amber flash: the officer is told
            except BodycamError as exc:  # e.g. the journal could not be written
                log.error("button %s failed: %s", action.value, exc)
                outcome = ButtonOutcome(action.value, "internal", str(exc))
            self.outcomes.append(outcome)
            self.outcome_count += 1
            if self.driver is not None:  # show it now, not on the next tick
                self.driver.update(self._device.state, t)
                self.driver.render(t)

    async def _follow_state(self) -> None:
        assert self._subscription is not None
        while True:
            await self._subscription.next()
            self._wakeup.set()
