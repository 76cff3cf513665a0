"""`bodycamctl`: the command-line client of the daemon's control socket.

    bodycamctl status | login NUMBER | logout | record start | record stop | marker [NOTE]
    bodycamctl storage | uploads | watch | stealth on|off
    bodycamctl sim press | sim hold SECONDS | sim dock | sim undock | sim camera-fault

Human output by default, `--json` for scripts. Exit status: 0 done, 1 the daemon failed the
request, 2 bad usage or a request the daemon called malformed, 3 refused by policy (not
logged in, storage full, …), 4 the daemon cannot be reached. The socket is `--socket`, else
$BODYCAMD_SOCKET, else the first of /run/bodycamd/control.sock and ./var/run/control.sock
(the `make run` checkout) that exists. There is no command that exports footage.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from .state import DeviceState

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
PROTOCOL_ERRORS = {"bad_request", "unknown_command", "too_large"}
FAILURES = {"internal", "busy", "idle"}
CANDIDATES = (Path("/run/bodycamd/control.sock"), Path("var/run/control.sock"))


class Unreachable(Exception):
    pass


def default_socket() -> Path:
    if env := os.environ.get("BODYCAMD_SOCKET"):
        return Path(env)
    return next((p for p in CANDIDATES if p.exists()), CANDIDATES[0])


class Connection:
    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(str(path))
        except OSError as exc:
            self._sock.close()
            raise Unreachable(f"cannot reach bodycamd at {path}: {exc.strerror or exc}") from exc
        self._file = self._sock.makefile("rwb")

    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        self._file.write(json.dumps({"v": 1, "cmd": cmd, "args": args}).encode() + b"\n")
        self._file.flush()
        return self.read()

    def read(self) -> dict[str, Any]:
        line = self._file.readline()
        if not line:
            raise Unreachable("bodycamd closed the connection")
        message: dict[str, Any] = json.loads(line)
        return message

    def events(self) -> Iterator[dict[str, Any]]:
        self._sock.settimeout(None)
        while True:
            yield self.read()

    def close(self) -> None:
        self._file.close()
        self._sock.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bodycamctl", description=__doc__.splitlines()[0])
    parser.add_argument("--socket", type=Path, help="control socket path")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("status", help="officer, recording, storage, uploads, health")
    login = commands.add_parser("login", help="log in with a personnel number")
    login.add_argument("personnel_number")
    commands.add_parser("logout", help="log out (not while recording)")
    record = commands.add_parser("record", help="start or stop recording")
    record.add_argument("action", choices=["start", "stop"])
    marker = commands.add_parser("marker", help="mark this moment in the recording")
    marker.add_argument("note", nargs="?", default="")
    commands.add_parser("storage", help="flash used, quota, minutes left")
    commands.add_parser("uploads", help="segments awaiting upload")
    commands.add_parser("watch", help="follow state changes until interrupted")
    stealth = commands.add_parser("stealth", help="indicators off while recording (if allowed)")
    stealth.add_argument("mode", choices=["on", "off"])
    sim = commands.add_parser("sim", help="simulated hardware only: work the mock pins")
    sim.add_argument("action", choices=["press", "hold", "dock", "undock", "camera-fault"])
    sim.add_argument("seconds", nargs="?", type=float, default=3.0)
    return parser


def _request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    match args.command:
        case "login":
            return "login", {"personnel_number": args.personnel_number}
        case "record":
            return f"record_{args.action}", {}
        case "marker":
            return "marker", {"note": args.note} if args.note else {}
        case "stealth":
            return "stealth", {"enabled": args.mode == "on"}
        case "sim":
            extra = {"seconds": args.seconds} if args.action == "hold" else {}
            return "sim", {"action": args.action, **extra}
    return str(args.command), {}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    timeout = 30.0
    if args.command == "sim" and args.action == "hold":
        timeout += args.seconds  # the daemon answers once the button is let go
    try:
        connection = Connection(args.socket or default_socket(), timeout)
    except Unreachable as exc:
        print(f"bodycamctl: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    try:
        if args.command == "watch":
            return _watch(connection, args.json, out)
        cmd, params = _request(args)
        response = connection.request(cmd, **params)
    except Unreachable as exc:
        print(f"bodycamctl: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        connection.close()
    if args.json:
        print(json.dumps(response, indent=2, sort_keys=True), file=out)
    if not response.get("ok"):
        error = response.get("error", {})
        code = error.get("code", "internal")
        if not args.json:
            print(f"bodycamctl: {error.get('message', 'failed')} ({code})", file=sys.stderr)
        if code in PROTOCOL_ERRORS:
            return EXIT_USAGE
        return EXIT_FAILED if code in FAILURES else EXIT_REFUSED
    if not args.json:
        print(render(args.command, response["result"]), file=out)
    return EXIT_OK


def _watch(connection: Connection, as_json: bool, out: TextIO) -> int:
    first = connection.request("events")
    if not first.get("ok"):
        print(f"bodycamctl: {first.get('error', {}).get('message')}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(first) if as_json else "watching; Ctrl-C to stop", file=out, flush=True)
    try:
        for message in connection.events():
            event = message.get("event", {})
            if as_json:
                print(json.dumps(message, sort_keys=True), file=out, flush=True)
            else:
                state = event.get("state", {})
                print(
                    f"{event.get('reason')}: {', '.join(event.get('changed', []))} -> "
                    f"{summary(state)}",
                    file=out,
                    flush=True,
                )
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def summary(state: dict[str, Any]) -> str:
    return DeviceState.from_json(state).summary()


def _mib(value: int) -> str:
    return f"{value / 2**20:,.0f} MiB"


def render(command: str, result: dict[str, Any]) -> str:
    if command == "status":
        state, storage = result["state"], result.get("storage", {})
        lines = [
            f"officer:    {state['officer'] or '(nobody logged in)'}",
            "recording:  "
            + (
                f"yes, {state['recording_seconds']:.0f} s (recording {state['recording_id'][:8]})"
                if state["recording"] == "recording"
                else state["recording"]
            ),
        ]
        if storage:
            lines.append(
                f"storage:    {_mib(storage['used_bytes'])} of "
                f"{_mib(storage['quota_bytes'])} used, "
                f"{storage['minutes_left']:.0f} min left"
            )
        lines.append(f"uploads:    {state['awaiting_upload']} segment(s) awaiting upload")
        dock = "docked" if state["docked"] else "not docked"
        if state["upload_progress"] is not None:
            dock += f", uploading {state['upload_progress']:.0%}"
        lines.append(f"dock:       {dock}")
        lines.extend(upload_lines(result.get("upload"))[:1])
        lines.append(f"health:     {', '.join(state['health']) or 'ok'}")
        lines.append(f"camera:     {result['camera'].removeprefix('camera: ')}")
        lights = result.get("indicators", {})
        if lights:
            lines.append(
                "lights:     "
                + ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in lights.items())
            )
        return "\n".join(lines)
    if command == "storage":
        return (
            f"{_mib(result['used_bytes'])} of {_mib(result['quota_bytes'])} used, "
            f"{_mib(result['available_bytes'])} free for footage, "
            f"{result['minutes_left']:.0f} min left, {result['awaiting_upload']} "
            f"segment(s) awaiting upload"
            + (" [LOW]" if result["low"] else "")
            + (" [FULL]" if result["full"] else "")
        )
    if command == "uploads":
        queue = result["queue"]
        lines = upload_lines(result.get("upload"))
        if not queue:
            return "\n".join([*lines, "nothing awaiting upload"])
        return "\n".join(
            lines
            + [
                f"{item['path']}  {item['size']:>12,} bytes  {item['state']}"
                + ("  (torn)" if item["torn"] else "")
                for item in queue
            ]
        )
    if command == "login":
        return f"logged in: {result['officer']}"
    if command == "record" and "recording_id" in result:
        return f"recording {result['recording_id'][:8]}"
    if command == "sim":
        return f"simulated {result['action']}"
    if command == "stealth":
        return "stealth " + ("on" if result["stealth"] else "off")
    return "done"


def upload_lines(data: dict[str, Any] | None) -> list[str]:
    """The uploader's progress bar, its last error and its receipts, for people."""
    if not data:
        return []
    from .upload.progress import UploadProgress, progress_bar

    progress = UploadProgress.from_json(data)
    lines = [f"upload:     {progress_bar(progress)}"]
    if progress.last_error:
        lines.append(f"last error: {progress.last_error}")
    lines.append(
        f"receipts:   {progress.receipts} this run; {progress.no_receipt} segment(s) sent "
        "without receipt stay on flash"
    )
    return lines


if __name__ == "__main__":
    sys.exit(main())
