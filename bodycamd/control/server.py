"""The control socket: a local API for `bodycamctl` and bench tools.

The socket lives in the runtime directory with mode 0660 (the daemon's group may talk to
it); the directory must not be writable by others, or anyone could swap the socket.

Every byte a client sends is bounded: a request line is at most 64 KiB (the stream reader's
limit, so no more is ever buffered), sent within `control.idle_timeout` seconds, one deadline
per request that blank lines do not restart (a client sending only blank lines is idle); an
event stream (stream.py) reads and discards what its client sends, at most 64 KiB in all.
Clients come in pools: `control.max_clients` request clients, `control.max_streams` event
streams apart from them, and when the request pool is full, STATUS_RESERVE more connections
that may only ask for `status`, within RESERVED_GRACE seconds of connecting (once: one
request, one deadline), so watchers or silent clients never lock a person out of finding out
what the device is doing. A malformed or oversized request ends that connection with an
error, never the daemon. State-changing requests are audited with the peer's uid and pid
(SO_PEERCRED).
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
from ..errors import BodycamError, Refused, StorageError
from ..indicators import IndicatorPolicy, patterns
from ..panel import ButtonOutcome
from ..recorder.component import CaptureComponent
from ..storage.facade import Storage
from .protocol import MAX_REQUEST, ProtocolError, Request, failure, parse_request, success
from .status import camera_description, health_reasons, storage_result
from .stream import stream_events

log = logging.getLogger(__name__)
STATUS_RESERVE = 2  # connections beyond max_clients that may still ask for `status`
RESERVED_GRACE = 2.0  # seconds such a connection gets to send its request


class Simulator(Protocol):
    """What `bodycamctl sim` drives; exists only with hardware = "simulated"."""

    async def press(self) -> list[ButtonOutcome]: ...

    async def hold(self, seconds: float) -> list[ButtonOutcome]: ...

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
        indicator_policy: IndicatorPolicy | None = None,
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
        # what `status` reports the LEDs doing: the panel's policy
        self._indicator_policy = indicator_policy or IndicatorPolicy()
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[Any]] = set()  # request clients
        self._reserve: set[asyncio.Task[Any]] = set()  # status-only, when clients are full
        self._streams: set[asyncio.Task[Any]] = set()  # event streams, their own pool

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
            for task in [*self._clients, *self._reserve, *self._streams]:
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
        """One connection, from accept to close. Whatever happens here ends this connection
        only: nothing propagates to asyncio's "unhandled exception" handler."""
        task = asyncio.current_task()
        assert task is not None
        try:
            if len(self._clients) < self._config.max_clients:
                self._clients.add(task)
                await self._serve(reader, writer, _peer(writer))
            elif len(self._reserve) < STATUS_RESERVE:
                self._reserve.add(task)
                await self._serve_reserved(reader, writer, _peer(writer))
            else:
                await self._send(writer, self._busy())
        except (ConnectionError, TimeoutError):
            pass
        except Exception:  # a bug: log it with its traceback, keep the daemon
            log.exception("control client failed")
        finally:
            self._clients.discard(task)
            self._reserve.discard(task)
            self._streams.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _busy(self) -> bytes:
        return failure(
            None, "busy", f"more than {self._config.max_clients} control clients; try again"
        )

    async def _read_request(
        self, reader: asyncio.StreamReader, seconds: float
    ) -> Request | bytes | None:
        """The next request, or the error reply that ends the connection, or None at EOF.
        At most MAX_REQUEST bytes are ever buffered: the reader's limit bounds the line.

        One deadline per request, `seconds` from now: blank lines are skipped but do not
        restart it, so a client sending nothing but blank lines is idle like a silent one,
        and cannot hold a request slot, or a reserved slot past its grace, by dripping them."""
        try:
            async with asyncio.timeout(seconds):
                line = await _next_line(reader)
        except TimeoutError:
            return failure(None, "idle", f"no request within {seconds:g} s")
        except asyncio.LimitOverrunError:
            return failure(None, "too_large", "request longer than 64 KiB")
        if line is None:
            return None
        try:
            return parse_request(line)
        except ProtocolError as exc:
            return failure(exc.request_id, exc.code, str(exc))

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: tuple[int, int] | None,
    ) -> None:
        caller = Caller("control", *(peer or (None, None)))
        while True:
            request = await self._read_request(reader, self._config.idle_timeout)
            if request is None:
                return
            if isinstance(request, bytes):
                await self._send(writer, request)
                return
            if request.cmd == "events":
                await self._start_stream(request, reader, writer)
                return
            await self._send(writer, await self._answer(request, caller))

    async def _start_stream(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Move this connection from the request pool (or the reserve) into the stream pool,
        if it has room: a watcher never holds a request slot, nor needs a free one."""
        task = asyncio.current_task()
        assert task is not None
        if len(self._streams) >= self._config.max_streams:
            limit = self._config.max_streams
            await self._send(
                writer, failure(request.id, "busy", f"more than {limit} event streams; try again")
            )
            return
        self._clients.discard(task)
        self._reserve.discard(task)
        self._streams.add(task)
        await stream_events(self._device, request, reader, writer, self._send)

    async def _serve_reserved(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: tuple[int, int] | None,
    ) -> None:
        """Every request slot is taken: serve one `status` (it changes nothing and is what a
        person types to find out what is wrong) or start an event stream (its own pool);
        refuse anything else with `busy`."""
        request = await self._read_request(reader, RESERVED_GRACE)
        if request is None:
            return
        if isinstance(request, bytes):
            await self._send(writer, request)
        elif request.cmd == "events":
            await self._start_stream(request, reader, writer)
        elif request.cmd == "status":
            caller = Caller("control", *(peer or (None, None)))
            await self._send(writer, await self._answer(request, caller))
        else:
            await self._send(writer, self._busy())

    async def _answer(self, request: Request, caller: Caller) -> bytes:
        try:
            result = await self._dispatch(request, caller)
        except Refused as exc:
            return failure(request.id, exc.code, str(exc))
        except ProtocolError as exc:
            return failure(request.id, exc.code, str(exc))
        except BodycamError as exc:  # e.g. the journal could not be written: one line
            log.error("control request %s failed: %s", request.cmd, exc)
            return failure(request.id, "internal", f"{request.cmd} failed: {exc}")
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
                note = await device.record_stop(caller)
                return {"note": note} if note else {}
            case "marker":
                await device.marker(str(args.get("note", "")), caller)
                return {}
            case "storage":
                return self._storage_result()
            case "uploads":
                return await self._uploads_result()
            case "upload_retry":  # a rejected segment back to the queue (audited with caller)
                await self._storage.retry_rejected(str(args["path"]), **caller.audit_fields())
                return {"path": args["path"]}
            case "stealth":
                await device.set_stealth(bool(args["enabled"]), self._stealth_allowed, caller)
                return {"stealth": device.state.stealth}
            case "sim":
                return await self._simulate(str(args["action"]), float(args.get("seconds", 3.0)))
        raise ProtocolError("unknown_command", request.cmd)  # pragma: no cover

    def status_result(self) -> dict[str, Any]:
        state = self._device.state
        lights = patterns(state, self._indicator_policy)
        return {
            "version": __version__,
            "summary": state.summary(),
            "state": state.to_json(),
            "health": health_reasons(state.health, self._capture.fault),
            "storage": self._storage_result(),
            "camera": camera_description(self._capture.status()),
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
        return storage_result(figures)

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
                    "last_error": job.last_error,
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
            case "press" | "hold":  # seconds checked by the parser
                if action == "press":
                    outcomes = await self._simulator.press()
                else:
                    outcomes = await self._simulator.hold(seconds)
                for outcome in outcomes:
                    if outcome.code is not None:
                        raise Refused(
                            outcome.code,
                            f"the button's {outcome.action} was refused: {outcome.message}",
                        )
                return {"action": action, "button": [o.action for o in outcomes]}
            case "dock" | "undock":
                await self._simulator.dock(action == "dock")
            case "camera-fault":
                self._capture.inject_fault("simulated camera fault")
            case _:
                raise ProtocolError("bad_request", f"args.action: unknown action {action!r}")
        return {"action": action}


async def _next_line(reader: asyncio.StreamReader) -> bytes | None:
    """The next line that is not blank (the last one may lack its newline), or None at EOF."""
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            line = exc.partial  # the last line, without its newline
            return line if line.strip() else None
        if line.strip():
            return line


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
