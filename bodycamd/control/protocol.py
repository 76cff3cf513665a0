"""The control protocol: newline-delimited JSON over a Unix socket, version 1.

    request   {"v": 1, "id": <anything>, "cmd": "login", "args": {"personnel_number": "123456"}}
    success   {"v": 1, "id": <same>, "ok": true, "result": {...}}
    failure   {"v": 1, "id": <same>, "ok": false, "error": {"code": "...", "message": "..."}}
    event     {"v": 1, "event": {"reason": "...", "changed": [...], "state": {...}}}

A request is one line of at most 64 KiB. Error codes are stable; messages are for people.
No command exports, plays or deletes footage: that is the back end's job.

The parser is strict because its input is hostile by assumption: nesting is bounded before
`json.loads` sees the line (the C decoder recurses), integers are bounded by their digits
(so neither Python's int-string limit nor a float overflow is reached), non-finite numbers
and NaN are refused (they would be echoed back as invalid JSON), and version and arguments
are checked by exact type (`true` is not 1, `1.0` is not 1). Whatever is wrong, the caller
gets one `ProtocolError` with code `bad_request`; nothing else escapes `parse_request`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

VERSION = 1
MAX_REQUEST = 64 * 1024
MAX_DEPTH = 8  # a request is {"args": {...}}: depth 2; ids may nest a little
MAX_DIGITS = 18  # fits an int64: enough for any id a client counts with
MAX_HOLD_SECONDS = 60.0

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
    "upload_retry": {"path": (str, True)},
    "events": {},
    "sim": {"action": (str, True), "seconds": (float, False)},
    "stealth": {"enabled": (bool, True)},
}
SIM_ACTIONS = ("press", "hold", "dock", "undock", "camera-fault")
WANTED = {bool: "true or false", float: "number", str: "string"}


class ProtocolError(ValueError):
    """A request the protocol cannot accept; `code` is the stable error code."""

    def __init__(self, code: str, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


@dataclass(frozen=True)
class Request:
    id: Any
    cmd: str
    args: dict[str, Any]


# A JSON string, or an unterminated one running to the end of the line. The tail always
# matches where the repetition stops (at a quote, or at the end after an optional lone
# backslash), so the pattern never backtracks: one linear pass over hostile escapes too.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def too_deep(line: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects nest more than `limit` deep (or do not balance), brackets
    inside strings ignored. No recursion and no Python loop per byte: strings are cut out,
    only brackets kept, and each of `limit` rounds removes the innermost pairs; what is left
    nests deeper than `limit` or never closes. Either way json.loads must not see it (its
    decoder recurses once per bracket)."""
    if line.count(b"[") + line.count(b"{") <= limit:
        return False  # the common case
    brackets = _STRING.sub(b"", line).translate(None, _NOT_BRACKETS)
    brackets = brackets.replace(b"{", b"[").replace(b"}", b"]")
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)


def _bounded_int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > MAX_DIGITS:
        raise ProtocolError("bad_request", f"an integer of {len(digits)} digits; at most 18")
    return int(text)


def _finite_float(text: str) -> float:
    if len(text) > 64:
        raise ProtocolError("bad_request", f"a number of {len(text)} characters; at most 64")
    value = float(text)
    if not math.isfinite(value):
        raise ProtocolError("bad_request", f"the number {text} is out of range")
    return value


def _no_constant(text: str) -> Any:
    raise ProtocolError("bad_request", f"{text} is not valid JSON")


def decode(line: bytes) -> Any:
    """JSON text to a value, under the bounds above; anything else is `bad_request`."""
    if len(line) > MAX_REQUEST:
        raise ProtocolError("too_large", f"request of {len(line)} bytes; at most 64 KiB")
    if too_deep(line):
        raise ProtocolError(
            "bad_request", f"arrays or objects nested over {MAX_DEPTH} deep, or unbalanced"
        )
    try:
        text = line.decode("utf-8")
        return json.loads(
            text,
            parse_int=_bounded_int,
            parse_float=_finite_float,
            parse_constant=_no_constant,
        )
    except ProtocolError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError("bad_request", f"not valid JSON: {exc}") from exc


def _check_argument(cmd: str, name: str, kind: type, value: Any, request_id: Any) -> None:
    if not (type(value) in (int, float) if kind is float else type(value) is kind):
        raise ProtocolError(
            "bad_request",
            f"args.{name}: expected a {WANTED[kind]}, got {type(value).__name__}",
            request_id,
        )
    if cmd == "sim" and name == "seconds" and not 0 < value <= MAX_HOLD_SECONDS:
        raise ProtocolError(
            "bad_request",
            f"args.seconds: expected more than 0 and at most {MAX_HOLD_SECONDS:g}, got {value}",
            request_id,
        )


def parse_request(line: bytes) -> Request:
    """One request line to a checked Request; raises only ProtocolError."""
    data = decode(line)
    if not isinstance(data, dict):
        raise ProtocolError("bad_request", "a request is a JSON object")
    request_id = data.get("id")
    version = data.get("v")
    if type(version) is not int or version != VERSION:
        got = json.dumps(version)[:40]
        message = f"v: expected the integer {VERSION}, got {got}"
        raise ProtocolError("bad_request", message, request_id)
    cmd = data.get("cmd")
    if type(cmd) is not str:
        raise ProtocolError("bad_request", "cmd: expected a string", request_id)
    if cmd not in COMMANDS:
        raise ProtocolError(
            "unknown_command",
            f"unknown command {cmd[:40]!r}; commands: {', '.join(COMMANDS)}",
            request_id,
        )
    args = data.get("args", {})
    if type(args) is not dict:
        raise ProtocolError("bad_request", "args: expected an object", request_id)
    schema = COMMANDS[cmd]
    for name in args:
        if name not in schema:
            raise ProtocolError(
                "bad_request", f"args.{name[:40]}: not an argument of {cmd}", request_id
            )
    for name, (kind, required) in schema.items():
        if name in args:
            _check_argument(cmd, name, kind, args[name], request_id)
        elif required:
            raise ProtocolError("bad_request", f"args.{name}: required by {cmd}", request_id)
    if cmd == "sim" and args["action"] not in SIM_ACTIONS:
        raise ProtocolError(
            "bad_request",
            f"args.action: expected one of {', '.join(SIM_ACTIONS)}, got {args['action'][:40]!r}",
            request_id,
        )
    return Request(request_id, cmd, args)


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps({"v": VERSION, **message}, separators=(",", ":")).encode() + b"\n"


def success(request_id: Any, result: dict[str, Any]) -> bytes:
    return encode({"id": request_id, "ok": True, "result": result})


def failure(request_id: Any, code: str, message: str) -> bytes:
    return encode({"id": request_id, "ok": False, "error": {"code": code, "message": message}})
