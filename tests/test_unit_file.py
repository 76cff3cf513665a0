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
