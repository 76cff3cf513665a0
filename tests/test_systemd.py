from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from bodycamd.systemd import Notifier, watchdog_loop
from tests.conftest import NotifySocket


def test_silent_without_notify_socket() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    notifier.ready("fine")  # must not raise or create a socket
    assert notifier.watchdog_interval is None


def test_ready_status_stopping_reach_the_socket(notify_socket: NotifySocket) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(notify_socket.path)})
    notifier.ready("storage up")
    assert notify_socket.receive() == {"READY": "1", "STATUS": "storage up"}
    notifier.status("recording")
    assert notify_socket.receive() == {"STATUS": "recording"}
    notifier.stopping()
    assert notify_socket.receive() == {"STOPPING": "1", "STATUS": "stopping"}
    notifier.close()


def test_abstract_socket_address() -> None:
    name = f"bodycamd-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(b"\0" + name.encode())
    server.settimeout(10)
    try:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        notifier.watchdog()
        notifier.close()
        assert server.recv(100) == b"WATCHDOG=1"
    finally:
        server.close()


def test_unreachable_socket_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    notifier.ready("x")
    notifier.close()
    assert "sd_notify" in caplog.text


@pytest.mark.parametrize(
    ("env", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec(
    env: dict[str, str], interval: float | None
) -> None:
    assert Notifier(env).watchdog_interval == interval


async def test_watchdog_pings_at_the_interval_on_virtual_time(
    notify_socket: NotifySocket,
) -> None:
    """An injected sleep advances a virtual clock: five pings, 15 s apart, no real waiting."""
    notifier = Notifier({"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "30000000"})
    interval = notifier.watchdog_interval
    assert interval is not None
    virtual_now = 0.0
    ping_times: list[float] = []
    real_watchdog = notifier.watchdog

    def stamped_watchdog() -> None:
        ping_times.append(virtual_now)
        real_watchdog()

    notifier.watchdog = stamped_watchdog  # type: ignore[method-assign]

    async def virtual_sleep(seconds: float) -> None:
        nonlocal virtual_now
        virtual_now += seconds
        if len(ping_times) >= 5:
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    with pytest.raises(asyncio.CancelledError):
        await watchdog_loop(notifier, interval, virtual_sleep)
    assert ping_times == [0.0, 15.0, 30.0, 45.0, 60.0]
    assert [notify_socket.receive() for _ in range(5)] == [{"WATCHDOG": "1"}] * 5
    notifier.close()
