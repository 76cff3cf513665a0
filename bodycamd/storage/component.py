"""The storage component of the daemon: layout, journal, reconciliation, quota and status."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ..config import StorageConfig, parse_size
from ..errors import StorageError
from ..journal import Journal
from ..journal.db import AWAITING_UPLOAD, JournalCorrupt
from .layout import StateLayout
from .quota import QuotaLedger, StorageFigures
from .reconcile import reconcile
from .spool import Spool

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ..identity import IdentityComponent

log = logging.getLogger(__name__)
BALLAST = 4 * 2**20  # enough for a footer and many journal pages


class StorageComponent:
    name = "storage"

    def __init__(
        self,
        layout: StateLayout,
        config: StorageConfig,
        identity: IdentityComponent,
        device_name: str,
    ) -> None:
        self.layout = layout
        self._config = config
        self._identity = identity
        self._device_name = device_name
        self.spool: Spool | None = None
        self._low: bool | None = None
        self._full: bool | None = None

    async def start(self) -> None:
        self.spool = await asyncio.to_thread(self._open)
        report = await asyncio.to_thread(reconcile, self.spool, self._identity.signing_key())
        log.info("storage reconciled: %s", report.summary())
        await asyncio.to_thread(self._recount)

    def _open(self) -> Spool:
        self.layout.prepare()
        key = self._identity.signing_key()
        if self._identity.evidence_key is None:
            raise StorageError("keys are not loaded")
        journal = self._open_journal(key)
        journal.audit("daemon_start", device=self._device_name)
        config = self._config
        ledger = QuotaLedger(
            self.layout.root,
            lambda total: parse_size(config.quota, total),
            parse_size(config.reserve, 0),
            low_minutes=config.low_minutes,
            min_free_minutes=config.min_free_minutes,
            bitrate=config.assumed_bitrate,
        )
        spool = Spool(
            self.layout, journal, ledger, key, self._identity.evidence_key, self._device_name
        )
        # held back out of the reserve, released to seal when the card fills behind our back
        spool.ensure_ballast(min(BALLAST, parse_size(config.reserve, 0)))
        return spool

    def _open_journal(self, key: Ed25519PrivateKey) -> Journal:
        """A corrupt journal must not stop the camera from recording: it is moved aside
        (kept, for the back end to examine), a new one is started, and the start-up
        reconciliation adopts every segment on flash into it. The old audit trail is in the
        moved file; the new trail starts by saying so."""
        path = self.layout.journal
        try:
            return Journal(path, key)
        except JournalCorrupt as exc:
            stamp = time.strftime("%Y%m%dT%H%M%S")
            kept = path.with_name(f"{path.name}.corrupt-{stamp}")
            for suffix in ("", "-wal", "-shm"):
                old = path.with_name(path.name + suffix)
                if old.exists():
                    old.rename(kept.with_name(kept.name + suffix))
            log.error("%s; moved to %s and starting a new journal", exc, kept)
            journal = Journal(path, key)
            journal.audit("journal_replaced", reason=str(exc), kept=kept.name)
            return journal

    def _recount(self) -> None:
        assert self.spool is not None
        self.spool.ledger.reconcile(self.layout.segment_files())
        self.spool.awaiting_upload = len(self.spool.journal.segments(*AWAITING_UPLOAD))
        self.check_thresholds()

    def check_thresholds(self) -> None:
        """Audit each change of the storage_low / storage_full flags (blocking: journal)."""
        figures = self.threshold_change()
        if figures is not None:
            self.audit_thresholds(figures)

    def threshold_change(self) -> StorageFigures | None:
        """The figures when storage_low or storage_full changed since last asked; no I/O,
        so the device's once-a-second tick can ask on the loop."""
        assert self.spool is not None
        figures = self.spool.ledger.figures()
        if (figures.low, figures.full) == (self._low, self._full):
            return None
        self._low, self._full = figures.low, figures.full
        return figures

    def audit_thresholds(self, figures: StorageFigures) -> None:
        assert self.spool is not None
        self.spool.journal.audit(
            "storage_thresholds",
            low=figures.low,
            full=figures.full,
            minutes_left=round(figures.minutes_left, 1),
        )
        if figures.full or figures.low:
            log.warning(
                "storage %s: %.0f min of footage left",
                "full" if figures.full else "low",
                figures.minutes_left,
            )

    def figures(self) -> StorageFigures | None:
        return None if self.spool is None else self.spool.ledger.figures()

    def awaiting_upload(self) -> int:
        return 0 if self.spool is None else self.spool.awaiting_upload

    def require_spool(self) -> Spool:
        if self.spool is None:
            raise StorageError("storage is not started")
        return self.spool

    async def run(self) -> None:
        return None

    async def stop(self) -> None:
        if self.spool is not None:
            journal = self.spool.journal
            await asyncio.to_thread(journal.audit, "daemon_stop")
            await asyncio.to_thread(journal.close)

    def status(self) -> str:
        if self.spool is None:
            return "storage: not started"
        f = self.spool.ledger.figures()
        flags = " [FULL]" if f.full else " [LOW]" if f.low else ""
        return (
            f"storage: {f.used / 2**20:.0f} of {f.limit / 2**20:.0f} MiB used, "
            f"{f.minutes_left:.0f} min left, {self.awaiting_upload()} segment(s) awaiting "
            f"upload{flags}"
        )
