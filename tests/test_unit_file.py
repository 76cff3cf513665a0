"""The systemd unit as shipped: it verifies, and its exposure rating stays at 2.0 or lower."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import skip_unless_ci

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "bodycamd.service"

needs_analyze = skip_unless_ci(
    shutil.which("systemd-analyze") is None,
    "systemd-analyze is not installed here (.ci/run installs systemd)",
)


def installed_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at an executable that exists on this machine, since
    /opt/bodycamd is only there after `make install`."""
    text = UNIT.read_text().replace("/opt/bodycamd/bin/bodycamd", sys.executable)
    copy = tmp_path / "bodycamd.service"
    copy.write_text(text)
    return copy


def test_unit_has_the_contract_the_daemon_relies_on() -> None:
    text = UNIT.read_text()
    for line in [
        "Type=notify",
        "Restart=on-failure",
        "User=bodycamd",
        "SupplementaryGroups=video gpio audio",
        "Environment=ALSA_CONFIG_DIR=/usr/share/alsa",
        "ProtectProc=invisible",
        "StateDirectory=bodycamd",
        "ConfigurationDirectory=bodycamd",
        "RuntimeDirectory=bodycamd",
        "WorkingDirectory=/run/bodycamd",
        "LimitCORE=0",
        "UMask=0077",
        "CapabilityBoundingSet=",
        "DevicePolicy=closed",
        "SystemCallFilter=@system-service",
    ]:
        assert re.search(f"^{re.escape(line)}$", text, re.MULTILINE), line
    assert re.search(r"^WatchdogSec=\d+s$", text, re.MULTILINE)


@needs_analyze
def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(installed_copy(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "bodycamd.service" not in result.stderr, result.stderr


@needs_analyze
def test_security_exposure_is_at_most_two(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=true",
            "--no-pager",
            str(installed_copy(tmp_path)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0, result.stdout


def test_sysusers_puts_the_user_in_video_gpio_and_audio() -> None:
    text = (ROOT / "systemd" / "bodycamd.sysusers").read_text()
    assert re.search(r"^u bodycamd ", text, re.MULTILINE)
    for group in ("video", "gpio", "audio"):
        assert re.search(rf"^m bodycamd {group}$", text, re.MULTILINE), group


def settings(name: str) -> list[str]:
    return re.findall(rf"^{name}=(.*)$", UNIT.read_text(), re.MULTILINE)


def test_gpiozero_can_identify_the_board_under_the_sandbox() -> None:
    """gpiozero's lgpio factory reads /proc/device-tree/system/linux,revision (else
    /proc/cpuinfo): nothing in the unit may hide /proc's non-process entries or /sys/firmware
    (where /proc/device-tree points)."""
    assert settings("ProcSubset") in ([], ["all"])
    for setting in ("InaccessiblePaths", "TemporaryFileSystem"):
        for value in settings(setting):
            assert "/proc" not in value and "/sys" not in value, (setting, value)


def test_device_access_is_exactly_camera_gpio_and_sound() -> None:
    """/dev/video* and /dev/v4l-subdev*, /dev/media*, /dev/dma_heap/*, /dev/gpiochip*,
    /dev/snd/*: device paths cannot be globbed in DeviceAllow=, so the kernel's device groups
    (the names in /proc/devices) are named instead, and nothing else."""
    assert settings("DevicePolicy") == ["closed"]
    assert sorted(settings("DeviceAllow")) == sorted(
        f"char-{group} rw" for group in ("video4linux", "media", "dma_heap", "gpiochip", "alsa")
    )
    assert settings("PrivateDevices") in ([], ["no"])  # it would hide these nodes


def syscall_group(name: str) -> set[str]:
    """The system calls systemd itself puts in a group such as @clock (nested groups
    resolved), from `systemd-analyze syscall-filter`."""
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter", "--no-pager", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        calls |= syscall_group(entry) if entry.startswith("@") else {entry}
    return calls


@needs_analyze
def test_the_daemon_may_read_whether_the_clock_is_synchronised() -> None:
    """clock.py asks adjtimex(2) with modes = 0. ProtectClock= denies that call outright
    (its own seccomp filter, which no later SystemCallFilter= line undoes), and @privileged
    contains @clock; the unit must let the read through, or every segment says "clock not
    synchronised" and the ready LED never lights on a Pi. Evaluated as systemd merges
    SystemCallFilter= lines: the first sets an allow list, a later "~" line takes calls out,
    a later plain line puts them back."""
    assert settings("ProtectClock") in ([], ["no"])
    lines = settings("SystemCallFilter")
    assert lines and not lines[0].startswith("~")
    allowed: set[str] = set()
    for line in lines:
        deny = line.startswith("~")
        names = line.removeprefix("~").split()
        calls = set().union(*(syscall_group(n) if n.startswith("@") else {n} for n in names))
        allowed = allowed - calls if deny else allowed | calls
    # glibc's adjtimex() issues clock_adjtime (clock_adjtime64 on 32-bit ARM), not adjtimex
    assert {"adjtimex", "clock_adjtime", "clock_adjtime64"} <= allowed
    assert "settimeofday" not in allowed and "clock_settime" not in allowed
    assert settings("CapabilityBoundingSet") == [""]  # no CAP_SYS_TIME: reading only
