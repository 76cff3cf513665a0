"""`bodycamd doctor`: the bring-up self-test a field tester runs on the device.

One line per check: `[ OK ]`, `[FAIL]` (with what to do) or `[SKIP]` (with why), and exit 1 if
any check failed. It checks what only the device can show — the board and its pins, the
camera, the microphone, the OS's picamera2 and numpy, the groups and device nodes of the
service user, CMA, the clock — and makes a 2-second test recording that it decodes.

Run it with the service stopped (the camera, the microphone and the pins can have one user),
as the service user, and also inside the unit's sandbox through `systemd-run`: the exact
commands are in docs/operations.md ("Bring-up checklist").

With `hardware = "simulated"` the same checks run against the simulated parts (the synthetic
camera, gpiozero's MockFactory pins); the checks that only exist on a Pi say SKIP and why.
The footage of the test recording stays in RAM and is dropped: nothing is written to flash.
"""

from __future__ import annotations

import grp
import importlib
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO

from .clock import ClockState, read_kernel_clock
from .config import Config, load_config
from .errors import BodycamError

Status = Literal["ok", "fail", "skip"]
SERVICE_GROUPS = ("video", "gpio", "audio")
DEVICE_NODES = ("video*", "media*", "dma_heap/*", "gpiochip*", "snd/*")


@dataclass(frozen=True)
class Result:
    status: Status
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = {"ok": "[ OK ]", "fail": "[FAIL]", "skip": "[SKIP]"}[self.status]
        text = f"{mark} {self.name}: {self.detail}"
        return f"{text} -> {self.fix}" if self.status == "fail" and self.fix else text


def ok(name: str, detail: str) -> Result:
    return Result("ok", name, detail)


def fail(name: str, detail: str, fix: str) -> Result:
    return Result("fail", name, detail, fix)


def skip(name: str, why: str) -> Result:
    return Result("skip", name, why)


@dataclass(frozen=True)
class Paths:
    """Where the device's facts are read; tests point these at files they write."""

    device_tree_model: Path = Path("/proc/device-tree/model")
    asound_cards: Path = Path("/proc/asound/cards")
    meminfo: Path = Path("/proc/meminfo")
    dev: Path = Path("/dev")


@dataclass
class Doctor:
    config: Config
    paths: Paths = field(default_factory=Paths)
    read_clock: Callable[[], ClockState] = read_kernel_clock  # the kernel's word (adjtimex)
    record_seconds: float = 2.0
    pulse_seconds: float = 0.3  # long enough to see an LED and hear the buzzer

    @property
    def on_pi(self) -> bool:
        return self.config.hardware == "pi"

    def checks(self) -> Iterator[Result]:
        from . import doctor_hardware as hardware

        yield from self.state_dir()
        yield from hardware.board(self)
        yield from hardware.panel(self)
        yield from self.software()
        yield from hardware.microphone(self)
        yield from hardware.test_recording(self)
        yield from self.service_user()
        yield from self.clock()

    # -- the checks that need no hardware ----------------------------------------------------

    def state_dir(self) -> Iterator[Result]:
        """Write, fsync and remove a probe file. A power cut mid-probe leaves one small
        `.doctor-*` file in the state dir's root, which storage never reads (it counts only
        spool/, ready/ and quarantine/); the next doctor run removes it."""
        state = self.config.device.state_dir
        try:
            state.mkdir(parents=True, exist_ok=True)
            for stale in state.glob(".doctor-*"):
                stale.unlink()
            with tempfile.NamedTemporaryFile(dir=state, prefix=".doctor-") as probe:
                probe.write(b"bodycamd doctor")
                probe.flush()
                os.fsync(probe.fileno())
        except OSError as exc:
            yield fail(
                "state dir",
                f"{state} is not writable by uid {os.getuid()} ({exc.strerror})",
                "run as the service user; `sudo systemd-tmpfiles --create "
                "/usr/lib/tmpfiles.d/bodycamd.conf` makes it bodycamd:bodycamd 0700",
            )
            return
        yield ok("state dir", f"{state} writable (file written, fsynced, removed)")

    def software(self) -> Iterator[Result]:
        try:
            system = platform.freedesktop_os_release().get("PRETTY_NAME", "unknown OS")
        except OSError:
            system = "no /etc/os-release"
        yield ok("platform", f"{platform.machine()}, Python {platform.python_version()}, {system}")
        numpy_fix = (
            "the venv has a numpy the OS's picamera2/simplejpeg were not built for: "
            "reinstall with `sudo make install` (it uses constraints/pi-bookworm.txt)"
        )
        try:
            numpy = importlib.import_module("numpy")
            importlib.import_module("simplejpeg")
        except (ImportError, ValueError) as exc:
            yield fail("numpy ABI", f"{exc}".splitlines()[0], numpy_fix)
        else:
            where = Path(str(numpy.__file__)).parent.parent
            detail = f"numpy {numpy.__version__} from {where}; simplejpeg imports"
            if self.on_pi and not numpy.__version__.startswith("1."):
                yield fail("numpy ABI", detail, numpy_fix)
            else:
                yield ok("numpy ABI", detail)
        if not self.on_pi:
            yield skip("import picamera2", 'hardware = "simulated" uses the synthetic camera')
            return
        try:
            picamera2 = importlib.import_module("picamera2")
        except Exception as exc:  # any import-time failure is the finding
            yield fail(
                "import picamera2",
                f"{type(exc).__name__}: {exc}".splitlines()[0],
                "`sudo apt install python3-picamera2`; the venv must be made with "
                "--system-site-packages (`sudo make install` does)",
            )
            return
        yield ok("import picamera2", f"{Path(str(picamera2.__file__)).parent}")

    def service_user(self) -> Iterator[Result]:
        if not self.on_pi:
            yield skip("groups", "simulated hardware opens no device nodes")
            yield skip("device nodes", "simulated hardware opens no device nodes")
            return
        names = {grp.getgrgid(gid).gr_name for gid in os.getgroups()}
        missing = [g for g in SERVICE_GROUPS if g not in names]
        if missing:
            yield fail(
                "groups",
                f"uid {os.getuid()} is not in {', '.join(missing)}",
                "`sudo make install` adds bodycamd to video, gpio and audio; run the doctor "
                "as bodycamd (the unit's SupplementaryGroups= adds them too)",
            )
        else:
            yield ok("groups", ", ".join(SERVICE_GROUPS))
        problems: list[str] = []
        found = 0
        for pattern in DEVICE_NODES:
            nodes = sorted(self.paths.dev.glob(pattern))
            found += len(nodes)
            if not nodes:
                problems.append(f"no {self.paths.dev / pattern}")
            problems += [f"{n} not rw" for n in nodes if not os.access(n, os.R_OK | os.W_OK)]
        if problems:
            yield fail(
                "device nodes",
                "; ".join(problems[:4]),
                "check the groups above, the camera ribbon and dtoverlay, and that the unit's "
                "DeviceAllow= lines are intact",
            )
        else:
            yield ok("device nodes", f"{found} nodes under {', '.join(DEVICE_NODES)} are rw")

    def clock(self) -> Iterator[Result]:
        try:
            state = self.read_clock()
        except OSError as exc:  # the daemon reads this as "not synchronised", for ever
            yield fail(
                "clock",
                f"cannot ask the kernel ({exc.strerror or exc}); every segment would say the "
                "clock is not synchronised",
                "a seccomp filter blocks the read (adjtimex, which glibc makes as "
                "clock_adjtime): the unit must not set ProtectClock= and must allow adjtimex, "
                "clock_adjtime and clock_adjtime64 (docs/operations.md, hardening table)",
            )
            return
        if state.synchronised:
            yield ok("clock", f"synchronised (kernel: estimated error {state.est_error_us} us)")
        else:
            yield fail(
                "clock",
                "not synchronised (the kernel's adjtimex says STA_UNSYNC); footage is marked "
                "unsynchronised",
                "`sudo systemctl enable --now systemd-timesyncd` and give the device network "
                "once; `timedatectl` shows NTPSynchronized=yes when done",
            )


def run_doctor(doctor: Doctor, out: TextIO) -> int:
    """Print each check's line as it completes; 1 if any failed. A check that raises
    unexpectedly is itself a failure line, never a traceback, so the rest still run."""
    failed = 0
    results = doctor.checks()
    while True:
        try:
            result = next(results)
        except StopIteration:
            break
        except Exception as exc:
            result = fail("doctor", f"{type(exc).__name__}: {exc}", "report this with --debug")
            results = iter(())
        print(result.line(), file=out, flush=True)
        failed += result.status == "fail"
    print(f"{failed} check(s) failed" if failed else "all checks passed", file=out)
    return 1 if failed else 0


def _config_fix(path: Path, exc: BaseException) -> str:
    cause = exc.__cause__
    if isinstance(cause, FileNotFoundError):
        return "`sudo make install` puts the example there; or pass --config"
    if isinstance(cause, PermissionError):
        return (
            f"the service reads it as bodycamd: `sudo chgrp bodycamd {path} && "
            f"sudo chmod 0640 {path}` (make install does)"
        )
    return f"fix the key named, then `bodycamd check-config {path}`"


def doctor_main(config_path: Path, out: TextIO | None = None, paths: Paths | None = None) -> int:
    out = out or sys.stdout
    try:
        config = load_config(config_path)
    except (BodycamError, OSError) as exc:
        print(fail("config", str(exc), _config_fix(config_path, exc)).line(), file=out)
        return 1
    print(ok("config", f"{config_path} readable and valid").line(), file=out)
    return run_doctor(Doctor(config, paths or Paths()), out)
