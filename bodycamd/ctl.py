"""`bodycamctl`: the command-line client of the daemon's control socket.

    bodycamctl status | login NUMBER | logout | record start | record stop | marker [NOTE]
    bodycamctl storage | uploads | upload retry PATH | watch | stealth on|off
    bodycamctl sim press | sim hold SECONDS | sim dock | sim undock | sim camera-fault

Human output by default, `--json` for scripts (before or after the command). Exit status:
0 done, 1 the daemon failed the request (or hung up, or did not answer), 2 bad usage or a
request the daemon called malformed, 3 refused by policy (not logged in, storage full, …),
4 the daemon cannot be reached. Every failure is one line on stderr. The socket is
`--socket`, else $BODYCAMD_SOCKET, else the first of /run/bodycamd/control.sock and
./var/run/control.sock (the `make run` checkout) that answers. There is no command that
exports footage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .control.client import CANDIDATES, TIMEOUT, Connection, socket_paths
from .control.status import storage_line
from .errors import ControlFailed, ControlUnreachable
from .state import DeviceState

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
PROTOCOL_ERRORS = {"bad_request", "unknown_command", "too_large"}
FAILURES = {"internal", "busy", "idle"}


def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """--socket and --json, accepted before or after the command. Below the top level the
    default is SUPPRESS, so a value given first is not overwritten by the sub-parser."""
    keep = argparse.SUPPRESS
    parser.add_argument(
        "--socket",
        type=Path,
        default=None if defaults else keep,
        metavar="PATH",
        help="control socket (default: $BODYCAMD_SOCKET, else the first of "
        + " and ".join(map(str, CANDIDATES))
        + " that exists)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=False if defaults else keep,
        help="print the daemon's JSON answer instead of text",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bodycamctl",
        description=__doc__.split("\n\n")[0],
        epilog="exit status: 0 done, 1 the daemon failed the request, 2 bad usage, "
        "3 refused by policy, 4 the daemon cannot be reached",
    )
    _global_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        _global_options(sub, defaults=False)
        return sub

    command("status", "officer, recording, storage, uploads, dock, health and lights")
    login = command("login", "log an officer in (refused while docked or recording)")
    login.add_argument("personnel_number", metavar="NUMBER", help="personnel number, 6-8 digits")
    command("logout", "log the officer out (refused while recording)")
    record = command("record", "start or stop recording")
    record.add_argument("action", choices=["start", "stop"], help="start or stop")
    marker = command("marker", "mark this moment in the running recording")
    marker.add_argument("note", nargs="?", default="", help="a short note (optional)")
    command("storage", "quota, flash free, minutes left")
    command("uploads", "segments awaiting upload, and those the ingest rejected (with why)")
    upload = command("upload", "retry a segment the ingest rejected, once its cause is fixed")
    upload.add_argument("action", choices=["retry"], help="retry")
    upload.add_argument("path", metavar="PATH", help="the segment's path, as `uploads` lists it")
    command("watch", "print each state change until interrupted (Ctrl-C)")
    stealth = command("stealth", "indicators dark while recording, if policy allows (audited)")
    stealth.add_argument("mode", choices=["on", "off"], help="on or off")
    sim = command("sim", "simulated hardware only: work the mock button, dock and camera")
    actions = sim.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        ("press", "a short press of the record button (starts a recording)"),
        ("hold", "hold the record button (3 s stops a recording)"),
        ("dock", "put the camera in its dock"),
        ("undock", "take the camera out of its dock"),
        ("camera-fault", "make the camera fail"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        _global_options(action, defaults=False)
        if name == "hold":
            action.add_argument("seconds", type=_seconds, help="how long, 0 to 60 seconds")
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"expected more than 0 and at most 60 s, got {text}")
    return value


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
        case "upload":
            return f"upload_{args.action}", {"path": args.path}
        case "sim":
            extra = {"seconds": args.seconds} if args.action == "hold" else {}
            return "sim", {"action": args.action, **extra}
    return str(args.command), {}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    timeout = TIMEOUT
    if args.command == "sim" and args.action == "hold":
        timeout += args.seconds  # the daemon answers once the button is let go
    try:
        connection = Connection(socket_paths(args.socket), timeout)
    except ControlUnreachable as exc:
        print(f"bodycamctl: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    try:
        if args.command == "watch":
            return _watch(connection, args.json, out)
        cmd, params = _request(args)
        response = connection.request(cmd, **params)
    except ControlFailed as exc:
        print(f"bodycamctl: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        connection.close()
    return _report(args, response, out)


def _report(args: argparse.Namespace, response: dict[str, Any], out: TextIO) -> int:
    if args.json:
        print(json.dumps(response, indent=2, sort_keys=True), file=out)
    if not response.get("ok"):
        error = response.get("error") or {}
        code = str(error.get("code", "internal"))
        if not args.json:
            print(f"bodycamctl: {error.get('message', 'failed')} ({code})", file=sys.stderr)
        if code in PROTOCOL_ERRORS:
            return EXIT_USAGE
        return EXIT_FAILED if code in FAILURES else EXIT_REFUSED
    if not args.json:
        try:
            print(render(args.command, response["result"]), file=out)
        except (KeyError, TypeError, ValueError) as exc:
            print(f"bodycamctl: unexpected answer from bodycamd ({exc!r})", file=sys.stderr)
            return EXIT_FAILED
    return EXIT_OK


def _watch(connection: Connection, as_json: bool, out: TextIO) -> int:
    first = connection.request("events")
    if not first.get("ok"):
        error = first.get("error") or {}
        print(f"bodycamctl: {error.get('message')} ({error.get('code')})", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(first) if as_json else "watching; Ctrl-C to stop", file=out, flush=True)
    try:
        for message in connection.events():
            if "error" in message:  # the daemon ended the stream
                error = message["error"] or {}
                print(f"bodycamctl: {error.get('message')} ({error.get('code')})", file=sys.stderr)
                return EXIT_FAILED
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
    except BrokenPipeError:  # `bodycamctl watch | head`: the reader left
        return EXIT_OK
    return EXIT_OK


def summary(state: dict[str, Any]) -> str:
    return DeviceState.from_json(state).summary()


BUTTON_DID = {"start": "recording started", "stop": "recording stopped", "marker": "marker added"}


def _sim_line(result: dict[str, Any]) -> str:
    action = result["action"]
    if action in ("dock", "undock"):  # the dock is debounced: it counts once it holds
        return f"simulated {action}; it counts once it holds still (status shows {action}ing…)"
    if "button" not in result:
        return f"simulated {action}"
    did = [BUTTON_DID.get(name, name) for name in result["button"]]
    if not did:
        hint = "a short press while recording does nothing; hold 3 s to stop"
        return f"{action}: nothing happened ({hint})"
    return f"{action}: {', '.join(did)}"


def _status_lines(result: dict[str, Any]) -> str:
    """One fact per line, each once: the recording's duration only on its own line."""
    state, storage = result["state"], result.get("storage", {})
    if state["recording"] == "recording":
        recording = (
            f"yes, {state['recording_seconds']:.0f} s (recording {state['recording_id'][:8]})"
        )
    else:
        recording = state["recording"]
    lines = [f"officer:    {state['officer'] or '(nobody logged in)'}", f"recording:  {recording}"]
    if storage:
        lines.append(f"storage:    {storage_line(storage)}")
    uploads = f"{state['awaiting_upload']} segment(s) awaiting upload"
    if storage.get("rejected_upload"):
        uploads += f"; {storage['rejected_upload']} rejected by the ingest (bodycamctl uploads)"
    lines.append(f"uploads:    {uploads}")
    dock = "docked" if state["docked"] else "not docked"
    pending = state.get("dock_pending")
    if pending:  # the dock sensor changed and must hold still before it counts
        dock += f"; {pending}… (counts once it holds for dock.stable_seconds)"
    if state["upload_progress"] is not None:
        dock += f", uploading {state['upload_progress']:.0%}"
    lines.append(f"dock:       {dock}")
    lines.extend(upload_lines(result.get("upload"))[:1])
    reasons = result.get("health") or {flag: "" for flag in state["health"]}
    if not reasons:
        lines.append("health:     ok")
    for n, (flag, reason) in enumerate(sorted(reasons.items())):
        label = "health:" if n == 0 else ""
        lines.append(f"{label:<12}{flag}" + (f": {reason}" if reason else ""))
    lines.append(f"camera:     {result['camera'].removeprefix('camera: ')}")
    lights = result.get("indicators", {})
    if lights:
        lines.append(
            "lights:     "
            + ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in lights.items())
        )
    return "\n".join(lines)


def render(command: str, result: dict[str, Any]) -> str:
    if command == "status":
        return _status_lines(result)
    if command == "storage":
        return storage_line(result) + f", {result['awaiting_upload']} segment(s) awaiting upload"
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
                + (f": {item.get('last_error')}" if item["state"] == "rejected" else "")
                for item in queue
            ]
        )
    if command == "login":
        return f"logged in: {result['officer']}"
    if command == "record" and "recording_id" in result:
        return f"recording {result['recording_id'][:8]}"
    if command == "record" and "note" in result:
        return str(result["note"])
    if command == "sim":
        return _sim_line(result)
    if command == "stealth":
        return "stealth " + ("on" if result["stealth"] else "off")
    if command == "upload":
        return f"{result['path']}: back in the upload queue; it is sent at the next dock"
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
