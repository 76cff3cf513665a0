"""The supervisor in process: start order, reverse stop, crashes, and the stop deadline."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest

from bodycamd.daemon import EXIT_FAILURE, EXIT_OK, Supervisor
from bodycamd.systemd import Notifier
from tests.conftest import NotifySocket


class Part:
    def __init__(
        self,
        name: str,
        log: list[str],
        *,
        fail_start: bool = False,
        crash: asyncio.Event | None = None,
        hang_on_stop: bool = False,
    ) -> None:
        self.name = name
        self.log = log
        self.fail_start = fail_start
        self.crash = crash
        self.hang_on_stop = hang_on_stop
        self.stopped = asyncio.Event()
        self.started = asyncio.Event()

    async def start(self) -> None:
        self.log.append(f"start {self.name}")
        self.started.set()
        if self.fail_start:
            raise OSError(f"cannot open /dev/{self.name}")

    async def run(self) -> None:
        if self.crash is not None:
            await self.crash.wait()
            raise ValueError("sensor timed out\nsecond line is not shown")
        await self.stopped.wait()

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        if self.hang_on_stop:
            await asyncio.Event().wait()
        self.stopped.set()

    def status(self) -> str:
        return f"{self.name}: up"


@pytest.fixture
def notifier(notify_socket: NotifySocket) -> Iterator[Notifier]:
    notifier = Notifier({"NOTIFY_SOCKET": str(notify_socket.path)})
    yield notifier
    notifier.close()


async def test_starts_in_order_and_stops_in_reverse_on_sigterm(
    notify_socket: NotifySocket, notifier: Notifier
) -> None:
    log: list[str] = []
    parts = [Part("storage", log), Part("keys", log), Part("camera", log)]
    supervisor = Supervisor(parts, notifier, stop_timeout=5.0)
    task = asyncio.create_task(supervisor.run())
    await parts[-1].started.wait()
    os.kill(os.getpid(), signal.SIGTERM)
    assert await task == EXIT_OK
    assert log == [
        "start storage",
        "start keys",
        "start camera",
        "stop camera",
        "stop keys",
        "stop storage",
    ]
    ready = notify_socket.receive()
    assert ready == {"READY": "1", "STATUS": "storage: up; keys: up; camera: up"}
    assert notify_socket.receive()["STOPPING"] == "1"


async def test_crash_stops_everything_with_one_line_reason(
    notify_socket: NotifySocket, notifier: Notifier
) -> None:
    log: list[str] = []
    crash = asyncio.Event()
    parts = [Part("storage", log), Part("camera", log, crash=crash)]
    supervisor = Supervisor(parts, notifier, stop_timeout=5.0)
    task = asyncio.create_task(supervisor.run())
    await parts[-1].started.wait()
    crash.set()
    assert await task == EXIT_FAILURE
    assert str(supervisor.failure) == "camera: sensor timed out"
    assert log[-2:] == ["stop camera", "stop storage"]
    assert notify_socket.wait_for("STOPPING")["STATUS"] == "stopping: camera: sensor timed out"


async def test_failed_start_stops_what_started_and_never_reports_ready(
    notify_socket: NotifySocket, notifier: Notifier
) -> None:
    log: list[str] = []
    parts = [Part("storage", log), Part("camera", log, fail_start=True), Part("never", log)]
    supervisor = Supervisor(parts, notifier, stop_timeout=5.0)
    assert await supervisor.run() == EXIT_FAILURE
    assert str(supervisor.failure) == "camera: cannot open /dev/camera"
    assert log == ["start storage", "start camera", "stop storage"]
    assert "READY" not in notify_socket.receive()


async def test_component_that_will_not_stop_is_cancelled_after_the_deadline(
    notify_socket: NotifySocket, notifier: Notifier
) -> None:
    log: list[str] = []
    parts = [Part("storage", log), Part("stuck", log, hang_on_stop=True)]
    supervisor = Supervisor(parts, notifier, stop_timeout=0.05)
    task = asyncio.create_task(supervisor.run())
    await parts[-1].started.wait()
    supervisor.request_stop()
    assert await task == EXIT_FAILURE
    assert str(supervisor.failure) == (
        "stuck: did not stop within 0.05 s; cancelled (never stopped: storage)"
    )


class Changing(Part):
    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__(name, log)
        self.text = "idle"

    def status(self) -> str:
        return f"{self.name}: {self.text}"


async def test_status_line_follows_changes(notify_socket: NotifySocket, notifier: Notifier) -> None:
    log: list[str] = []
    part = Changing("camera", log)
    ticks: list[float] = []
    looping = asyncio.Event()

    async def virtual_sleep(seconds: float) -> None:
        ticks.append(seconds)
        looping.set()
        await asyncio.sleep(0)

    supervisor = Supervisor([part], notifier, stop_timeout=5.0, sleep=virtual_sleep)
    task = asyncio.create_task(supervisor.run())
    await part.started.wait()
    assert notify_socket.receive() == {"READY": "1", "STATUS": "camera: idle"}
    await looping.wait()  # the status loop has taken its first look
    part.text = "RECORDING 5 s"
    received = await asyncio.to_thread(notify_socket.wait_for, "STATUS")
    assert received == {"STATUS": "camera: RECORDING 5 s"}
    supervisor.request_stop()
    assert await task == EXIT_OK
    assert ticks and set(ticks) == {5.0}
