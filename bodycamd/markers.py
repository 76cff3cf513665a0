"""Bounds on marker notes, so the audit trail cannot fill the flash.

A marker is an audit event an officer (or a script on the control socket) can make at will.
Unbounded, a loop of 64 KiB notes filled a 20 MiB card in about a second and the events that
say why recording stopped were lost. So a note is at most `MAX_NOTE_BYTES` of UTF-8, markers
come at most `BURST` at once and then one every `REFILL_SECONDS` (a token bucket), and none
is taken while storage is full: what is left belongs to the events that must be written.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .errors import Refused

MAX_NOTE_BYTES = 1024
BURST = 10
REFILL_SECONDS = 6.0  # ten a minute, sustained


class MarkerLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens = float(BURST)
        self._at = clock()

    def admit(self, note: str, *, storage_full: bool) -> None:
        """Take one marker or raise Refused saying which bound it hit."""
        size = len(note.encode("utf-8"))
        if size > MAX_NOTE_BYTES:
            raise Refused(
                "note_too_long", f"marker note is {size} bytes of UTF-8; at most {MAX_NOTE_BYTES}"
            )
        if storage_full:
            raise Refused(
                "storage_full",
                "storage is full: markers are refused so the audit trail keeps room to record "
                "why the recording stops",
            )
        now = self._clock()
        self._tokens = min(BURST, self._tokens + (now - self._at) / REFILL_SECONDS)
        self._at = now
        if self._tokens < 1:
            wait = (1 - self._tokens) * REFILL_SECONDS
            raise Refused(
                "too_many_markers",
                f"at most {BURST} markers at once, then one every {REFILL_SECONDS:g} s; "
                f"next in {wait:.0f} s",
            )
        self._tokens -= 1
