"""The hash chain across the segments of one recording.

Each segment's signed header carries the SHA-256 of the whole previous segment file, and the
last segment's footer carries the end-of-recording flag, so a deleted, reordered, substituted
or missing-last segment shows up here even when every file verifies on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import ChainError
from .reader import Verdict


@dataclass(frozen=True)
class ChainLink:
    name: str  # how to name the file in messages
    verdict: Verdict


@dataclass(frozen=True)
class ChainReport:
    recording_id: uuid.UUID
    segments: int
    ending: Literal["end-of-recording", "torn"]


def check_chain(links: Sequence[ChainLink]) -> ChainReport:
    """Check segments given in recording order; raise ChainError naming the first problem.

    A recording whose last segment was sealed torn (power cut) is accepted with ending
    "torn": the device could not write an end-of-recording flag, and the segments before it
    still prove nothing is missing up to there.
    """
    if not links:
        raise ChainError("no segments given")
    recording = links[0].verdict.header.recording_id
    for position, link in enumerate(links):
        header = link.verdict.header
        if header.recording_id != recording:
            raise ChainError(
                f"{link.name}: belongs to recording {header.recording_id}, not {recording} "
                "(substituted or mixed up)"
            )
        if header.segment_index != position:
            comes_later = any(
                other.verdict.header.segment_index == position for other in links[position + 1 :]
            )
            if header.segment_index > position and not comes_later:
                raise ChainError(
                    f"segment {position} of recording {recording} is missing "
                    f"({link.name} is segment {header.segment_index})"
                )
            raise ChainError(
                f"{link.name}: segment {header.segment_index} found at position {position} "
                "(reordered or duplicated)"
            )
        if position == 0:
            if any(header.prev_digest):
                raise ChainError(f"{link.name}: first segment names a previous segment")
        elif header.prev_digest != links[position - 1].verdict.digest:
            raise ChainError(
                f"{link.name}: does not follow {links[position - 1].name} (previous-segment "
                "digest differs: substituted or altered)"
            )
        is_last = position == len(links) - 1
        if link.verdict.end_of_recording and not is_last:
            raise ChainError(f"{link.name}: marked end of recording but more segments follow")
        if not is_last and link.verdict.status != "complete":
            raise ChainError(f"{link.name}: torn segment in the middle of a recording")
    last = links[-1].verdict
    if last.end_of_recording:
        return ChainReport(recording, len(links), "end-of-recording")
    if last.sealed_torn:
        return ChainReport(recording, len(links), "torn")
    raise ChainError(
        f"recording {recording} ends without its last segment ({links[-1].name} is not "
        "marked end of recording)"
    )
