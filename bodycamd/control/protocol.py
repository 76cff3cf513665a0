"""The control protocol: newline-delimited JSON over a Unix socket, version 1.

    request   {"v": 1, "id": <anything>, "cmd": "login", "args": {"personnel_number": "123456"}}
    success   {"v": 1, "id": <same>, "ok": true, "result": {...}}
    failure   {"v": 1, "id": <same>, "ok": false, "error": {"code": "...", "message": "..."}}
    event     {"v": 1, "event": {"reason": "...", "changed": [...], "state": {...}}}

A request is one line of at most 64 KiB. Error codes are stable; messages are for people.
No command exports, plays or deletes footage: that is the back end's job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

VERSION = 1
MAX_REQUEST = 64 * 1024

# command -> {argument: (type, required)}
COMMANDS: dict[str, dict[str, tuple[type, bool]]] = {
    "status": {},
    "login": {"personnel_number": (str, True)},
    "logout": {},
    "record_start": {},
    "record_stop": {},
    "marker": {"note": (str, False)},
    "storage": {},
    "uploads": {},
    "events": {},
    "sim": {"action": (str, True), "seconds": (float, False)},
    "stealth": {"enabled": (bool, True)},
}


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


@dataclass(frozen=True)
class Request:
    id: Any
    cmd: str
    args: dict[str, Any]


def parse_request(line: bytes) -> Request:
    try:
        data = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("bad_request", f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ProtocolError("bad_request", "a request is a JSON object")
    request_id = data.get("id")
    if data.get("v") != VERSION:
        raise ProtocolError(
            "bad_request", f"v: expected {VERSION}, got {data.get('v')!r}", request_id
        )
    cmd = data.get("cmd")
    if not isinstance(cmd, str):
        raise ProtocolError("bad_request", "cmd: expected a string", request_id)
    if cmd not in COMMANDS:
        raise ProtocolError(
            "unknown_command",
            f"unknown command {cmd!r}; commands: {', '.join(COMMANDS)}",
            request_id,
        )
    args = data.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError("bad_request", "args: expected an object", request_id)
    schema = COMMANDS[cmd]
    for name in args:
        if name not in schema:
            raise ProtocolError("bad_request", f"args.{name}: not an argument of {cmd}", request_id)
    for name, (kind, required) in schema.items():
        if name not in args:
            if required:
                raise ProtocolError("bad_request", f"args.{name}: required by {cmd}", request_id)
            continue
        value = args[name]
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind) and not isinstance(value, bool)
        if not ok:
            wanted = {bool: "true or false", float: "number", str: "string"}[kind]
            raise ProtocolError(
                "bad_request",
                f"args.{name}: expected a {wanted}, got {type(value).__name__}",
                request_id,
            )
    return Request(request_id, cmd, args)


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps({"v": VERSION, **message}, separators=(",", ":")).encode() + b"\n"


def success(request_id: Any, result: dict[str, Any]) -> bytes:
    return encode({"id": request_id, "ok": True, "result": result})


def failure(request_id: Any, code: str, message: str) -> bytes:
    return encode({"id": request_id, "ok": False, "error": {"code": code, "message": message}})
