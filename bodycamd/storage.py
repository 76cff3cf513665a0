"""The state directory: the one module that knows where things live on flash.

    <state_dir>/keys/          device signing key (0600)
    <state_dir>/spool/<rec>/   segments being written (<n>.part)
    <state_dir>/ready/<rec>/   sealed segments awaiting upload (<n>.seg)
    <state_dir>/journal.db     the journal (upload queue and audit trail; storage issue)

Directories are created 0700: footage is encrypted, but who recorded what and when is not
anyone else's business either. Quota accounting, sealing into ready/ and startup recovery
build on this layout (see the storage issue); today this component creates and checks it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import StorageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StateLayout:
    root: Path

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def device_key(self) -> Path:
        return self.keys / "device.key"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def ready(self) -> Path:
        return self.root / "ready"

    @property
    def journal(self) -> Path:
        return self.root / "journal.db"

    def prepare(self) -> None:
        """Create the layout and prove it is writable; raise StorageError naming the path."""
        for directory in (self.root, self.keys, self.spool, self.ready):
            if directory.exists() and not directory.is_dir():
                raise StorageError(f"{directory}: exists but is not a directory")
            try:
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create {directory}: {exc.strerror or exc}") from exc
        probe = self.spool / ".write-probe"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"{self.spool}: not writable: {exc.strerror or exc}") from exc

    def pending_parts(self) -> list[Path]:
        return sorted(self.spool.glob("*/*.part"))

    def sealed_segments(self) -> list[Path]:
        return sorted(self.ready.glob("*/*.seg")) + sorted(self.spool.glob("*/*.seg"))


class StorageComponent:
    name = "storage"

    def __init__(self, layout: StateLayout) -> None:
        self.layout = layout
        self._summary = "storage: not started"

    async def start(self) -> None:
        await asyncio.to_thread(self.layout.prepare)
        parts = len(self.layout.pending_parts())
        sealed = len(self.layout.sealed_segments())
        if parts:
            log.warning("%d unsealed segment(s) in %s await recovery", parts, self.layout.spool)
        self._summary = f"storage: {sealed} segment(s) awaiting upload"
        if parts:
            self._summary += f", {parts} torn awaiting recovery"
        log.info("state directory %s (free %s MiB)", self.layout.root, self._free_mib())

    def _free_mib(self) -> int:
        st = os.statvfs(self.layout.root)
        return st.f_bavail * st.f_frsize // (1 << 20)

    async def run(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def status(self) -> str:
        return self._summary
