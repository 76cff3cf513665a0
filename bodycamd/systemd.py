"""The systemd notify protocol, without a dependency on libsystemd.

systemd tells a Type=notify service where to report through ``NOTIFY_SOCKET`` (a path, or an
abstract socket when it starts with "@") and, when the unit has WatchdogSec=, how often it
expects a ping through ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``, which must be us). With no
``NOTIFY_SOCKET`` every call here is a silent no-op, so the daemon runs the same in a terminal.

The watchdog ping is sent from a coroutine on the daemon's one event loop: if the loop is stuck
(a blocking call in a coroutine, a deadlock), pings stop and systemd restarts the daemon. A
thread would keep pinging for a dead daemon.
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

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between pings (half of WatchdogSec), or None when no watchdog is asked for."""
        return None if self._watchdog_usec is None else self._watchdog_usec / 2_000_000

    def notify(self, *fields: str) -> None:
        """Send one datagram of NAME=value lines. Failures are logged, never raised: a daemon
        that recorded footage must not die because systemd went away."""
        if self._address is None:
            return
        message = "\n".join(fields).encode("utf-8", "replace")
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto(message, self._address)
        except OSError as exc:
            log.warning("sd_notify to %r failed: %s", self._address, exc)

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
