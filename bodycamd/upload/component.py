"""The uploader as a daemon component: runs an UploadWorker while the camera is docked and
not recording, cancels it the moment either changes.

Why cancel rather than finish the chunk: undocking means the network is going away, and
recording has the flash and the CPU first (DESIGN §7); the journal and the server's HEAD
know where to resume, so a cancelled PATCH costs at most one chunk sent again. The gate is
watched through `Signal` listeners, which run synchronously inside `Signal.set`, so the
session task is cancelled in the same loop iteration as the undock (well within 1 s); the
dock itself is already debounced (settled) by the DockComponent.

Nothing here outlives the component: the session task and the progress flusher are created
in `run` and cancelled before it returns; the httpx client is closed in `stop`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..errors import ConfigError
from ..signals import Signal
from ..storage.uploads import UploadQueue
from .pacing import Backoff, Clock, Sleep, TokenBucket
from .progress import ProgressTracker, UploadProgress
from .settings import UploadSettings, upload_settings

if TYPE_CHECKING:
    import httpx
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from .worker import UploadWorker

log = logging.getLogger(__name__)
CLOCK_TOLERANCE = 2.0  # seconds between the server's Date and ours before clock_unsynced


class UploadComponent:
    name = "upload"

    def __init__(
        self,
        settings: UploadSettings | None,
        queue: Callable[[], UploadQueue],
        docked: Signal,
        recording: Signal,
        *,
        on_progress: Callable[[UploadProgress], None] | None = None,
        disabled_reason: str = "no upload.endpoint configured",
        clock: Clock = time.monotonic,
        now_ns: Callable[[], int] = time.time_ns,
        wall: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        idle_poll: float = 5.0,
    ) -> None:
        """`queue` returns storage's UploadQueue once storage has started; `clock` (seconds,
        monotonic) paces, `now_ns` (wall) dates the journal's retries, `wall` is compared
        with the server's Date, `sleep` waits (all injected for virtual time in tests)."""
        self._settings = settings
        self._queue = queue
        self._docked = docked
        self._recording = recording
        self._clock, self._now_ns, self._wall, self._sleep = clock, now_ns, wall, sleep
        self._rng = rng
        self._http: httpx.AsyncClient | None = None
        self._idle_poll = idle_poll
        self._disabled = disabled_reason if settings is None else None
        self.progress = ProgressTracker(clock, on_progress)
        self.clock_unsynced = Signal("clock_unsynced")  # for the device's health set
        self._session: asyncio.Task[None] | None = None
        self.sent_bytes = 0  # handed to the transport since start (acknowledged or not)
        self._wake = asyncio.Event()
        self._stopping = False
        docked.listen(self._gate_changed)
        recording.listen(self._gate_changed)

    # -- component lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        if self._settings is None:
            self.progress.update(state="disabled", reason=self._disabled)
            return
        from .transport import make_http_client  # httpx loads only where uploading is configured

        try:
            self._http = make_http_client(await asyncio.to_thread(self._ssl_context))
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._disabled = f"TLS files unusable: {exc}"
            log.error("upload disabled: %s", self._disabled)
            self.progress.update(state="disabled", reason=self._disabled)
            return
        self._show_gate()

    def _ssl_context(self) -> ssl.SSLContext | bool:
        from .tus import make_ssl_context

        settings = self._settings
        assert settings is not None
        if not settings.tls or settings.ca_file is None:
            return False  # development http://: check-config refused it otherwise
        return make_ssl_context(settings.ca_file, settings.client_cert, settings.client_key)

    async def run(self) -> None:
        if self._disabled is not None:
            return
        flusher = asyncio.create_task(self.progress.flush_loop(self._sleep), name="upload-progress")
        backoff = Backoff(1.0, 60.0, self._rng)
        try:
            while not self._stopping:
                if not self._gate_open():
                    self._show_gate()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                self._session = asyncio.create_task(self._worker().run(), name="upload-session")
                await asyncio.wait({self._session})
                exc = None if self._session.cancelled() else self._session.exception()
                if exc is not None:
                    if not isinstance(exc, Exception):
                        raise exc  # KeyboardInterrupt and kin end the daemon, not a session
                    reason = f"upload stopped: {exc}"
                    log.error("%s", reason, exc_info=exc)
                    self.progress.update(
                        state="backoff", reason=reason, last_error=reason, failing=True
                    )
                    await self._sleep(backoff.next_delay())
                self._session = None
        finally:
            if self._session is not None:
                self._session.cancel()
                await asyncio.wait({self._session})
            flusher.cancel()
            await asyncio.wait({flusher})

    async def stop(self) -> None:
        self._stopping = True
        self._cancel_session()
        self._wake.set()
        if self._http is not None:
            await self._http.aclose()

    def status(self) -> str:
        value = self.progress.value
        line = f"upload: {value.state}"
        if value.state == "uploading" and value.fraction is not None:
            line += f" {value.fraction:.0%}"
        elif value.reason:
            line += f" ({value.reason})"
        return line

    @property
    def session(self) -> asyncio.Task[None] | None:
        """The running dock session, if any (tests watch its cancellation)."""
        return self._session

    def _count_sent(self, amount: int) -> None:
        self.sent_bytes += amount

    def progress_json(self) -> dict[str, Any]:
        return self.progress.value.to_json()

    # -- the gate: docked and not recording -------------------------------------------------

    def _gate_open(self) -> bool:
        return self._docked.value and not self._recording.value and not self._stopping

    def _gate_changed(self, _value: bool) -> None:
        if not self._gate_open():
            self._cancel_session()
            self._show_gate()
        self._wake.set()

    def _cancel_session(self) -> None:
        if self._session is not None and not self._session.done():
            self._session.cancel()

    def _show_gate(self) -> None:
        if self._disabled is not None:
            return
        if self._recording.value:
            self.progress.update(state="paused", reason="recording", current=None)
        elif not self._docked.value:
            self.progress.update(state="idle", reason="not docked", current=None)

    def _worker(self) -> UploadWorker:
        settings = self._settings
        assert settings is not None and self._http is not None
        from .tus import TusClient
        from .worker import UploadWorker, WorkerTiming

        bucket = TokenBucket(settings.max_rate, self._clock, self._sleep)
        tus = TusClient(
            self._http,
            settings.endpoint,
            receipts_url=settings.receipts_url,
            chunk_size=settings.chunk_size,
            pace=bucket.take if settings.max_rate > 0 else None,
            on_sent=self._count_sent,
        )
        return UploadWorker(
            self._queue(),
            tus,
            settings.receipt_keys,
            self.progress,
            timing=WorkerTiming(settings.retry_min, settings.retry_max, self._idle_poll),
            clock=self._clock,
            now_ns=self._now_ns,
            wall=self._wall,
            sleep=self._sleep,
            on_clock_offset=self._clock_offset,
            rng=self._rng,
            client_cert=settings.client_cert is not None,
        )

    def _clock_offset(self, offset: float) -> None:
        unsynced = abs(offset) > CLOCK_TOLERANCE
        if unsynced:
            log.warning("device clock is %.1f s off the ingest's", -offset)
        self.clock_unsynced.set(unsynced)


def trusted_receipt_keys(config: Config) -> dict[str, Ed25519PublicKey]:
    """The receipt keys of a valid `[upload]` section (start-up trusts a receipt left in the
    journal by a crash only if it verifies with them); none without one."""
    try:
        settings = upload_settings(config)
    except ConfigError:
        return {}  # build_uploader logs why; no receipt is trusted meanwhile
    return dict(settings.receipt_keys) if settings else {}


def build_uploader(
    config: Config,
    queue: UploadQueue,
    docked: Signal,
    recording: Signal,
    on_progress: Callable[[UploadProgress], None],
) -> UploadComponent:
    """The daemon's uploader. A broken `[upload]` section disables uploading (status and
    the log say why; `bodycamd check-config` refuses it) but never stops the camera from
    recording: footage simply stays on flash."""
    reason = "no upload.endpoint configured"
    try:
        settings = upload_settings(config)
    except ConfigError as exc:
        settings, reason = None, f"bad [upload] config: {exc}"
        log.error("upload disabled: %s", exc)
    return UploadComponent(
        settings,
        lambda: queue,
        docked,
        recording,
        on_progress=on_progress,
        disabled_reason=reason,
    )
