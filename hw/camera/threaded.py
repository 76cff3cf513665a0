"""What the synthetic and replay backends share: one worker thread that produces packets,
stops when asked, and reports an error through the fault sink instead of dying silently."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bodycamd.camera import FaultSink, StreamParams

log = logging.getLogger(__name__)


class WorkerThread:
    def __init__(
        self, name: str, work: Callable[[threading.Event], None], fault: FaultSink
    ) -> None:
        self._name = name
        self._work = work
        self._fault = fault
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.stopping.clear()
        self.thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None

    def _run(self) -> None:
        try:
            self._work(self.stopping)
        except Exception as exc:  # reported, never raised into nowhere
            log.debug("%s failed", self._name, exc_info=True)
            self._fault(exc)


class ThreadedCamera:
    """Base of the backends that produce packets on a thread of their own."""

    name = "threaded"
    _params: StreamParams

    def __init__(self, thread_name: str, fault: FaultSink) -> None:
        self._worker = WorkerThread(thread_name, self._produce, fault)

    @property
    def params(self) -> StreamParams:
        return self._params

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()

    @property
    def _thread(self) -> threading.Thread | None:
        """The worker thread (tests join it to wait for a finite backend to finish)."""
        return self._worker.thread

    def _produce(self, stopping: threading.Event) -> None:
        raise NotImplementedError
