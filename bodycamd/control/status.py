"""What `status` and `storage` answer: one figure per fact, each labelled, every health flag
with its reason.

A status screen that disagrees with itself is worse than none: a field tester who reads
"recording 20 s" and "RECORDING 21 s", or a quota larger than the flash, stops trusting the
device. So the recording duration comes from the device state only (the camera line says
what the camera is, not how long it has recorded); the quota and the room left for footage
are both given and named, with what limits the latter; minutes left say which bitrate they
assume; and each raised health flag carries the reason a person can act on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # bodycamctl imports this module; it needs none of storage at run time
    from ..storage.facade import Figures

# flag -> why it is raised and what to do; the camera fault's own reason is added to it
HEALTH_REASONS = {
    "camera_fault": "the camera failed; it is retried (footage is not being recorded)",
    "storage_full": "no room for another segment: a recording cannot start; dock to upload",
    "storage_low": "fewer minutes of footage fit than storage.low_minutes; dock to upload",
    "battery_low": "the battery is low",
    "upload_error": "the last upload failed; it is retried while docked (see the daemon log)",
    "upload_rejected": (
        "the ingest refused a segment (bodycamctl uploads says why); it stays on flash and is "
        "not sent again until `bodycamctl upload retry PATH`"
    ),
    "journal_error": "the audit trail could not be written; state changes are refused",
    "clock_unsynced": (
        "the kernel says the system clock is not synchronised (adjtimex); segments are "
        "marked as such until timesyncd or chrony synchronises it (`bodycamd doctor`)"
    ),
    "recorder_error": (
        "a recording was stopped by an internal error (audited recorder_error; see the "
        "daemon log); start a new one"
    ),
}
_CAMERA_ACTIVITY = re.compile(r", (RECORDING \d+ s|idle|buffering|recording)$")


def health_reasons(flags: Iterable[str], camera_fault: str | None) -> dict[str, str]:
    reasons = {}
    for flag in sorted(flags):
        reason = HEALTH_REASONS.get(flag, "raised by the daemon (see its log)")
        if flag == "camera_fault" and camera_fault:
            reason = f"{camera_fault}; {reason}"
        reasons[flag] = reason
    return reasons


def camera_description(status_line: str) -> str:
    """The camera as it is (backend, size, rate, or its fault), without the recording's
    duration, which the device state gives once for the whole screen."""
    return _CAMERA_ACTIVITY.sub("", status_line.removeprefix("camera: "))


def storage_result(figures: Figures) -> dict[str, Any]:
    """`available_bytes` is what more footage fits now; `limited_by` says whether the quota
    or the flash itself (filesystem free space less the reserve) sets it."""
    return {
        "used_bytes": figures.used,
        "quota_bytes": figures.quota,
        "available_bytes": figures.free,
        "limited_by": "quota" if figures.free >= figures.quota - figures.used else "flash",
        "minutes_left": round(figures.minutes_left, 1),
        "bitrate_bps": figures.bitrate,
        "bitrate_measured": figures.bitrate_measured,
        "low": figures.low,
        "full": figures.full,
        "awaiting_upload": figures.awaiting_upload,
        "rejected_upload": figures.rejected_upload,
    }


def _mib(value: int) -> str:
    return f"{value / 2**20:,.0f} MiB"


def storage_line(storage: dict[str, Any]) -> str:
    """One line for people, every figure named."""
    basis = "measured" if storage.get("bitrate_measured") else "assumed"
    limited = "the quota" if storage.get("limited_by") == "quota" else "free flash"
    return (
        f"{_mib(storage['used_bytes'])} used of a {_mib(storage['quota_bytes'])} quota; "
        f"{_mib(storage['available_bytes'])} free for footage (limited by {limited}), "
        f"{storage['minutes_left']:,.0f} min at {storage['bitrate_bps'] / 1e6:.2f} Mbit/s "
        f"({basis})" + (" [LOW]" if storage["low"] else "") + (" [FULL]" if storage["full"] else "")
    )
