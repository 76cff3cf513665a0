"""The state directory: the one module that knows where things live on flash.

    <state_dir>/keys/                  device signing key (0600)
    <state_dir>/spool/<rec>/<n>.part   segments being written
    <state_dir>/ready/<rec>/<n>.seg    sealed segments awaiting upload
    <state_dir>/quarantine/            files found at start-up that hold no readable segment
    <state_dir>/journal.db             the journal (segment queue and audit trail)
    <state_dir>/ballast                space held back for sealing and journalling when the
                                       filesystem fills up behind our back (released on ENOSPC)

<rec> is the recording id (32 hex digits) and <n> the segment index, zero-padded to six
digits so that names sort in recording order. Directories are created 0700: footage is
encrypted, but who recorded what and when is nobody else's business either.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import StorageError


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

    @property
    def ballast(self) -> Path:
        return self.root / "ballast"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    def part_path(self, recording_id: uuid.UUID, index: int) -> Path:
        return self.spool / recording_id.hex / f"{index:06d}.part"

    def ready_path(self, recording_id: uuid.UUID, index: int) -> Path:
        return self.ready / recording_id.hex / f"{index:06d}.seg"

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def prepare(self) -> None:
        """Create the layout and prove it is writable; raise StorageError naming the path."""
        for directory in (self.root, self.keys, self.spool, self.ready, self.quarantine):
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

    def spooled_sealed(self) -> list[Path]:
        return sorted(self.spool.glob("*/*.seg"))

    def ready_segments(self) -> list[Path]:
        return sorted(self.ready.glob("*/*.seg"))

    def segment_files(self) -> list[Path]:
        """Every file that counts against the quota."""
        return sorted(
            p
            for d in (self.spool, self.ready, self.quarantine)
            for p in d.rglob("*")
            if p.is_file()
        )
