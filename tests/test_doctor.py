"""`bodycamd doctor` with hardware = "simulated" runs every check against the simulated parts
(synthetic camera with a real 2-second take, MockFactory pins); the Pi-only checks are run
here against a scratch /dev, device tree and meminfo where they can be."""

from __future__ import annotations

import dataclasses
import errno
import io
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bodycamd.cli import main
from bodycamd.clock import ClockState
from bodycamd.config import load_config
from bodycamd.doctor import Doctor, Paths, doctor_main, run_doctor
from bodycamd.doctor_hardware import board
from tests.conftest import write_config

EXPECTED = [
    "state dir", "board model", "gpiochip", "board profile",
    "record_led", "announce_led", "status_green", "status_amber", "buzzer",
    "record button", "dock contact",
    "platform", "numpy ABI", "import picamera2",
    "audio format", "microphone",
    "camera", "autofocus", "H.264 encoder", "frame rate", "keyframes", "timestamps", "decode",
    "audio as declared", "CPU headroom", "CMA",
    "groups", "device nodes", "clock",
]  # fmt: skip
LINE = re.compile(r"^\[(?: OK |FAIL|SKIP)\] ([^:]+): ")


def device_paths(tmp_path: Path) -> Paths:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(
        "MemTotal:        3885396 kB\nCmaTotal:         524288 kB\nCmaFree:          401232 kB\n"
    )
    return Paths(
        device_tree_model=tmp_path / "model",
        asound_cards=tmp_path / "cards",
        meminfo=meminfo,
        dev=tmp_path / "dev",
    )


def kernel_clock(synced: bool) -> Callable[[], ClockState]:
    """What adjtimex would say, without asking this machine's kernel."""
    return lambda: ClockState(synchronised=synced, est_error_us=1200, max_error_us=40_000)


def doctor_lines(doctor: Doctor) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = run_doctor(doctor, out)
    return code, out.getvalue().splitlines()


def test_simulated_device_passes_every_check(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    config.device.state_dir.mkdir(parents=True)
    stale = config.device.state_dir / ".doctor-left-by-a-power-cut"
    stale.write_bytes(b"bodycamd doctor")
    code, lines = doctor_lines(
        Doctor(config, device_paths(tmp_path), pulse_seconds=0.0, read_clock=kernel_clock(True))
    )
    assert not stale.exists() and list(config.device.state_dir.glob(".doctor-*")) == []
    checks = [m.group(1) for m in map(LINE.match, lines) if m]
    assert checks == EXPECTED, "\n".join(lines)
    assert code == 0 and lines[-1] == "all checks passed", "\n".join(lines)
    by_name = {LINE.match(line).group(1): line for line in lines if LINE.match(line)}  # type: ignore[union-attr]
    assert by_name["frame rate"].startswith("[ OK ]")
    assert "every 15 frames" in by_name["keyframes"]  # 15 fps, one keyframe a second
    assert "AAC 48000 Hz, 1 channel(s)" in by_name["audio as declared"]
    assert "391 MiB free" in by_name["CMA"]
    assert by_name["import picamera2"].startswith("[SKIP]")


def test_unwritable_state_dir_and_unsynced_clock_fail_with_the_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")  # state_dir under a file: unwritable even for root
    config = load_config(write_config(tmp_path, state_dir=str(blocker / "state")))
    doctor = Doctor(
        config, device_paths(tmp_path), pulse_seconds=0.0, read_clock=kernel_clock(False)
    )
    doctor.record_seconds = 0.5
    code, lines = doctor_lines(doctor)
    assert code == 1 and lines[-1] == "2 check(s) failed"
    failed = [line for line in lines if line.startswith("[FAIL]")]
    assert failed[0].startswith("[FAIL] state dir: ")
    assert "-> run as the service user; `sudo systemd-tmpfiles --create" in failed[0]
    assert failed[1].startswith("[FAIL] clock: not synchronised")
    assert "systemctl enable --now systemd-timesyncd" in failed[1]


def test_missing_config_is_one_failing_line(tmp_path: Path) -> None:
    out = io.StringIO()
    assert doctor_main(tmp_path / "absent.toml", out) == 1
    (line,) = out.getvalue().splitlines()
    assert line.startswith("[FAIL] config: ") and "`sudo make install` puts the" in line
    if os.geteuid() != 0:  # root reads a 0000 file, so this half needs another user
        unreadable = write_config(tmp_path)
        unreadable.chmod(0)
        out = io.StringIO()
        assert doctor_main(unreadable, out) == 1
        assert "sudo chgrp bodycamd" in out.getvalue()
    bad = tmp_path / "bad.toml"
    bad.write_text("[camera]\nframerate = 0\n")
    out = io.StringIO()
    assert doctor_main(bad, out) == 1
    assert "camera.framerate" in out.getvalue() and "bodycamd check-config" in out.getvalue()


def test_cli_has_the_doctor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--config", str(tmp_path / "absent.toml")]) == 1
    assert capsys.readouterr().out.startswith("[FAIL] config: ")


def pi_config(tmp_path: Path, board_name: str = "") -> Doctor:
    config = load_config(write_config(tmp_path))
    config = dataclasses.replace(
        config, hardware="pi", gpio=dataclasses.replace(config.gpio, board=board_name)
    )
    return Doctor(config, device_paths(tmp_path), pulse_seconds=0.0, read_clock=kernel_clock(True))


def test_pi_board_checks_against_a_device_tree(tmp_path: Path) -> None:
    doctor = pi_config(tmp_path, "pi4-prototype")
    doctor.paths.device_tree_model.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    (doctor.paths.dev).mkdir()
    (doctor.paths.dev / "gpiochip0").write_text("")
    lines = [r.line() for r in board(doctor)]
    assert lines[0] == "[ OK ] board model: Raspberry Pi 5 Model B Rev 1.0"
    assert lines[1] == "[ OK ] gpiochip: gpiochip0 open (of 1)"
    assert lines[2].startswith("[FAIL] board profile: gpio.board: profile 'pi4-prototype'")
    assert lines[2].endswith("-> set gpio.board as named, or empty")
    doctor.paths.device_tree_model.unlink()
    (line,) = [r.line() for r in board(doctor)]
    assert line.startswith("[FAIL] board model: cannot read") and "ProcSubset=pid" in line


def test_pi_software_checks_name_the_fix(tmp_path: Path) -> None:
    """Off a Pi, picamera2 cannot import (no libcamera) and the venv's numpy is 2.x: exactly
    the two findings a broken Pi install shows, each with its fix."""
    lines = [r.line() for r in pi_config(tmp_path).software()]
    numpy_line = next(line for line in lines if " numpy ABI: " in line)
    import numpy

    if numpy.__version__.startswith("1."):
        assert numpy_line.startswith("[ OK ]")
    else:
        assert numpy_line.startswith("[FAIL]") and "constraints/pi-bookworm.txt" in numpy_line
    picamera2_line = next(line for line in lines if " import picamera2: " in line)
    assert picamera2_line.startswith("[FAIL]") and "apt install python3-picamera2" in picamera2_line


def test_pi_device_nodes_and_groups(tmp_path: Path) -> None:
    doctor = pi_config(tmp_path)
    dev = doctor.paths.dev
    for node in ["video0", "video11", "media0", "dma_heap/linux,cma", "gpiochip0", "snd/pcmC2D0c"]:
        (dev / node).parent.mkdir(parents=True, exist_ok=True)
        (dev / node).write_text("")
    groups, nodes = (r.line() for r in doctor.service_user())
    assert nodes == (
        "[ OK ] device nodes: 6 nodes under video*, media*, dma_heap/*, gpiochip*, snd/* are rw"
    )
    assert groups.startswith(("[ OK ] groups", "[FAIL] groups: uid"))  # depends on who runs it
    (dev / "media0").unlink()
    _, nodes = (r.line() for r in doctor.service_user())
    assert nodes.startswith(f"[FAIL] device nodes: no {dev}/media*")


def test_a_clock_the_sandbox_will_not_let_us_read_names_the_unit(tmp_path: Path) -> None:
    """Under ProtectClock= adjtimex fails with EPERM, which the daemon can only read as "not
    synchronised": the doctor says which it is and what to change."""
    config = load_config(write_config(tmp_path))

    def blocked() -> ClockState:
        raise OSError(errno.EPERM, "adjtimex: Operation not permitted")

    doctor = Doctor(config, device_paths(tmp_path), pulse_seconds=0.0, read_clock=blocked)
    line = next(line for line in doctor_lines(doctor)[1] if line.startswith("[FAIL] clock"))
    assert "cannot ask the kernel (adjtimex: Operation not permitted)" in line, line
    assert "must not set ProtectClock=" in line
