"""Dock sensing: is the camera in its dock? Three sources, one debounce, one component.

- "gpio": the dock-contact input (hw/gpio), whose edges the GPIO panel reports through the
  sink `DockComponent.route_edges` gives it;
- "power_supply": a power-supply class file such as /sys/class/power_supply/usb/online
  (1 when external power is present: a dock that charges), read once a second;
- "endpoint": the upload endpoint answers a TCP connect (benches without a dock contact),
  probed once a second.

Whatever the source, a level must hold for `dock.stable_seconds` (2 s by default) before it
counts, so a camera wobbling in the cradle does not dock and undock ten times. The settled
state is published as `DockComponent.docked` (a Signal): the device follows it (audit, logout
at the dock) and the uploader waits on it. `pending` says "docking" or "undocking" while a
new level is being debounced, for status lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from .config import DockConfig
from .errors import ConfigError
from .signals import Signal

log = logging.getLogger(__name__)
EdgeSink = Callable[[str, bool, float], None]
POLL_SECONDS = 1.0


class DockDebouncer:
    """Pure: raw levels at times in, settled changes out."""

    def __init__(self, stable_seconds: float, initial: bool = False) -> None:
        self._stable = stable_seconds
        self.settled = initial
        self._candidate = initial
        self._since = 0.0

    def observe(self, level: bool, t: float) -> bool | None:
        """Feed a raw level; returns the new settled level when it changes, else None."""
        if level != self._candidate:
            self._candidate = level
            self._since = t
        return self.poll(t)

    def poll(self, t: float) -> bool | None:
        if self._candidate != self.settled and t - self._since >= self._stable:
            self.settled = self._candidate
            return self.settled
        return None

    @property
    def pending_until(self) -> float | None:
        return None if self._candidate == self.settled else self._since + self._stable


def power_supply_online(path: Path) -> bool:
    try:
        return path.read_text().strip() == "1"
    except OSError:
        return False


PROBE_SECONDS = 2.0


async def endpoint_reachable(host: str, port: int) -> bool:
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def poll_dock(
    read: Callable[[], Awaitable[bool]],
    debouncer: DockDebouncer,
    on_change: Callable[[bool], Awaitable[None]],
    *,
    interval: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """For the file and endpoint sources: sample, debounce, report; runs until cancelled."""
    while True:
        settled = debouncer.observe(await read(), clock())
        if settled is not None:
            await on_change(settled)
        await sleep(interval)


def dock_endpoint(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f'dock.endpoint: expected "host:port", got "{value}"')
    return host, int(port)


class DockComponent:
    name = "dock"

    def __init__(
        self,
        config: DockConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self._debouncer = DockDebouncer(config.stable_seconds)
        self.docked = Signal("docked")
        self._contact: Callable[[], bool] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()

    @property
    def source(self) -> str:
        return self._config.source

    @property
    def pending(self) -> str | None:
        """"docking" or "undocking" while a new level waits out the debounce, else None."""
        if self._debouncer.pending_until is None:
            return None
        return "undocking" if self._debouncer.settled else "docking"

    # -- the gpio contact -----------------------------------------------------------------------

    def route_edges(self, panel: EdgeSink) -> EdgeSink:
        """The GPIO panel reports button and dock-contact edges through one sink (on
        gpiozero's thread): the contact's come here, the rest go on to the panel."""

        def route(kind: str, level: bool, t: float) -> None:
            if kind == "dock":
                self.post_contact(level, t)
            else:
                panel(kind, level, t)

        return route

    def attach_contact(self, read: Callable[[], bool]) -> None:
        """How to read the contact's level now (at start; edges follow via post_contact)."""
        self._contact = read

    def post_contact(self, level: bool, t: float) -> None:
        """Any thread: hop onto the loop, never block (DESIGN §3)."""
        loop = self._loop
        if loop is not None and not loop.is_closed() and self.source == "gpio":
            with contextlib.suppress(RuntimeError):  # the loop closed after the check
                loop.call_soon_threadsafe(self.observe, level, t)

    # -- on the loop ----------------------------------------------------------------------------

    def observe(self, level: bool, t: float) -> None:
        """A raw level at time `t`; publishes the settled state when it changes."""
        self._publish(self._debouncer.observe(level, t))
        self._wakeup.set()

    def tick(self, t: float) -> float | None:
        """Timers: a level that has now held long enough. Returns when the next is due."""
        self._publish(self._debouncer.poll(t))
        return self._debouncer.pending_until

    def _publish(self, settled: bool | None) -> None:
        if settled is not None:
            log.info("dock (%s): %s", self.source, "docked" if settled else "undocked")
            self.docked.set(settled)

    # -- component lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        if self.source == "endpoint":
            dock_endpoint(self._config.endpoint)  # a bad value fails the start, by name
        self._loop = asyncio.get_running_loop()
        if self.source == "gpio" and self._contact is not None:
            self.observe(self._contact(), self._clock())

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            if self.source == "gpio":
                task = group.create_task(self._follow_contact(), name="dock-contact")
            else:
                task = group.create_task(self._poll(), name="dock-poll")
            await self._stopping.wait()
            task.cancel()

    async def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    def status(self) -> str:
        state = "docked" if self.docked.value else "undocked"
        pending = f", {self.pending}…" if self.pending else ""
        return f"dock: {state}{pending} ({self.source})"

    async def _follow_contact(self) -> None:
        while True:
            due = self.tick(self._clock())
            timeout = None if due is None else max(due - self._clock(), 0.0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
            self._wakeup.clear()

    async def _poll(self) -> None:
        config = self._config

        async def read() -> bool:
            if config.source == "power_supply":
                path = Path(config.power_supply_online)
                return await asyncio.to_thread(power_supply_online, path)
            host, port = dock_endpoint(config.endpoint)
            return await endpoint_reachable(host, port)

        async def changed(docked: bool) -> None:
            self._publish(docked)

        await poll_dock(
            read,
            self._debouncer,
            changed,
            interval=POLL_SECONDS,
            clock=self._clock,
            sleep=self._sleep,
        )
