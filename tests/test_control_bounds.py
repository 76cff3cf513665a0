"""Hard bounds of the control socket, through the real socket of a real daemon: hostile
lines, a stream client that keeps sending, and pools that keep `status` reachable."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from pathlib import Path
from typing import Any, BinaryIO

from bodycamd.control.server import RESERVED_GRACE, STATUS_RESERVE
from tests.conftest import Daemon, NotifySocket, control_request
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


def blank_lines_until_answered(
    socks: list[socket.socket], limit: float = 20.0
) -> list[dict[str, Any]]:
    """Send each socket a blank line every 0.2 s until the daemon answers it, waiting on the
    sockets (select), never sleeping; returns each one's answer, having checked that the
    daemon then hung up. `limit` only bounds a failure: before the fix, blank lines kept a
    connection open for ever."""
    answers: dict[socket.socket, dict[str, Any]] = {}
    deadline = time.monotonic() + limit
    while len(answers) < len(socks):
        assert time.monotonic() < deadline, f"still open after {limit} s of blank lines"
        waiting = [sock for sock in socks if sock not in answers]
        for sock in waiting:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(b"\n")
        readable, _, _ = select.select(waiting, [], [], 0.2)
        for sock in readable:
            with sock.makefile("rb") as reader:
                answers[sock] = json.loads(reader.readline())
                # the kernel may say ECONNRESET (our last blank line was unread) or EOF
                with contextlib.suppress(ConnectionResetError):
                    assert reader.read() == b"", "the daemon kept the connection open"
    return [answers[sock] for sock in socks]


def test_blank_lines_do_not_keep_a_client_alive(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    """Each request has one deadline (`control.idle_timeout`) that blank lines do not
    restart: a client sending only blank lines is idle, and is cut off. Blank lines around a
    request are still fine."""
    daemon = Daemon(tmp_path, notify_socket, extra="[control]\nidle_timeout = 1.0\n")
    try:
        status = b'{"v": 1, "cmd": "status"}\n'
        answers = talk(daemon.socket, b"\n\n" + status)
        assert answers[0]["ok"], answers
        with connect(daemon.socket) as sock:
            (answer,) = blank_lines_until_answered([sock])
        assert answer["error"] == {"code": "idle", "message": "no request within 1 s"}
    finally:
        code, err = daemon.stop()
    assert code == 0, err


def test_blank_lines_do_not_hold_the_status_reserve(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    """The request slot held by a silent client, both reserved slots by clients sending a
    blank line every 0.2 s: each reserved one gets its grace (RESERVED_GRACE) once, is
    told `idle` and cut off, and `status` finds a reserved slot again."""
    daemon = Daemon(tmp_path, notify_socket, extra="[control]\nmax_clients = 1\n")
    try:
        with connect(daemon.socket):  # silent: holds the only request slot
            reserve = [connect(daemon.socket) for _ in range(STATUS_RESERVE)]
            try:
                answers = blank_lines_until_answered(reserve)
            finally:
                for sock in reserve:
                    sock.close()
            assert [a["error"]["code"] for a in answers] == ["idle"] * STATUS_RESERVE
            assert answers[0]["error"]["message"] == f"no request within {RESERVED_GRACE:g} s"
            status = control_request(daemon.socket, "status", timeout=10)
            assert status["ok"], status
            # through a reserved slot: the request slot is still held by the silent client
            assert control_request(daemon.socket, "logout", timeout=10)["error"]["code"] == "busy"
    finally:
        code, err = daemon.stop()
    assert code == 0, err
