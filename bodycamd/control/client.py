"""The client side of the control socket: find the daemon's socket, send a request line,
read a bounded answer. `bodycamctl` (ctl.py) and the demo's shift both talk to the daemon
through it.

Every failure is one line, as a ControlUnreachable (no daemon at any socket tried: bodycamctl
exits 4) or a ControlFailed (reached, but it hung up, did not answer in time, or sent what
is not a JSON object: exit 1); see errors.py. An answer is read with a byte bound
(MAX_RESPONSE): a peer that is not bodycamd cannot make the client buffer without end.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import ControlFailed, ControlUnreachable

CANDIDATES = (Path("/run/bodycamd/control.sock"), Path("var/run/control.sock"))
MAX_RESPONSE = 16 * 2**20  # a long upload queue is the largest answer; more is not bodycamd
TIMEOUT = 30.0


def socket_paths(explicit: Path | None) -> list[Path]:
    """Where to look, in order: --socket, else $BODYCAMD_SOCKET, else the candidates."""
    if explicit is not None:
        return [explicit]
    if env := os.environ.get("BODYCAMD_SOCKET"):
        return [Path(env)]
    return list(CANDIDATES)


def default_socket() -> Path:
    paths = socket_paths(None)
    return next((p for p in paths if p.exists()), paths[0])


class Connection:
    """One connection to the daemon; every failure is ControlUnreachable or ControlFailed,
    one line."""

    def __init__(self, paths: Sequence[Path], timeout: float = TIMEOUT) -> None:
        self._timeout = timeout
        tried = []
        for path in paths:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(str(path))
            except OSError as exc:
                sock.close()
                tried.append(f"{path} ({exc.strerror or exc})")
                continue
            self._adopt(sock)
            return
        raise ControlUnreachable(f"cannot reach bodycamd; tried {', '.join(tried)}")

    @classmethod
    def over(cls, sock: socket.socket, timeout: float = TIMEOUT) -> Connection:
        """A connection on a socket that is already connected (tests, socket activation)."""
        connection = cls.__new__(cls)
        connection._timeout = timeout
        sock.settimeout(timeout)
        connection._adopt(sock)
        return connection

    def _adopt(self, sock: socket.socket) -> None:
        self._sock = sock
        self._file = sock.makefile("rwb")

    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        line = json.dumps({"v": 1, "cmd": cmd, "args": args}).encode() + b"\n"
        try:
            self._file.write(line)
            self._file.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it hung up (busy, most likely): its answer may still be there to read
        except TimeoutError as exc:
            raise ControlFailed(f"bodycamd took no request within {self._timeout:g} s") from exc
        except OSError as exc:
            raise ControlFailed(f"cannot send to bodycamd: {exc.strerror or exc}") from exc
        return self.read()

    def read(self) -> dict[str, Any]:
        try:
            line = self._file.readline(MAX_RESPONSE)
        except TimeoutError as exc:
            raise ControlFailed(f"bodycamd did not answer within {self._timeout:g} s") from exc
        except OSError as exc:
            raise ControlFailed(f"lost the connection to bodycamd: {exc.strerror or exc}") from exc
        if not line:
            raise ControlFailed("bodycamd closed the connection without an answer")
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise ControlFailed(f"bodycamd's answer is not JSON: {line[:60]!r}") from exc
        if not isinstance(message, dict):
            raise ControlFailed(f"bodycamd's answer is not an object: {line[:60]!r}")
        return message

    def events(self) -> Iterator[dict[str, Any]]:
        self._sock.settimeout(None)
        while True:
            yield self.read()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        self._sock.close()
