"""The control API through its real socket, against the real daemon in a subprocess."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any

from bodycamd.ctl import main as ctl
from tests.conftest import Daemon, NotifySocket


def talk(path: Path, *lines: bytes, timeout: float = 10.0) -> list[dict[str, Any]]:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        reader = sock.makefile("rb")
        answers = []
        for line in lines:
            # the daemon may hang up early (too large); its reply is still there to read
            with contextlib.suppress(BrokenPipeError):
                sock.sendall(line)
            reply = reader.readline()
            if not reply:
                break
            answers.append(json.loads(reply))
        return answers


def request(path: Path, cmd: str, **args: Any) -> dict[str, Any]:
    line = json.dumps({"v": 1, "id": 7, "cmd": cmd, "args": args}).encode() + b"\n"
    return talk(path, line)[0]


def wait_for_footage(sock: Path, seconds: float) -> None:
    """Until the daemon reports that much recorded footage (its clock, not ours)."""
    deadline = time.monotonic() + 60
    while request(sock, "status")["result"]["state"]["recording_seconds"] < seconds:
        assert time.monotonic() < deadline, "no footage arrived"
        time.sleep(0.1)


def audit(daemon: Daemon) -> list[tuple[str, dict[str, Any]]]:
    import sqlite3

    with sqlite3.connect(f"file:{daemon.state_dir / 'journal.db'}?mode=ro", uri=True) as db:
        return [(k, json.loads(f)) for k, f in db.execute("SELECT kind, fields FROM audit")]


def test_login_rules_and_recording(daemon: Daemon) -> None:
    sock = daemon.socket
    refused = request(sock, "record_start")
    assert refused["error"]["code"] == "not_logged_in" and refused["id"] == 7
    assert request(sock, "login", personnel_number="12ab")["error"] == {
        "code": "login_refused",
        "message": "personnel number '12ab' is not valid (expected [0-9]{6,8})",
    }
    missing = request(sock, "login")
    assert missing["error"]["code"] == "bad_request"
    assert missing["error"]["message"] == "args.personnel_number: required by login"
    assert request(sock, "login", personnel_number="123456")["result"] == {"officer": "123456"}
    started = request(sock, "record_start")["result"]["recording_id"]
    assert request(sock, "marker", note="suspect left")["ok"]
    status = request(sock, "status")["result"]
    assert status["state"]["officer"] == "123456"
    assert status["state"]["recording"] == "recording"
    assert status["state"]["recording_id"] == started
    assert status["storage"]["quota_bytes"] > 0 and status["storage"]["minutes_left"] > 0
    assert request(sock, "logout")["error"]["code"] == "recording"
    wait_for_footage(sock, 1.5)
    assert request(sock, "record_stop")["ok"]
    status = request(sock, "status")["result"]
    assert status["state"]["recording"] == "buffering"
    assert status["state"]["awaiting_upload"] >= 1
    assert status["storage"]["awaiting_upload"] == status["state"]["awaiting_upload"]
    uploads = request(sock, "uploads")["result"]["queue"]
    assert uploads and all(u["path"].startswith("ready/") for u in uploads)
    kinds = [k for k, _ in audit(daemon)]
    assert {"officer_login", "recording_start", "marker", "recording_stop"} <= set(kinds)
    uid = __import__("os").getuid()
    for kind in ("officer_login", "recording_start", "marker", "recording_stop"):
        event = next(f for k, f in audit(daemon) if k == kind)
        assert event["peer_uid"] == uid and event["peer_pid"] > 0, kind


def test_bad_input_never_hurts_the_daemon(daemon: Daemon) -> None:
    sock = daemon.socket
    assert request(sock, "login", personnel_number="654321")["ok"]
    assert request(sock, "record_start")["ok"]
    assert talk(sock, b"{not json\n")[0]["error"]["code"] == "bad_request"
    assert talk(sock, b'{"v":1,"cmd":"eject_footage"}\n')[0]["error"]["code"] == "unknown_command"
    wrong = talk(sock, b'{"v":1,"cmd":"login","args":{"personnel_number":123456}}\n')[0]
    assert wrong["error"] == {
        "code": "bad_request",
        "message": "args.personnel_number: expected a string, got int",
    }
    huge = talk(sock, b"x" * (1024 * 1024) + b"\n")
    assert huge[0]["error"]["code"] == "too_large"
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(str(sock))  # connects and never sends
    results: list[dict[str, Any]] = []

    def client() -> None:
        try:
            results.append(request(sock, "status"))
        except OSError as exc:
            results.append({"ok": False, "error": {"code": f"client:{exc}"}})

    threads = [threading.Thread(target=client) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = [r["ok"] or r["error"]["code"] for r in results]
    assert len(codes) == 50 and set(codes) <= {True, "busy"} and True in codes
    silent.close()
    status = request(sock, "status")["result"]
    assert status["state"]["recording"] == "recording"  # recording throughout
    assert request(sock, "record_stop")["ok"]
    assert daemon.proc.poll() is None


def test_socket_permissions(daemon: Daemon) -> None:
    mode = daemon.socket.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660
    assert not daemon.socket.parent.stat().st_mode & stat.S_IWOTH


def test_bodycamctl_output(daemon: Daemon, capsys: Any) -> None:
    sock = ["--socket", str(daemon.socket)]
    assert ctl([*sock, "login", "123456"]) == 0
    assert capsys.readouterr().out == "logged in: 123456\n"
    assert ctl([*sock, "login", "99"]) == 3
    assert "is not valid" in capsys.readouterr().err
    assert ctl([*sock, "status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == [
        "officer",
        "recording",
        "storage",
        "uploads",
        "dock",
        "upload",
        "health",
        "camera",
        "lights",
    ]
    assert out[0] == "officer:    123456" and out[1] == "recording:  buffering"
    assert out[3] == "uploads:    0 segment(s) awaiting upload"
    assert ctl([*sock, "--json", "status"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["result"]["state"]["officer"] == "123456"
    assert ctl([*sock, "record", "stop"]) == 3  # refused: not recording
    assert ctl(["--socket", str(daemon.socket.with_name("nope.sock")), "status"]) == 4


def test_simulated_shift(daemon: Daemon, capsys: Any) -> None:
    sock = ["--socket", str(daemon.socket)]
    assert ctl([*sock, "login", "123456"]) == 0
    assert ctl([*sock, "sim", "press"]) == 0
    wait_for_footage(daemon.socket, 5.0)  # a short incident
    assert ctl([*sock, "sim", "hold", "3.2"]) == 0
    assert request(daemon.socket, "status")["result"]["state"]["recording"] == "buffering"
    assert ctl([*sock, "sim", "dock"]) == 0
    capsys.readouterr()
    deadline = time.monotonic() + 30
    while not request(daemon.socket, "status")["result"]["state"]["docked"]:
        assert time.monotonic() < deadline
    assert ctl([*sock, "status"]) == 0
    out = capsys.readouterr().out
    assert "officer:    (nobody logged in)" in out  # the dock ended the shift
    awaiting = int(out.split("uploads:")[1].split()[0])
    assert awaiting >= 2  # 5 s at 2 s per segment
    assert "dock:       docked" in out


def test_stealth_needs_policy(daemon: Daemon) -> None:
    refused = request(daemon.socket, "stealth", enabled=True)
    assert refused["error"]["code"] == "stealth_not_allowed"
    wrong = request(daemon.socket, "stealth", enabled="yes")
    assert wrong["error"]["message"] == "args.enabled: expected a true or false, got str"
    lights = request(daemon.socket, "status")["result"]["indicators"]
    # nobody logged in (amber on), or amber blinking for a health flag such as clock_unsynced
    assert (lights["record_led"], lights["announce_led"], lights["status_green"]) == (
        "off",
        "off",
        "off",
    )
    assert lights["status_amber"] != "off"


def test_bodycamctl_each_command(daemon: Daemon, capsys: Any) -> None:
    sock = ["--socket", str(daemon.socket)]
    expectations = [
        (
            ["storage"],
            0,
            r"^\d[\d,]* MiB used of a [\d,]+ MiB quota; [\d,]+ MiB free for footage "
            r"\(limited by (the quota|free flash)\), [\d,]+ min at \d+\.\d\d Mbit/s "
            r"\((assumed|measured)\)( \[LOW\])?, 0 segment\(s\) awaiting upload\n$",
        ),
        (
            ["uploads"],
            0,
            r"^upload: +disabled: no upload.endpoint configured\nreceipts: .*\n"
            r"nothing awaiting upload\n$",
        ),
        (["logout"], 3, r"^$"),
        (["login", "123456"], 0, r"^logged in: 123456\n$"),
        (["record", "start"], 0, r"^recording [0-9a-f]{8}\n$"),
        (["marker", "door kicked"], 0, r"^done\n$"),
        (["record", "stop"], 0, r"^done\n$"),
        (["stealth", "on"], 3, r"^$"),
        (["logout"], 0, r"^done\n$"),
        (["sim", "undock"], 0, r"^simulated undock; it counts once it holds still "),
    ]

    for argv, code, pattern in expectations:
        assert ctl([*sock, *argv]) == code, argv
        assert re.match(pattern, capsys.readouterr().out), argv
    assert ctl([*sock, "--json", "uploads"]) == 0
    queue = json.loads(capsys.readouterr().out)["result"]["queue"]
    assert isinstance(queue, list)


def test_bodycamctl_watch_follows_events(daemon: Daemon) -> None:
    import subprocess
    import sys

    watcher = subprocess.Popen(
        [sys.executable, "-m", "bodycamd.ctl", "--socket", str(daemon.socket), "--json", "watch"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        first = json.loads(watcher.stdout.readline())
        assert first["result"]["subscribed"] is True
        assert request(daemon.socket, "login", personnel_number="123456")["ok"]
        while True:
            event = json.loads(watcher.stdout.readline())["event"]
            if "officer" in event["changed"]:
                break
        assert event["state"]["officer"] == "123456" and event["reason"] == "login"
    finally:
        watcher.terminate()
        watcher.communicate(timeout=10)


def test_status_agrees_with_itself(daemon: Daemon, capsys: Any) -> None:
    """One recording duration on the screen, quota and free space both named, minutes left
    with their bitrate, each health flag with its reason."""
    sock = daemon.socket
    assert request(sock, "login", personnel_number="123456")["ok"]
    assert request(sock, "record_start")["ok"]
    wait_for_footage(sock, 1.5)
    assert ctl(["--socket", str(sock), "status"]) == 0
    out = capsys.readouterr().out
    durations = re.findall(r"\d+ s\b(?! on| off)", out)  # "0.1 s on" is a blink
    assert len(durations) == 1, out  # the recording's duration, once
    camera = next(line for line in out.splitlines() if line.startswith("camera:"))
    assert "RECORDING" not in camera and "s," not in camera
    storage = next(line for line in out.splitlines() if line.startswith("storage:"))
    assert "quota" in storage and "free for footage" in storage and "Mbit/s" in storage
    result = request(sock, "status")["result"]
    assert set(result["health"]) == set(result["state"]["health"])
    assert all(result["health"].values())
    if "clock_unsynced" in result["health"]:
        assert "not synchronised" in result["health"]["clock_unsynced"]
        assert "clock_unsynced: the kernel says the system clock is not synchronised" in out
    wait_for_footage(sock, 4.5)  # 2 s segments: at least one sealed
    assert request(sock, "record_stop")["ok"]
    storage = request(sock, "storage")["result"]
    # measured from the sealed footage (the camera encodes at 200 kbit/s), no longer the
    # 10 Mbit/s assumption; minutes left follow it
    assert storage["bitrate_measured"] is True
    assert 50_000 < storage["bitrate_bps"] < 2_000_000
    expected = storage["available_bytes"] * 8 / storage["bitrate_bps"] / 60
    assert abs(storage["minutes_left"] - expected) <= 0.1 + expected * 0.01


def test_status_reports_the_announce_led_as_configured(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    """`status` describes the lights with the panel's own policy: with a blinking announce
    LED configured it says so (it used to say "on" while the LED blinked)."""
    daemon = Daemon(tmp_path, notify_socket, extra="[indicators]\nannounce_blink_hz = 2.0\n")
    try:
        assert request(daemon.socket, "login", personnel_number="123456").get("ok", True)
        assert "error" not in request(daemon.socket, "record_start")
        lights = request(daemon.socket, "status")["result"]["indicators"]
        assert lights["record_led"] == "on", lights
        assert lights["announce_led"] == "blink 0.25 s on / 0.25 s off", lights
        assert "error" not in request(daemon.socket, "record_stop")
    finally:
        code, err = daemon.stop()
        assert code == 0, err
