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


def fill(path: Path) -> socket.socket:
    """Fill the receiver's datagram queue from a socket of our own, as a PID 1 that stopped
    reading would leave it; returns the sender (keep it open)."""
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender.setblocking(False)
    with pytest.raises(BlockingIOError):
        for _ in range(100_000):
            sender.sendto(b"X-FILLER=1", str(path))
    return sender


def drain(receiver: NotifySocket) -> list[dict[str, str]]:
    receiver.sock.setblocking(False)
    got = []
    try:
        while True:
            data = receiver.sock.recv(65536).decode()
            got.append(dict(line.split("=", 1) for line in data.splitlines() if "=" in line))
    except BlockingIOError:
        pass
    finally:
        receiver.sock.settimeout(30)
    return [fields for fields in got if "X-FILLER" not in fields]


def test_full_queue_drops_status_keeps_ready_and_never_blocks(
    notify_socket: NotifySocket, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(notify_socket.path)})
    filler = fill(notify_socket.path)
    try:
        notifier.ready("up")  # would block here before: the queue is full
        for n in range(5):
            notifier.status(f"busy {n}")
        notifier.watchdog()
        assert notifier.dropped_status == 6
        assert caplog.text.count("queue is full") == 1  # logged once, not per datagram
        assert drain(notify_socket) == []
        notifier.flush()  # the queue has room again: what was owed goes out, STATUS is gone
        assert drain(notify_socket) == [{"READY": "1", "WATCHDOG": "1"}]
        notifier.flush()
        notifier.status("fine")
        assert drain(notify_socket) == [{"STATUS": "fine"}]
    finally:
        filler.close()
        notifier.close()


def test_a_notify_socket_that_stops_reading_never_stalls_the_daemon(
    tmp_path: Path, notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: sd_notify was a blocking sendto on the event loop, so once the receiver's
    queue was full the whole daemon stopped: control requests timed out, the button's hold
    was never seen. Here the queue is full while the camera records and the watchdog pings
    every 0.5 s; the daemon must keep answering and see a 3.2 s hold."""
    from bodycamd.ctl import main as ctl
    from tests.conftest import Daemon
    from tests.test_control import request, wait_for_footage

    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    daemon = Daemon(tmp_path, notify_socket)
    filler = fill(notify_socket.path)
    try:
        sock = ["--socket", str(daemon.socket)]
        assert ctl([*sock, "login", "123456"]) == 0
        assert ctl([*sock, "sim", "press"]) == 0
        wait_for_footage(daemon.socket, 3.0)  # many watchdog pings met a full queue by now
        assert ctl([*sock, "sim", "hold", "3.2"]) == 0
        assert request(daemon.socket, "status")["result"]["state"]["recording"] == "buffering"
        owed = drain(notify_socket)  # the receiver reads again: the owed ping arrives
        while not any("WATCHDOG" in fields for fields in owed):
            owed = [notify_socket.receive()]
    finally:
        filler.close()
        code, err = daemon.stop()
    assert code == 0, err
    assert err.count("queue is full") == 1
