"""The demo's back end and camera set up as an operator would: `bodycamd-ingest init`, the
ingest served on a free port, the camera's config, its `keys csr` request and `keys show`
key enrolled with `bodycamd-ingest enroll`.

Why through the command-line tools and not the Python API: the demo shows a newcomer the
commands they would type, and proves those commands work together. Every file is written
under the demo's own directory, which the demo recreates each run.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..ingest.config import load_config
from .procs import DemoFailed, Processes, run_tool

DEVICE_NAME = "demo-cam"
LISTENING = re.compile(r"bodycamd-ingest: listening on (https://\S+)")


@dataclass(frozen=True)
class DemoTiming:
    """How long each part of the shift lasts; the test shortens them."""

    first_recording: float = 12.0  # seconds recorded after the press, before the hold
    second_recording: float = 4.0
    pre_event: float = 3.0
    segment: float = 4.0
    hold: float = 3.0  # the stop hold; the daemon's hold_seconds stays at its 3 s default


def tool(name: str) -> list[str]:
    """argv prefix of one of the project's commands, from this interpreter's environment."""
    module = {"bodycamd": "bodycamd.cli", "bodycamd-ingest": "bodycamd.ingest.cli"}[name]
    return [sys.executable, "-m", module]


def init_ingest(out: Path) -> Path:
    ingest = out / "ingest"
    argv = [*tool("bodycamd-ingest"), "init", str(ingest)]
    run_tool([*argv, "--host", "127.0.0.1", "--listen", "127.0.0.1"], out / "setup.log", "init")
    return ingest


def serve_ingest(procs: Processes, ingest: Path, timeout: float = 60.0) -> str:
    """Start `bodycamd-ingest serve --port 0` and return the URL its log announces."""
    procs.start("ingest", [*tool("bodycamd-ingest"), "serve", "-c", str(ingest), "--port", "0"])
    found: list[str] = []

    def listening() -> bool:
        match = LISTENING.search(procs.log_of("ingest").read_text(errors="replace"))
        if match:
            found.append(match.group(1))
        return bool(match)

    procs.wait_until("ingest", listening, timeout)
    return found[0]


def camera_config(out: Path, timing: DemoTiming) -> Path:
    """The camera's config, without [upload] (added by `add_upload` once the ingest listens)."""
    path = out / "camera.toml"
    path.write_text(
        'hardware = "simulated"\n'
        "[device]\n"
        f'name = "{DEVICE_NAME}"\n'
        'state_dir = "camera"\n'
        'runtime_dir = "run"\n'
        "[evidence]\n"
        'public_key = "keys/evidence.pub"\n'
        "development_keys = true\n"
        "[camera]\n"
        'backend = "synthetic"\n'
        "width = 640\n"
        "height = 360\n"
        "framerate = 15\n"
        "bitrate = 600000\n"
        "keyframe_seconds = 1.0\n"
        "[recorder]\n"
        f"segment_seconds = {timing.segment}\n"
        f"pre_event_seconds = {timing.pre_event}\n"
        "[dock]\n"
        "stable_seconds = 0.5\n"
        "[daemon]\n"
        "stop_timeout = 10.0\n"
    )
    return path


def enroll(out: Path, config: Path, ingest: Path) -> Path:
    """`keys csr` and `keys show` on the camera, `enroll` at the ingest; the certificate path."""
    log = out / "setup.log"
    csr = out / "camera.csr"
    camera = tool("bodycamd")
    run_tool([*camera, "keys", "csr", "--config", str(config), "--out", str(csr)], log, "csr")
    shown = run_tool([*camera, "keys", "show", "--config", str(config)], log, "keys show")
    device_key = shown.splitlines()[0] if shown.strip() else ""
    if not device_key:
        raise DemoFailed(f"`bodycamd keys show` printed no key; see {log}")
    (out / "camera-device-key.txt").write_text(device_key + "\n")  # for evidence decrypt
    cert = out / "camera-client.pem"
    argv = [*tool("bodycamd-ingest"), "enroll", "-c", str(ingest), "--csr", str(csr)]
    run_tool([*argv, "--device-key", device_key, "--out", str(cert)], log, "enroll")
    return cert


def add_upload(config: Path, ingest: Path, url: str, cert: Path) -> None:
    """Point the camera at the running ingest: its CA, our certificate, its receipt key."""
    ca = _ingest_ca(ingest)
    config.write_text(
        config.read_text()
        + "[upload]\n"
        + f'endpoint = "{url}/files/"\n'
        + f'receipts_url = "{url}/receipts"\n'
        + f'ca_file = "{ca}"\n'
        + f'client_cert = "{cert}"\n'
        + f'receipt_keys = "{ingest / "receipt.pub"}"\n'
        + 'chunk_size = "256KiB"\n'
    )


def _ingest_ca(ingest: Path) -> Path:
    settings = load_config(ingest)
    return settings.path(settings.tls.ca_certificate)
