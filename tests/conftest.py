from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def skip_unless_ci(missing: bool, reason: str) -> pytest.MarkDecorator:
    """Skip where a tool or privilege is missing on a developer's machine; under `.ci/run`
    (which exports CI=1 and installs every tool) never skip, so a missing tool is a failure
    there, not a silently skipped check."""
    return pytest.mark.skipif(missing and not os.environ.get("CI"), reason=reason)


def control_request(path: Path, cmd: str, timeout: float = 30, **args: Any) -> dict[str, Any]:
    """One request on the daemon's control socket, the way `bodycamd ctl` speaks it, for
    tests that drive a daemon subprocess (the crash, full-card and torture runs)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps({"v": 1, "cmd": cmd, "args": args}).encode() + b"\n")
        answer: dict[str, Any] = json.loads(sock.makefile("rb").readline())
        return answer


def write_config(tmp_path: Path, extra: str = "", *, state_dir: str = "state") -> Path:
    path = tmp_path / "bodycamd.toml"
    path.write_text(
        'hardware = "simulated"\n'
        f"{extra}\n"
        "[device]\n"
        'name = "test-cam"\n'
        f'state_dir = "{state_dir}"\n'
        'runtime_dir = "run"\n'
        "[evidence]\n"
        'public_key = "keys/evidence.pub"\n'
        "development_keys = true\n"
        "[camera]\n"
        "width = 320\n"
        "height = 240\n"
        "framerate = 15\n"
        "bitrate = 200000\n"
        "[recorder]\n"
        "segment_seconds = 2.0\n"
        "pre_event_seconds = 5.0\n"
        "[daemon]\n"
        "stop_timeout = 5.0\n"
        'log_level = "debug"\n'
    )
    return path


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write_config(tmp_path)


class NotifySocket:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(30)
        self.messages: list[dict[str, str]] = []

    def receive(self) -> dict[str, str]:
        data = self.sock.recv(65536).decode()
        fields = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
        self.messages.append(fields)
        return fields

    def wait_for(self, key: str) -> dict[str, str]:
        while True:
            fields = self.receive()
            if key in fields:
                return fields


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.sock.close()


class Daemon:
    """`bodycamd run` as a subprocess, ready once READY=1 arrived."""

    def __init__(self, tmp_path: Path, notify: NotifySocket, extra: str = "") -> None:
        import os
        import subprocess
        import sys

        self.config = write_config(tmp_path, extra)
        self.state_dir = tmp_path / "state"
        self.socket = tmp_path / "run" / "control.sock"
        env = {**os.environ, "NOTIFY_SOCKET": str(notify.path)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bodycamd.cli", "run", "--config", str(self.config)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            self.ready = notify.wait_for("READY")
        except BaseException:  # a timeout here must not leave a daemon running on the box
            self.proc.kill()
            self.proc.communicate()
            raise

    def stop(self) -> tuple[int, str]:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err


@pytest.fixture
def daemon(tmp_path: Path, notify_socket: NotifySocket) -> Iterator[Daemon]:
    running = Daemon(tmp_path, notify_socket)
    try:
        yield running
    finally:
        code, err = running.stop()
        assert code == 0, err
