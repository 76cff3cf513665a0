"""Wiring: which components the daemon runs, in dependency order, for a given config."""

from __future__ import annotations

import asyncio
import logging
import socket

from hw.camera import open_camera

from .camera import Camera, FaultSink, PacketSink
from .config import Config
from .daemon import Component, Supervisor
from .identity import IdentityComponent
from .recorder.component import CaptureComponent
from .storage import StateLayout, StorageComponent
from .systemd import Notifier

log = logging.getLogger(__name__)


def device_name(config: Config) -> str:
    return config.device.name or socket.gethostname()


def build_components(config: Config) -> list[Component]:
    layout = StateLayout(config.device.state_dir)
    identity = IdentityComponent(config.evidence, layout)
    storage = StorageComponent(layout, config.storage, identity, device_name(config))

    def camera_factory(post: PacketSink, fault: FaultSink) -> Camera:
        return open_camera(config.camera, config.hardware, post, fault)

    capture = CaptureComponent(
        camera_factory, storage.require_spool, config.camera, config.recorder
    )
    return [identity, storage, capture]


async def serve(config: Config, notifier: Notifier, *, debug: bool = False) -> int:
    supervisor = Supervisor(
        build_components(config),
        notifier,
        stop_timeout=config.daemon.stop_timeout,
        debug=debug,
    )
    return await supervisor.run()


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
