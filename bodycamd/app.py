"""Wiring: which components the daemon runs, in dependency order, for a given config.

The composition root: the only place that knows every part. Components start in list order
and stop in reverse, so the control socket goes first on shutdown, then the device, the
camera (sealing the recording), the panel (GPIO closed once the recording is sealed),
storage and keys.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket

from hw.camera import open_camera
from hw.gpio import GpioPanel, make_pin_factory, pins_for

from .camera import Camera, FaultSink, PacketSink
from .clock import clock_synchronised
from .config import Config
from .control.server import ControlServer
from .daemon import Component, Supervisor
from .device import Device
from .dock import DockComponent
from .identity import IdentityComponent
from .indicators import IndicatorPolicy
from .panel import EdgeSink, PanelComponent
from .recorder.component import CaptureComponent
from .session import SessionPolicy
from .simulator import PanelSimulator
from .storage import StateLayout, StorageComponent
from .systemd import Notifier
from .upload.component import UploadComponent, build_uploader, trusted_receipt_keys

log = logging.getLogger(__name__)


def device_name(config: Config) -> str:
    return config.device.name or socket.gethostname()


def build_components(config: Config) -> list[Component]:
    layout = StateLayout(config.device.state_dir)
    identity = IdentityComponent(config.evidence, layout)
    storage = StorageComponent(
        layout, config.storage, identity, device_name(config), trusted_receipt_keys(config)
    )

    def camera_factory(post: PacketSink, fault: FaultSink) -> Camera:
        return open_camera(config.camera, config.hardware, post, fault)

    device: Device | None = None

    def changed() -> None:
        if device is not None:
            device.changed()

    capture = CaptureComponent(
        camera_factory,
        storage.storage,
        config.camera,
        config.recorder,
        on_change=changed,
    )
    dock = DockComponent(config.dock)
    uploader: UploadComponent | None = None

    def clock_synced() -> bool:
        """The kernel's word, and the ingest's Date at the last dock (within 2 s)."""
        skewed = uploader is not None and uploader.clock_unsynced.value
        return clock_synchronised() and not skewed

    device = Device(
        SessionPolicy(config.session), storage.storage, capture, dock, clock_synced=clock_synced
    )
    uploader = build_uploader(
        config,
        storage.storage,
        dock.docked,
        device.recording,
        lambda progress: device.set_upload(progress.fraction, progress.failing),
    )
    uploader.clock_unsynced.listen(lambda _: device.changed())
    pins = pins_for(config.gpio, config.hardware)
    factory = make_pin_factory(config.hardware)

    def panel_hardware(post: EdgeSink) -> GpioPanel:
        hardware = GpioPanel(pins, factory, dock.route_edges(post))
        dock.attach_contact(lambda: hardware.docked)
        return hardware

    panel = PanelComponent(panel_hardware, device, config.gpio, config.indicators)
    simulator = PanelSimulator(panel) if config.hardware == "simulated" else None
    control = ControlServer(
        config.device.runtime_dir / "control.sock",
        config.control,
        device,
        storage.storage,
        capture,
        simulator,
        stealth_allowed=config.indicators.stealth_allowed,
        indicator_policy=IndicatorPolicy.from_config(config.indicators),
        uploads=uploader.progress_json,
    )
    # the dock starts after the panel, whose GPIO hardware carries the dock contact; stop
    # order is the reverse: control, the uploader (its request cancelled), device, the camera
    # (sealing the recording), the dock, then the panel's GPIO (handlers cleared, devices
    # closed), storage, keys (DESIGN.md §3)
    return [identity, storage, panel, dock, capture, device, uploader, control]


async def serve(config: Config, notifier: Notifier, *, debug: bool = False) -> int:
    supervisor = Supervisor(
        build_components(config),
        notifier,
        stop_timeout=config.daemon.stop_timeout,
        debug=debug,
    )
    freeze_startup_objects()
    return await supervisor.run()


def freeze_startup_objects() -> None:
    """Modules, classes and configuration live as long as the daemon: moved out of the
    garbage collector's sight, every later collection skips them (about 0.2 % of a core less
    while recording, docs/performance.md)."""
    gc.collect()
    gc.freeze()


def run_daemon(config: Config, notifier: Notifier | None = None, *, debug: bool = False) -> int:
    notifier = notifier or Notifier()
    log.info(
        "bodycamd starting: device %s, hardware %s, config %s",
        device_name(config),
        config.hardware,
        config.source,
    )
    try:
        return asyncio.run(serve(config, notifier, debug=debug))
    finally:
        notifier.close()
