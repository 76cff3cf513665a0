"""Wiring: which components the daemon runs, in dependency order, for a given config."""

from __future__ import annotations

import asyncio
import logging
import socket

from .config import Config
from .daemon import Component, NotBuiltYet, Supervisor
from .identity import IdentityComponent
from .storage import StateLayout, StorageComponent
from .systemd import Notifier

log = logging.getLogger(__name__)


def device_name(config: Config) -> str:
    return config.device.name or socket.gethostname()


def build_components(config: Config) -> list[Component]:
    layout = StateLayout(config.device.state_dir)
    identity = IdentityComponent(config.evidence, layout)
    return [
        identity,
        StorageComponent(layout, config.storage, identity, device_name(config)),
        NotBuiltYet("camera", "not built yet (capture issue), recording unavailable"),
    ]


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
