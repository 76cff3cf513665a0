"""Hard bounds of the control socket, through the real socket of a real daemon: hostile
lines, a stream client that keeps sending, and pools that keep `status` reachable."""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path
from typing import Any, BinaryIO

from tests.conftest import Daemon
from tests.test_control import request, talk
from tests.test_control_parser import HOSTILE


def connect(path: Path, timeout: float = 10.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(timeout)
    sock.connect(str(path))
    return sock


def subscribe(path: Path) -> tuple[socket.socket, BinaryIO, dict[str, Any]]:
    sock = connect(path)
    sock.sendall(b'{"v":1,"id":"w","cmd":"events"}\n')
    reader = sock.makefile("rb")
    return sock, reader, json.loads(reader.readline())


def test_hostile_lines_get_bad_request_and_no_traceback(daemon: Daemon) -> None:
    sock = daemon.socket
    for line in HOSTILE:
        if not line.strip():
            continue
        answer = talk(sock, line + b"\n")
        assert answer and answer[0]["error"]["code"] == "bad_request", line[:60]
    assert request(sock, "status")["ok"]
    code, err = daemon.stop()
    assert code == 0, err
    assert "Traceback" not in err and "Unhandled exception" not in err, err


def test_a_stream_client_cannot_make_the_daemon_read_without_bound(daemon: Daemon) -> None:
    """Before: after `events` the daemon read everything the client sent into memory (RSS
    82 -> 511 MiB for 400 MiB without a newline). Now it reads at most 64 KiB, then says
    `too_large` and hangs up, so the sender hits a closed socket long before 64 MiB."""
    sock, reader, first = subscribe(daemon.socket)
    with sock, reader:
        assert first["result"]["subscribed"] is True
        sent = 0
        chunk = b"x" * 65536
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, TimeoutError):
            while sent < 64 * 2**20:
                sent += sock.send(chunk)
        assert sent < 64 * 2**20, "the daemon kept reading"
        tail: list[dict[str, Any]] = []
        # it hung up with our bytes unread: the kernel may report ECONNRESET before (or
        # instead of) its last line; either way the daemon has closed the stream
        with contextlib.suppress(ConnectionResetError):
            tail += [json.loads(line) for line in reader if line.strip()]
        assert all("event" in m for m in tail[:-1])
        assert not tail or tail[-1].get("event") or tail[-1]["error"]["code"] == "too_large"
    assert request(daemon.socket, "status")["ok"]


def test_watchers_never_lock_out_status(daemon: Daemon) -> None:
    """20 watchers: 16 are streamed to (their own pool), 4 are told `busy`; `status` and
    `login` still get request slots; with every request slot held by a silent client, a
    reserved slot still answers `status` (and only `status`)."""
    watchers: list[tuple[socket.socket, BinaryIO]] = []
    answers = []
    try:
        for _ in range(20):
            sock, reader, first = subscribe(daemon.socket)
            watchers.append((sock, reader))
            answers.append(first["ok"] or first["error"]["code"])
        assert answers.count(True) == 16 and answers.count("busy") == 4
        assert request(daemon.socket, "status")["ok"]
        assert request(daemon.socket, "login", personnel_number="123456")["ok"]
        silent = [connect(daemon.socket) for _ in range(16)]  # every request slot held
        try:
            status = request(daemon.socket, "status")
            assert status["ok"] and status["result"]["state"]["officer"] == "123456"
            assert request(daemon.socket, "logout")["error"]["code"] == "busy"
        finally:
            for sock in silent:
                sock.close()
        # the streams still flow: each of the 16 sees the login
        for (_, reader), answer in zip(watchers, answers, strict=True):
            if answer is True:
                event = json.loads(reader.readline())["event"]
                while "officer" not in event["changed"]:
                    event = json.loads(reader.readline())["event"]
                assert event["state"]["officer"] == "123456"
    finally:
        for sock, _ in watchers:
            sock.close()
    assert request(daemon.socket, "logout")["ok"]


def test_unit_bounds_the_daemons_memory() -> None:
    """Sized from measurement (see CHANGELOG): VmHWM 131.5 MiB recording 1080p at 10 Mbit/s
    with a 30 s pre-event buffer, flat under a flood and 16 watchers; the config's caps
    (pre-event 96 MiB, queue 16 MiB) bound the worst case near 215 MiB."""
    import re

    unit = (Path(__file__).resolve().parent.parent / "systemd" / "bodycamd.service").read_text()
    high = re.search(r"^MemoryHigh=(\d+)M$", unit, re.MULTILINE)
    hard = re.search(r"^MemoryMax=(\d+)M$", unit, re.MULTILINE)
    assert high and hard
    assert 215 < int(high.group(1)) < int(hard.group(1))
