"""`make install-files` into a scratch root, as CI runs it (root): the user and groups, owners
and modes of the config and state directories, and the installed unit (verify, security).

The venv half of `make install` (pip on a Pi) cannot run here; its commands are checked with
`make -n` so DESTDIR, PREFIX and the Pi constraints are at least wired in.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import skip_unless_ci

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/opt/bodycam-test"

needs_root = skip_unless_ci(
    os.geteuid() != 0, "installing sets owners (root:bodycamd); run as root, as CI does"
)
needs_systemd = skip_unless_ci(
    shutil.which("systemd-sysusers") is None or shutil.which("systemd-tmpfiles") is None,
    "systemd-sysusers/systemd-tmpfiles missing (.ci/run installs systemd)",
)


def make_install(destdir: Path) -> None:
    subprocess.run(
        ["make", "-s", "install-files", f"DESTDIR={destdir}", f"PREFIX={PREFIX}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def ids(destdir: Path, database: str) -> dict[str, tuple[int, list[str]]]:
    """name -> (numeric id, members) from the scratch root's passwd or group file."""
    table: dict[str, tuple[int, list[str]]] = {}
    for line in (destdir / "etc" / database).read_text().splitlines():
        parts = line.split(":")
        members = parts[3].split(",") if database == "group" and parts[3] else []
        table[parts[0]] = (int(parts[2]), members)
    return table


def owner_mode(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    destdir = tmp_path / "root"
    make_install(destdir)
    return destdir


@needs_root
@needs_systemd
def test_service_user_and_groups(installed: Path) -> None:
    users, groups = ids(installed, "passwd"), ids(installed, "group")
    assert "bodycamd" in users and "bodycamd" in groups
    for group in ("video", "gpio", "audio"):
        assert "bodycamd" in groups[group][1], group


@needs_root
@needs_systemd
def test_config_is_readable_by_the_service_group_only(installed: Path) -> None:
    gid = ids(installed, "group")["bodycamd"][0]
    uid = ids(installed, "passwd")["bodycamd"][0]
    config = installed / "etc/bodycamd/bodycamd.toml"
    assert owner_mode(config) == (0, gid, 0o640)
    assert config.read_bytes() == (ROOT / "config/bodycamd.example.toml").read_bytes()
    assert owner_mode(installed / "etc/bodycamd") == (0, gid, 0o750)
    assert owner_mode(installed / "var/lib/bodycamd") == (uid, gid, 0o700)


@needs_root
@needs_systemd
def test_an_existing_config_is_kept_and_given_to_the_group(tmp_path: Path) -> None:
    """An older install left the config root:root; reinstalling repairs the owner only."""
    destdir = tmp_path / "root"
    config = destdir / "etc/bodycamd/bodycamd.toml"
    config.parent.mkdir(parents=True)
    config.write_text('hardware = "pi"\n# site edits\n')
    config.chmod(0o600)
    make_install(destdir)
    make_install(destdir)  # and a second run changes nothing
    gid = ids(destdir, "group")["bodycamd"][0]
    assert config.read_text() == 'hardware = "pi"\n# site edits\n'
    assert owner_mode(config) == (0, gid, 0o640)


@needs_root
@needs_systemd
def test_installed_unit_points_at_prefix_and_verifies(installed: Path, tmp_path: Path) -> None:
    unit = installed / "etc/systemd/system/bodycamd.service"
    text = unit.read_text()
    assert f"ExecStart={PREFIX}/bin/bodycamd run --config /etc/bodycamd/bodycamd.toml" in text
    assert owner_mode(unit)[2] == 0o644
    assert (installed / PREFIX.lstrip("/") / "docs/operations.md").is_file()
    if shutil.which("systemd-analyze") is None and not os.environ.get("CI"):
        pytest.skip("systemd-analyze is not installed here (.ci/run installs systemd)")
    runnable = tmp_path / "bodycamd.service"  # the venv is not installed here: run python
    runnable.write_text(text.replace(f"{PREFIX}/bin/bodycamd", sys.executable))
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(runnable)], capture_output=True, text=True, check=False
    )
    assert verify.returncode == 0 and "bodycamd.service" not in verify.stderr, verify.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(runnable)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", security.stdout)
    assert match and float(match.group(1)) <= 2.0, security.stdout


def test_venv_step_uses_destdir_prefix_and_the_pi_constraints() -> None:
    dry = subprocess.run(
        ["make", "-n", "install-venv", "DESTDIR=/stage", f"PREFIX={PREFIX}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"-m venv --system-site-packages /stage{PREFIX}" in dry
    assert f"/stage{PREFIX}/bin/python -m pip install" in dry
    assert "--constraint constraints/pi-bookworm.txt" in dry
