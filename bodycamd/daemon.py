"""The supervisor: one event loop, one TaskGroup, components up in order and down in reverse.

Each component is started in dependency order (storage before anything that writes, keys
before anything that signs); once all are up the daemon reports READY=1. On SIGTERM or SIGINT,
or when one component's background task fails, every started component is stopped in reverse
order, so the recorder seals its open segment before storage goes away. A component crash
turns into a non-zero exit with one line naming the component and the reason.

Shutdown is bounded by ``daemon.stop_timeout``: a component that does not stop in time is
cancelled and the exit is non-zero, so systemd's Restart=on-failure sees it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from .errors import ComponentFailed
from .systemd import Notifier, watchdog_loop

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
STATUS_INTERVAL = 5.0  # seconds between checks of the status line


class Component(Protocol):
    """A part of the daemon with a lifecycle. `run` may return at once if it has no
    background work; raising from `start` or `run` stops the whole daemon."""

    name: str

    async def start(self) -> None: ...

    async def run(self) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> str: ...


def describe(exc: BaseException) -> str:
    """One line for an exception: its message, or its type when it has none."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Supervisor:
    def __init__(
        self,
        components: Sequence[Component],
        notifier: Notifier,
        *,
        stop_timeout: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        debug: bool = False,
    ) -> None:
        self._debug = debug
        self._components = list(components)
        self._notifier = notifier
        self._stop_timeout = stop_timeout
        self._sleep = sleep
        self._stop = asyncio.Event()
        self._failure: ComponentFailed | None = None
        self._started: list[Component] = []
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def failure(self) -> ComponentFailed | None:
        """The first failure that stopped the daemon, if any."""
        return self._failure

    def request_stop(self) -> None:
        self._stop.set()

    def status_line(self) -> str:
        parts = [c.status() for c in self._components]
        return "; ".join(p for p in parts if p)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            return await self._run()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("received %s, stopping", sig.name)
        self._stop.set()

    def _fail(self, failure: ComponentFailed, cause: BaseException | None = None) -> None:
        failure.__cause__ = cause
        if self._failure is None:
            self._failure = failure
        self._stop.set()

    async def _run(self) -> int:
        async with asyncio.TaskGroup() as group:
            for component in self._components:
                if self._stop.is_set():
                    break
                try:
                    await component.start()
                except Exception as exc:
                    self._fail(ComponentFailed(component.name, describe(exc)), exc)
                    break
                self._started.append(component)
                self._tasks[component.name] = group.create_task(
                    self._watch(component), name=component.name
                )
            housekeeping: list[asyncio.Task[None]] = []
            if not self._stop.is_set():
                status = self.status_line()
                log.info("ready: %s", status)
                self._notifier.ready(status)
                housekeeping.append(group.create_task(self._status_loop(), name="status"))
                interval = self._notifier.watchdog_interval
                if interval is not None:
                    housekeeping.append(
                        group.create_task(
                            watchdog_loop(self._notifier, interval, self._sleep), name="watchdog"
                        )
                    )
            await self._stop.wait()
            reason = "stopping" if self._failure is None else f"stopping: {self._failure}"
            self._notifier.stopping(reason)
            await self._stop_started()  # the watchdog keeps pinging while components seal
            for task in housekeeping:
                task.cancel()
        if self._failure is not None:
            cause = self._failure.__cause__ if self._debug else None
            log.error("%s", self._failure, exc_info=cause)
            return EXIT_FAILURE
        log.info("stopped cleanly")
        return EXIT_OK

    async def _status_loop(self) -> None:
        """Keep systemd's STATUS= current: send the one-line summary whenever it changes, and
        resend a READY/STOPPING that a full notify queue held back."""
        last = self.status_line()
        while True:
            await self._sleep(STATUS_INTERVAL)
            line = self.status_line()
            if line != last:
                self._notifier.status(line)
                last = line
            else:
                self._notifier.flush()

    async def _watch(self, component: Component) -> None:
        try:
            await component.run()
        except Exception as exc:
            self._fail(ComponentFailed(component.name, describe(exc)), exc)

    async def _stop_started(self) -> None:
        """Stop in reverse start order, then let every background task finish, all within
        one deadline; whatever is still running then is cancelled and counted a failure."""
        pending = list(reversed(self._started))
        try:
            async with asyncio.timeout(self._stop_timeout):
                while pending:
                    component = pending[0]
                    try:
                        await component.stop()
                    except Exception as exc:
                        self._fail(ComponentFailed(component.name, f"stop: {describe(exc)}"), exc)
                    pending.pop(0)
                await asyncio.gather(*self._tasks.values())
        except TimeoutError:
            stuck = [c.name for c in pending] or [
                name for name, task in self._tasks.items() if not task.done()
            ]
            reason = f"did not stop within {self._stop_timeout:g} s; cancelled"
            if len(stuck) > 1:
                reason += f" (never stopped: {', '.join(stuck[1:])})"
            self._fail(ComponentFailed(stuck[0] if stuck else "shutdown", reason))
            for task in self._tasks.values():
                task.cancel()
