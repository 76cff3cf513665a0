"""The systemd notify protocol, without a dependency on libsystemd.

systemd tells a Type=notify service where to report through ``NOTIFY_SOCKET`` (a path, or an
abstract socket when it starts with "@") and, when the unit has WatchdogSec=, how often it
expects a ping through ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``, which must be us). With no
``NOTIFY_SOCKET`` every call here is a silent no-op, so the daemon runs the same in a terminal.

The watchdog ping is sent from a coroutine on the daemon's one event loop: if the loop is stuck
(a blocking call in a coroutine, a deadlock), pings stop and systemd restarts the daemon. A
thread would keep pinging for a dead daemon.

Sending never blocks that loop. The receiver's queue is short (net.unix.max_dgram_qlen) and a
slow or hung PID 1, a container manager or a test harness may stop reading it; a blocking
sendto would then stall the camera, the button and the control socket. So the socket is
non-blocking: when the queue is full a STATUS= line is dropped (counted, logged once; the next
change sends a fresh one), while READY=, STOPPING= and WATCHDOG= are kept and sent again with
the next datagram or `flush()`, so systemd still learns them once it reads again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify datagrams; silent when the process was not started by systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self._watchdog_usec = _watchdog_usec(env)
        self._socket: socket.socket | None = None
        self._pending: dict[str, str] = {}  # READY/STOPPING/WATCHDOG not yet delivered
        self.dropped_status = 0
        self._full_logged = False

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between pings (half of WatchdogSec), or None when no watchdog is asked for."""
        return None if self._watchdog_usec is None else self._watchdog_usec / 2_000_000

    def notify(self, *fields: str) -> None:
        """Send one datagram of NAME=value lines, plus whatever READY/STOPPING/WATCHDOG is
        still owed. Never blocks and never raises: a daemon that records footage must not
        stall or die because systemd is slow or went away."""
        if self._address is None:
            return
        message = dict(self._pending)
        for line in fields:
            name, _, value = line.partition("=")
            message[name] = value
        if not message:
            return
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                )
            data = "\n".join(f"{k}={v}" for k, v in message.items()).encode("utf-8", "replace")
            self._socket.sendto(data, socket.MSG_DONTWAIT, self._address)
        except BlockingIOError:
            self._queue_full(message)
            return
        except OSError as exc:
            log.warning("sd_notify to %r failed: %s", self._address, exc)
            self._pending.clear()  # nobody there to owe anything to
            return
        self._pending.clear()
        self._full_logged = False

    def flush(self) -> None:
        """Send READY/STOPPING/WATCHDOG that a full queue held back; call once per tick."""
        if self._pending:
            self.notify()

    def _queue_full(self, message: dict[str, str]) -> None:
        self._pending = {k: v for k, v in message.items() if k != "STATUS"}
        if "STATUS" in message:
            self.dropped_status += 1
        if not self._full_logged:
            self._full_logged = True
            log.warning(
                "sd_notify to %r: the receiver's queue is full; STATUS lines are dropped "
                "and %s will be sent again",
                self._address,
                ", ".join(self._pending) or "nothing else",
            )

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def stopping(self, status: str = "stopping") -> None:
        self.notify("STOPPING=1", f"STATUS={status}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _socket_address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    log.warning("ignoring NOTIFY_SOCKET=%r: expected an absolute path or @abstract name", value)
    return None


def _watchdog_usec(env: Mapping[str, str]) -> int | None:
    raw = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not raw or (pid and pid != str(os.getpid())):
        return None
    try:
        usec = int(raw)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not a number of microseconds", raw)
        return None
    return usec if usec > 0 else None


async def watchdog_loop(
    notifier: Notifier,
    interval: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Ping forever at `interval` seconds; cancel to stop. `sleep` is injectable for tests."""
    while True:
        notifier.watchdog()
        await sleep(interval)
