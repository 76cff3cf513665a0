"""The Pi install's constraints (constraints/pi-bookworm.txt): pip must leave Bookworm's numpy
1.x in charge, so the OS's picamera2 and simplejpeg keep importing in the venv.

The fast tests read the file against pyproject.toml. The slow ones (`make test-slow`, network
to PyPI) resolve the install for aarch64 / CPython 3.11 as pip would on the Pi, and run the
pinned numpy and PyAV together.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints" / "pi-bookworm.txt"
BOOKWORM_NUMPY = "1.24.2"  # python3-numpy 1:1.24.2-1+deb12u1 in Debian 12
PI_PLATFORMS = [  # Bookworm's glibc is 2.36: pip needs each manylinux tag named
    "manylinux2014_aarch64",
    "manylinux_2_28_aarch64",
    "manylinux_2_34_aarch64",
    "manylinux_2_36_aarch64",
]


def pins() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier  # exactly one "==" each
            assert spec.operator == "==", line
            found[requirement.name] = spec.version
    return found


def project_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + project["optional-dependencies"]["pi"]
    return {Requirement(text).name: Requirement(text) for text in listed}


def test_numpy_is_pinned_to_bookworms_own() -> None:
    assert pins()["numpy"] == BOOKWORM_NUMPY


def test_every_pin_is_allowed_by_pyproject() -> None:
    """A pin outside the project's own range would make the install unresolvable."""
    requirements = project_requirements()
    for name, version in pins().items():
        assert name in requirements, f"{name} is pinned but not a dependency"
        assert requirements[name].specifier.contains(version), (name, version)


def test_pyav_pin_has_what_picamera2_and_the_muxer_use() -> None:
    """picamera2 0.3.x calls VideoFrame.from_numpy_buffer(..., width=), upstream since 14."""
    major = int(pins()["av"].split(".")[0])
    assert major >= 14


def test_install_uses_the_constraints() -> None:
    assert "--constraint $(PI_CONSTRAINTS)" in (ROOT / "Makefile").read_text()


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, check=False
    )


@pytest.mark.slow
def test_resolves_for_aarch64_python_311(tmp_path: Path) -> None:
    """What `make install-venv` would bring into the venv on a Pi, binary wheels only (the Pi
    builds nothing). picamera2 and lgpio come from the OS (python3-picamera2, python3-lgpio)
    and are not resolved here."""
    report = tmp_path / "report.json"
    platforms = [arg for tag in PI_PLATFORMS for arg in ("--platform", tag)]
    result = pip(
        "install", "--dry-run", "--quiet", "--ignore-installed", "--only-binary=:all:",
        *platforms, "--python-version", "3.11", "--implementation", "cp",
        "--report", str(report), "--constraint", str(CONSTRAINTS), str(ROOT),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    chosen = {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert chosen["numpy"] == BOOKWORM_NUMPY
    for name, version in pins().items():
        if name in chosen:
            assert chosen[name] == version, name
    assert chosen["av"] == pins()["av"]


@pytest.mark.slow
def test_pinned_numpy_and_pyav_work_together(tmp_path: Path) -> None:
    """numpy 1.24 with the pinned PyAV: the calls picamera2's libav encoder makes."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--only-binary=:all:",
         "--constraint", str(CONSTRAINTS), "numpy", "av"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    probe = textwrap.dedent(
        """
        from fractions import Fraction
        import av, numpy
        assert numpy.__version__.startswith("1.")
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height, codec.pix_fmt = 64, 64, "yuv420p"
        codec.time_base = Fraction(1, 30)
        packets = 0
        for index in range(10):
            buffer = numpy.full((96, 64), index * 20, dtype=numpy.uint8)
            frame = av.VideoFrame.from_numpy_buffer(buffer, format="yuv420p", width=64)
            frame.pts = index
            packets += len(codec.encode(frame))
        packets += len(codec.encode(None))
        assert packets == 10, packets
        print(numpy.__version__, av.__version__)
        """
    )
    run = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
