"""What the request handlers share: the store, the audit log, the completion step, the clock.

One `IngestContext` per running server, reached through `request.app[CONTEXT]` (aiohttp's
typed application key), so nothing is global and tests can run several servers at once, each
with its own injected clock. `request[DEVICE]` is the registry entry of the device that the
TLS layer verified for this request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from .audit import AuditLog
from .config import IngestConfig
from .errors import UploadNotFound
from .store import DeviceRecord, IngestStore, UploadInfo
from .verify import Completion


@dataclass(frozen=True)
class IngestContext:
    config: IngestConfig
    store: IngestStore
    audit: AuditLog
    completion: Completion
    clock: Callable[[], float]
    # one creation at a time per device on this node, so the in-flight limit is checked and
    # applied as one step (across nodes it may be passed by at most one upload per node)
    creating: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def expire(self, info: UploadInfo) -> None:
        """Remove an upload past its Upload-Expires (tus expiration); idempotent."""
        try:
            await self.store.terminate(info.device_id, info.upload_id)
        except UploadNotFound:
            return
        await self.audit.record(
            "upload.expired", device=info.device_id, upload=info.upload_id, offset=info.offset
        )


CONTEXT = web.AppKey("bodycamd_ingest_context", IngestContext)
DEVICE = web.RequestKey("bodycamd_ingest_device", DeviceRecord)
