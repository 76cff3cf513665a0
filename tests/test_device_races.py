"""Every state-changing request is decided and applied as one step: hammered from many
control clients at once, the device never records without an officer, never changes officer
while recording, and never answers `internal` (issue #12, item 1)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from bodycamd.config import SessionConfig
from bodycamd.device import Caller
from bodycamd.errors import Refused
from tests.conftest import Daemon
from tests.device_rig import make_device
from tests.soak import Tally, audit_violations, exchange, random_client, watcher
from tests.test_control import request


def line(cmd: str, **args: Any) -> bytes:
    return json.dumps({"v": 1, "cmd": cmd, "args": args}).encode() + b"\n"


def together(path: Path, *lines: bytes) -> list[dict[str, Any] | None]:
    """Send each line on its own connection, all released at the same instant."""
    answers: list[dict[str, Any] | None] = [None] * len(lines)
    gate = threading.Barrier(len(lines))

    def send(n: int) -> None:
        gate.wait()
        answers[n] = exchange(path, lines[n])

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(lines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_record_start_racing_logout_never_records_without_an_officer(daemon: Daemon) -> None:
    sock = daemon.socket
    for _ in range(20):
        assert request(sock, "login", personnel_number="123456")["ok"]
        start, logout = together(sock, line("record_start"), line("logout"))
        assert start is not None and logout is not None
        assert not (start["ok"] and logout["ok"]), "both won: recording with nobody logged in"
        state = request(sock, "status")["result"]["state"]
        assert not (state["recording"] == "recording" and state["officer"] is None), state
        if state["recording"] == "recording":
            assert request(sock, "record_stop")["ok"]
        if state["officer"] is not None:
            assert request(sock, "logout")["ok"]
    for _ in range(20):  # login racing logout: one wins, the other is refused, never internal
        answers = together(sock, line("login", personnel_number="123456"), line("logout"))
        for answer in answers:
            assert answer is not None
            assert answer["ok"] or answer["error"]["code"] in {"not_logged_in"}, answer
        request(sock, "logout")


def test_many_clients_random_commands_keep_the_invariants(daemon: Daemon) -> None:
    sock = daemon.socket
    tally = Tally()
    stop = threading.Event()
    watchers = [threading.Thread(target=watcher, args=(sock, tally, stop)) for _ in range(4)]
    clients = [
        threading.Thread(target=random_client, args=(sock, tally, stop, seed)) for seed in range(12)
    ]
    for thread in watchers + clients:
        thread.start()
    finished = threading.Event()
    counted = threading.Thread(target=_until, args=(tally, 1500, finished))
    counted.start()
    finished.wait(timeout=40)
    stop.set()
    for thread in [*watchers, *clients, counted]:
        thread.join(timeout=60)
    assert tally.requests >= 300
    assert tally.states_seen >= 50
    assert tally.codes["internal"] == 0, tally.codes
    assert tally.violations == []
    request(sock, "record_stop")
    code, err = daemon.stop()
    assert code == 0, err
    assert "Traceback" not in err
    violations, _ = audit_violations(daemon.state_dir / "journal.db")
    assert violations == []


def _until(tally: Tally, requests: int, finished: threading.Event) -> None:
    """Set `finished` once that many requests were answered (a count, not a clock)."""
    while not finished.wait(0.1):
        with tally.lock:
            if tally.requests >= requests:
                finished.set()


async def test_login_while_docked_is_refused_up_front(tmp_path: Path) -> None:
    """Before: `login` while docked answered "logged in", then the dock logged the officer
    out a tick later. Now it is refused with `docked` and nothing is audited."""
    device, capture, _ = await make_device(tmp_path, SessionConfig())
    try:
        await device.set_docked(True, Caller("test"))
        with pytest.raises(Refused) as refused:
            await device.login("123456", Caller("test"))
        assert refused.value.code == "docked"
        assert device.state.officer is None
        await device.set_docked(False, Caller("test"))
        assert (await device.login("123456", Caller("test"))).personnel_number == "123456"
    finally:
        await capture.stop()
