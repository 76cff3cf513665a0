"""The storage component of the daemon: opens the layout, journal, quota ledger and spool,
reconciles flash with the journal, and serves them through the `Storage` façade.

The façade object exists from construction (so app.py can hand it to the recorder, device,
control server and uploader); it is attached to the opened spool in `start` and closed in
`stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..config import StorageConfig, parse_size
from ..errors import JournalCorrupt, StorageError
from ..journal import Journal
from .facade import Storage
from .layout import StateLayout
from .quota import QuotaLedger
from .reconcile import TrustedReceipts, reconcile
from .spool import Spool

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from ..identity import IdentityComponent

log = logging.getLogger(__name__)
BALLAST = 4 * 2**20  # enough for a footer and many journal pages
SPACE_REFRESH_SECONDS = 5.0  # free space goes stale while idle: re-read this often


class StorageComponent:
    name = "storage"

    def __init__(
        self,
        layout: StateLayout,
        config: StorageConfig,
        identity: IdentityComponent,
        device_name: str,
        receipt_keys: Mapping[str, Ed25519PublicKey] | None = None,
    ) -> None:
        self._stopping = asyncio.Event()
        self.layout = layout
        self._config = config
        self._identity = identity
        self._device_name = device_name
        # to trust a receipt left in the journal by a crash, as the uploader trusted it
        self._receipts = TrustedReceipts(receipt_keys or {}, device_name)
        self.storage = Storage(device_name)

    async def start(self) -> None:
        spool = await asyncio.to_thread(self._open)
        report = await asyncio.to_thread(
            reconcile, spool, self._identity.signing_key(), self._receipts
        )
        log.info("storage reconciled: %s", report.summary())
        await asyncio.to_thread(spool.ledger.reconcile, self.layout.segment_files())
        self.storage.attach(spool)
        await self.storage.check_thresholds()

    def _open(self) -> Spool:
        self.layout.prepare()
        key = self._identity.signing_key()
        if self._identity.evidence_key is None:
            raise StorageError("keys are not loaded")
        journal = self._open_journal(key)
        journal.audit("daemon_start", device=self._device_name)
        if journal.migrated_from not in (0, journal.schema_version):
            journal.audit(
                "journal_migrated", version=journal.schema_version, was=journal.migrated_from
            )
        config = self._config
        ledger = QuotaLedger(
            self.layout.root,
            lambda total: parse_size(config.quota, total),
            parse_size(config.reserve, 0),
            low_minutes=config.low_minutes,
            min_free_minutes=config.min_free_minutes,
            bitrate=config.assumed_bitrate,
        )
        journal_files = [
            self.layout.journal.with_name(self.layout.journal.name + s)
            for s in ("", "-wal", "-shm")
        ]
        ledger.count_also(journal_files)
        spool = Spool(
            self.layout, journal, ledger, key, self._identity.evidence_key, self._device_name
        )
        # held back out of the reserve, released to seal when the card fills behind our back
        spool.ensure_ballast(self.ballast_bytes)
        return spool

    def _open_journal(self, key: Ed25519PrivateKey) -> Journal:
        """A corrupt journal must not stop the camera from recording: it is moved aside
        (kept, for the back end to examine), a new one is started, and the start-up
        reconciliation adopts every segment on flash into it. The old audit trail is in the
        moved file; the new trail starts by saying so. A journal from a newer bodycamd is
        not corrupt: it is refused (JournalTooNew) and left as it is."""
        path = self.layout.journal
        seal_to = self._identity.evidence_key
        try:
            return Journal(path, key, seal_to=seal_to)
        except JournalCorrupt as exc:
            stamp = time.strftime("%Y%m%dT%H%M%S")
            kept = path.with_name(f"{path.name}.corrupt-{stamp}")
            for suffix in ("", "-wal", "-shm"):
                old = path.with_name(path.name + suffix)
                if old.exists():
                    old.rename(kept.with_name(kept.name + suffix))
            log.error("%s; moved to %s and starting a new journal", exc, kept)
            journal = Journal(path, key, seal_to=seal_to)
            journal.audit("journal_replaced", reason=str(exc), kept=kept.name)
            return journal

    @property
    def ballast_bytes(self) -> int:
        return min(BALLAST, parse_size(self._config.reserve, 0))

    async def run(self) -> None:
        """Re-read free space on a timer, so status and refusals never rest on a reading
        from the last recording (the ballast comes back with the space)."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), SPACE_REFRESH_SECONDS)
                return
            await self.storage.refresh_space(self.ballast_bytes)

    async def stop(self) -> None:
        self._stopping.set()
        await self.storage.close()

    def status(self) -> str:
        return self.storage.status()
