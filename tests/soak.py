"""`make soak`: the control API under abuse for 60 s against a recording daemon.

Not part of `make test` (it takes a minute and two cores). A real daemon in a subprocess
(simulated hardware, synthetic camera recording), and against it at once:

- 20 clients sending random commands (login, logout, record start/stop, marker, status,
  storage, sim dock/undock/press), each on a fresh connection;
- a flood client: hostile lines (deep nesting, huge integers, 1e999, lines over 64 KiB,
  64 KiB without a newline) as fast as the daemon takes them;
- 16 watchers following the event stream, checking every published state;
- a slow client that subscribes and never reads, and one that trickles a request a byte
  at a time.

The daemon runs with the default 16 request slots (so the 20 clients and the flood meet
`busy` often, which is counted, not an error) and `control.max_streams = 20` so the slow
stream gets in beside the 16 watchers. It prints requests, refusals by code, internal
errors (target 0), invariant violations on published states and in the audit trail (target
0), idle and peak RSS (target: peak within 10 MiB of idle), and frames lost (target 0), and
exits 1 if a target is missed.

    python -m tests.soak [--seconds 60] [--clients 20] [--watchers 16]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import random
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.conftest import Daemon, NotifySocket

OFFICERS = ("123456", "654321")
HOSTILE = [
    b"[" * 60_000 + b"\n",
    b'{"v":1,"cmd":"status","id":' + b"9" * 5_000 + b"}\n",
    b'{"v":1,"cmd":"sim","args":{"action":"hold","seconds":' + b"9" * 400 + b"}}\n",
    b'{"v":1,"cmd":"status","id":1e999}\n',
    b'{"v":true,"cmd":"status"}\n',
    b"x" * 200_000 + b"\n",
    b"{not json\n",
]


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.codes: collections.Counter[str] = collections.Counter()
        self.violations: list[str] = []
        self.states_seen = 0
        self.subscribed = 0

    def answer(self, response: dict[str, Any] | None) -> None:
        with self.lock:
            self.requests += 1
            if response is None:
                self.codes["(no answer)"] += 1
            elif not response.get("ok"):
                self.codes[response["error"]["code"]] += 1

    def violation(self, text: str) -> None:
        with self.lock:
            if len(self.violations) < 1000:
                self.violations.append(text)


def exchange(path: Path, line: bytes, timeout: float = 30.0) -> dict[str, Any] | None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            with contextlib.suppress(BrokenPipeError):
                sock.sendall(line)
            reply = sock.makefile("rb").readline()
        except OSError:
            return None
    return json.loads(reply) if reply else None


def random_client(path: Path, tally: Tally, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    commands = [
        ("login", lambda: {"personnel_number": rng.choice(OFFICERS)}, 4),
        ("logout", dict, 3),
        ("record_start", dict, 5),
        ("record_stop", dict, 2),
        ("marker", lambda: {"note": "soak"}, 2),
        ("status", dict, 3),
        ("storage", dict, 1),
        ("sim", lambda: {"action": rng.choice(["dock", "undock", "undock", "press"])}, 1),
    ]
    names = [c for c, _, w in commands for _ in range(w)]
    args = {c: a for c, a, _ in commands}
    while not stop.is_set():
        cmd = rng.choice(names)
        line = json.dumps({"v": 1, "id": seed, "cmd": cmd, "args": args[cmd]()}).encode()
        tally.answer(exchange(path, line + b"\n"))


def flood_client(path: Path, tally: Tally, stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        tally.answer(exchange(path, HOSTILE[n % len(HOSTILE)]))
        n += 1


def check_states(old: dict[str, Any] | None, new: dict[str, Any], tally: Tally) -> None:
    if new["recording"] == "recording" and new["officer"] is None:
        tally.violation(f"recording {new['recording_id']} with nobody logged in")
    if (
        old is not None
        and old["recording"] == new["recording"] == "recording"
        and old["recording_id"] == new["recording_id"]
        and old["officer"] != new["officer"]
    ):
        tally.violation(f"officer {old['officer']} -> {new['officer']} while recording")


def lines_from(sock: socket.socket, stop: threading.Event) -> Iterator[bytes]:
    """Lines from a socket until EOF or `stop`; recv with a timeout so `stop` is seen (a
    makefile() reader is unusable after its first timeout)."""
    pending = b""
    while not stop.is_set():
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            return
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from complete


def watcher(path: Path, tally: Tally, stop: threading.Event) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(0.5)
        sock.connect(str(path))
        sock.sendall(b'{"v":1,"cmd":"events"}\n')
        state: dict[str, Any] | None = None
        for line in lines_from(sock, stop):
            message = json.loads(line)
            if state is None:
                if not message.get("ok"):
                    tally.answer(message)
                    return
                state = message["result"]["state"]
                check_states(None, state, tally)
                with tally.lock:
                    tally.subscribed += 1
                continue
            if "event" not in message:
                return
            new = message["event"]["state"]
            check_states(state, new, tally)
            with tally.lock:
                tally.states_seen += 1
            state = new


def slow_clients(path: Path, stop: threading.Event) -> None:
    never_reads = socket.socket(socket.AF_UNIX)
    never_reads.connect(str(path))
    never_reads.sendall(b'{"v":1,"cmd":"events"}\n')
    trickle = socket.socket(socket.AF_UNIX)
    trickle.connect(str(path))
    try:
        for byte in b'{"v":1,"cmd":"status"}\n' * 100:
            if stop.wait(0.5):
                break
            try:
                trickle.send(bytes([byte]))
            except OSError:  # cut off at the idle timeout: reconnect and go on
                trickle.close()
                trickle = socket.socket(socket.AF_UNIX)
                trickle.connect(str(path))
    finally:
        never_reads.close()
        trickle.close()


def audit_violations(journal: Path) -> tuple[list[str], int]:
    """Walk the audit trail in order: never a recording started with nobody logged in,
    never an officer change while recording. Returns (violations, frames dropped)."""
    violations = []
    officer: str | None = None
    recording = False
    dropped = 0
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT kind, fields FROM audit ORDER BY rowid").fetchall()
    for kind, raw in rows:
        fields = json.loads(raw)
        if kind == "officer_login":
            if recording:
                violations.append(f"login of {fields.get('personnel_number')} while recording")
            # personal fields are sealed to the evidence key on flash: who is not readable
            # here, that somebody logged in is
            officer = fields.get("personnel_number") or "(sealed)"
        elif kind == "officer_logout":
            if recording:
                violations.append(f"logout of {fields.get('personnel_number')} while recording")
            officer = None
        elif kind == "recording_start":
            if officer is None:
                violations.append("recording started with nobody logged in")
            recording = True
        elif kind == "recording_stop":
            recording = False
        elif kind == "frames_dropped":
            dropped += int(fields.get("frames", 0))
    return violations, dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--watchers", type=int, default=16)
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bodycamd-soak-") as tmp:
        tmp_path = Path(tmp)
        notify = NotifySocket(tmp_path / "notify.sock")
        notify_reader = threading.Thread(target=_drain_notify, args=(notify,), daemon=True)
        # room for the 16 watchers and the slow stream; request clients keep the default 16
        daemon = Daemon(tmp_path, notify, extra="[control]\nmax_streams = 20\n")
        notify_reader.start()
        log_lines: list[str] = []
        log_reader = threading.Thread(target=_collect, args=(daemon, log_lines), daemon=True)
        log_reader.start()  # a full stderr pipe would stall the daemon on its own log
        pid = daemon.proc.pid
        sock = daemon.socket
        exchange(sock, b'{"v":1,"cmd":"login","args":{"personnel_number":"123456"}}\n')
        exchange(sock, b'{"v":1,"cmd":"record_start"}\n')
        time.sleep(5.0)  # recording, no control load: the idle figure
        idle_rss, _ = rss_kib(pid)
        tally = Tally()
        stop = threading.Event()
        threads = [  # watchers first, as they would be: they stay for the whole shift
            threading.Thread(target=watcher, args=(sock, tally, stop))
            for _ in range(options.watchers)
        ]
        threads += [
            threading.Thread(target=random_client, args=(sock, tally, stop, n))
            for n in range(options.clients)
        ]
        threads.append(threading.Thread(target=flood_client, args=(sock, tally, stop)))
        threads.append(threading.Thread(target=slow_clients, args=(sock, stop)))
        for thread in threads[: options.watchers]:
            thread.start()
        subscribing = time.monotonic() + 10
        while tally.subscribed < options.watchers and time.monotonic() < subscribing:
            time.sleep(0.05)
        for thread in threads[options.watchers :]:
            thread.start()
        peak_rss = idle_rss
        deadline = time.monotonic() + options.seconds
        while time.monotonic() < deadline:
            time.sleep(0.25)
            peak_rss = max(peak_rss, rss_kib(pid)[0])
            if daemon.proc.poll() is not None:
                break
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        after_rss, hwm = rss_kib(pid)
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(timeout=60)
        log_reader.join(timeout=10)
        err = "".join(log_lines)
        audit, frames_lost = audit_violations(daemon.state_dir / "journal.db")
        notify.sock.close()
    internal = tally.codes["internal"] + err.count("Traceback")
    violations = tally.violations + audit
    print(f"requests:            {tally.requests} in {options.seconds:g} s")
    print(f"watchers:            {tally.subscribed} of {options.watchers} subscribed")
    print(f"states checked:      {tally.states_seen} (published states seen by the watchers)")
    refusals = ", ".join(f"{c} {n}" for c, n in sorted(tally.codes.items())) or "none"
    print(f"refusals by code:    {refusals}")
    print(f"internal errors:     {internal}  (target 0)")
    print(f"invariant violations: {len(violations)}  (target 0)")
    for text in violations[:10]:
        print(f"    {text}")
    print(
        f"RSS:                 idle {idle_rss / 1024:.1f} MiB, peak {peak_rss / 1024:.1f} MiB "
        f"(+{(peak_rss - idle_rss) / 1024:.1f}, target +10), after {after_rss / 1024:.1f} MiB, "
        f"VmHWM {hwm / 1024:.1f} MiB"
    )
    print(f"frames lost:         {frames_lost}  (target 0)")
    print(f"daemon exit:         {code}")
    ok = (
        internal == 0
        and not violations
        and peak_rss - idle_rss <= 10 * 1024
        and frames_lost == 0
        and code == 0
    )
    return 0 if ok else 1


def _collect(daemon: Daemon, lines: list[str]) -> None:
    assert daemon.proc.stderr is not None
    for line in daemon.proc.stderr:
        lines.append(line)


def _drain_notify(notify: NotifySocket) -> None:
    with contextlib.suppress(OSError):
        while True:
            notify.sock.recv(65536)


if __name__ == "__main__":
    sys.exit(main())
