"""The control socket: a local API for `bodycamctl` and bench tools.

The socket lives in the runtime directory with mode 0660 (the daemon's group may talk to
it); the directory must not be writable by others, or anyone could swap the socket. Each
client is bounded: one request line of at most 64 KiB, `control.idle_timeout` seconds to send
it, at most `control.max_clients` at once. A malformed or oversized request ends that
connection with an error, never the daemon. State-changing requests are audited with the
peer's uid and pid (SO_PEERCRED).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .. import __version__
from ..config import ControlConfig
from ..device import Caller, Device
from ..errors import Refused, StorageError
from ..indicators import patterns
from ..recorder.component import CaptureComponent
from ..storage.facade import Storage
from .protocol import MAX_REQUEST, ProtocolError, Request, encode, failure, parse_request, success

log = logging.getLogger(__name__)


class Simulator(Protocol):
    """What `bodycamctl sim` drives; exists only with hardware = "simulated"."""

    async def press(self) -> None: ...

    async def hold(self, seconds: float) -> None: ...

    async def dock(self, docked: bool) -> None: ...


class ControlServer:
    name = "control"

    def __init__(
        self,
        socket_path: Path,
        config: ControlConfig,
        device: Device,
        storage: Storage,
        capture: CaptureComponent,
        simulator: Simulator | None,
        *,
        stealth_allowed: bool = False,
        uploads: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.socket_path = socket_path
        self._uploads = uploads  # the uploader's progress (bodycamd/upload/progress.py)
        self._config = config
        self._device = device
        self._storage = storage
        self._capture = capture
        self._simulator = simulator
        self._stealth_allowed = stealth_allowed
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[Any]] = set()

    # -- component lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        directory = self.socket_path.parent
        directory.mkdir(mode=0o750, parents=True, exist_ok=True)
        mode = directory.stat().st_mode
        if mode & stat.S_IWOTH:
            raise StorageError(
                f"{directory}: writable by others; refusing to put the control socket there"
            )
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()  # a stale socket from a previous run
        self._server = await asyncio.start_unix_server(
            self._client, path=str(self.socket_path), limit=MAX_REQUEST
        )
        os.chmod(self.socket_path, 0o660)  # noqa: PTH101

    async def run(self) -> None:
        return None

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._clients):
                task.cancel()
            await self._server.wait_closed()
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()

    def status(self) -> str:
        return ""

    # -- clients ----------------------------------------------------------------------------

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        """A client that stops reading gets `idle_timeout` seconds, then is cut off: it
        cannot hold a client slot, or the daemon's memory, by never reading."""
        writer.write(data)
        async with asyncio.timeout(self._config.idle_timeout):
            await writer.drain()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            if len(self._clients) >= self._config.max_clients:
                await self._send(
                    writer,
                    failure(
                        None,
                        "busy",
                        f"more than {self._config.max_clients} control clients; try again",
                    ),
                )
                return
            self._clients.add(task)
            await self._serve(reader, writer, _peer(writer))
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: tuple[int, int] | None,
    ) -> None:
        while True:
            try:
                async with asyncio.timeout(self._config.idle_timeout):
                    line = await reader.readline()
            except TimeoutError:
                await self._send(
                    writer,
                    failure(None, "idle", f"no request within {self._config.idle_timeout:g} s"),
                )
                return
            except (asyncio.LimitOverrunError, ValueError):
                await self._send(writer, failure(None, "too_large", "request longer than 64 KiB"))
                return
            if not line:
                return
            if not line.strip():
                continue
            try:
                request = parse_request(line)
            except ProtocolError as exc:
                await self._send(writer, failure(exc.request_id, exc.code, str(exc)))
                return
            caller = Caller("control", *(peer or (None, None)))
            if request.cmd == "events":
                await self._stream_events(request, reader, writer)
                return
            await self._send(writer, await self._answer(request, caller))

    async def _answer(self, request: Request, caller: Caller) -> bytes:
        try:
            result = await self._dispatch(request, caller)
        except Refused as exc:
            return failure(request.id, exc.code, str(exc))
        except ProtocolError as exc:
            return failure(request.id, exc.code, str(exc))
        except Exception:
            log.exception("control request %s failed", request.cmd)
            return failure(request.id, "internal", f"{request.cmd} failed; see the daemon log")
        return success(request.id, result)

    async def _dispatch(self, request: Request, caller: Caller) -> dict[str, Any]:
        device, args = self._device, request.args
        match request.cmd:
            case "status":
                return self.status_result()
            case "login":
                officer = await device.login(args["personnel_number"], caller)
                return {"officer": officer.personnel_number}
            case "logout":
                await device.logout(caller)
                return {}
            case "record_start":
                return {"recording_id": await device.record_start(caller)}
            case "record_stop":
                await device.record_stop(caller)
                return {}
            case "marker":
                await device.marker(str(args.get("note", "")), caller)
                return {}
            case "storage":
                return self._storage_result()
            case "uploads":
                return await self._uploads_result()
            case "stealth":
                await device.set_stealth(bool(args["enabled"]), self._stealth_allowed, caller)
                return {"stealth": device.state.stealth}
            case "sim":
                return await self._simulate(str(args["action"]), float(args.get("seconds", 3.0)))
        raise ProtocolError("unknown_command", request.cmd)  # pragma: no cover

    def status_result(self) -> dict[str, Any]:
        lights = patterns(self._device.state)
        return {
            "version": __version__,
            "summary": self._device.state.summary(),
            "state": self._device.state.to_json(),
            "storage": self._storage_result(),
            "camera": self._capture.status(),
            "upload": self._uploads() if self._uploads else None,
            "indicators": {
                name: getattr(lights, name).describe()
                for name in ("record_led", "announce_led", "status_green", "status_amber")
            },
        }

    def _storage_result(self) -> dict[str, Any]:
        figures = self._storage.figures()
        if figures is None:
            return {}
        return {
            "used_bytes": figures.used,
            "quota_bytes": figures.quota,
            "available_bytes": figures.free,
            "minutes_left": round(figures.minutes_left, 1),
            "low": figures.low,
            "full": figures.full,
            "awaiting_upload": figures.awaiting_upload,
        }

    async def _uploads_result(self) -> dict[str, Any]:
        jobs = await self._storage.upload_jobs()
        root = self._storage.root
        return {
            "docked": self._device.state.docked,
            "progress": self._device.state.upload_progress,
            "upload": self._uploads() if self._uploads else None,
            "queue": [
                {
                    "path": str(job.path.relative_to(root)),
                    "state": job.phase,
                    "size": job.size,
                    "torn": job.torn,
                    "uploaded_bytes": job.upload_offset,
                }
                for job in jobs
            ],
        }

    async def _simulate(self, action: str, seconds: float) -> dict[str, Any]:
        if self._simulator is None:
            raise Refused(
                "unavailable",
                "the simulator exists only with hardware = "
                '"simulated"; this device has real hardware',
            )
        match action:
            case "press":
                await self._simulator.press()
            case "hold":
                if not 0 < seconds <= 60:
                    raise ProtocolError("bad_request", "args.seconds: expected 0 to 60")
                await self._simulator.hold(seconds)
            case "dock" | "undock":
                await self._simulator.dock(action == "dock")
            case "camera-fault":
                self._capture.inject_fault("simulated camera fault")
            case _:
                raise ProtocolError("bad_request", f"args.action: unknown action {action!r}")
        return {"action": action}

    async def _stream_events(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        subscription = self._device.events.subscribe()
        try:
            await self._send(
                writer,
                success(request.id, {"subscribed": True, "state": self._device.state.to_json()}),
            )
            closed = asyncio.create_task(reader.read())  # EOF when the client goes away
            while not closed.done():
                change = asyncio.create_task(subscription.next())
                await asyncio.wait({change, closed}, return_when=asyncio.FIRST_COMPLETED)
                if not change.done():
                    change.cancel()
                    break
                await self._send(writer, encode({"event": change.result().to_json()}))
            closed.cancel()
        finally:
            self._device.events.unsubscribe(subscription)


def _peer(writer: asyncio.StreamWriter) -> tuple[int, int] | None:
    """(uid, pid) of the process at the other end of the socket."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    pid, uid, _gid = struct.unpack("3i", raw)
    return uid, pid
