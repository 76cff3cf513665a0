"""The hash chain across the segments of one recording (docs/segment-format.md §8).

Each segment's signed header carries the SHA-256 of the whole previous segment file, and the
last segment's footer carries the end-of-recording flag, so a deleted, substituted or
missing-last segment shows up here even when every file verifies on its own.

Segments are put in order by the index their signed headers give, never by file name, and
every fault is named by kind, so a court report can tell the two kinds apart:

- *explained* faults are ones the device itself signed a statement about: the recording was
  `interrupted` by a power loss (its last segment was sealed torn by recovery, or is the empty
  placeholder recovery writes when the power went at a segment roll), it `ended-early`
  because the next segment could not be opened (an I/O error or no room: the device's
  journal recorded the failed open, and recovery sealed that segment empty with the
  open-failed flag), or a segment in the middle is torn (`torn-middle`: a write or fsync
  failed and the recording carried on in a new segment);
- *unexplained* faults are everything else: a `missing` segment, a `truncated` file (no
  footer: cut short after the device let go of it), a `duplicated` file, a `substituted`
  segment (the chain's digest does not match), or one signed by `another-device` than
  segment 0.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..errors import ChainError
from .keys import fingerprint
from .reader import Verdict

FaultKind = Literal[
    "interrupted",
    "ended-early",
    "torn-middle",
    "missing",
    "truncated",
    "duplicated",
    "substituted",
    "another-device",
]
EXPLAINED: frozenset[str] = frozenset({"interrupted", "ended-early", "torn-middle"})
# what an operator may accept by name to decrypt anyway; a segment of another device or one
# that breaks the hash chain is never footage of this recording, so it cannot be accepted
ACCEPTABLE: frozenset[str] = frozenset(
    {"interrupted", "ended-early", "torn-middle", "missing", "truncated", "duplicated"}
)
Ending = Literal[
    "end-of-recording",
    "interrupted (power loss)",
    "ended early (a segment could not be opened)",
    "incomplete",
]


@dataclass(frozen=True)
class ChainLink:
    name: str  # how to name the file in messages
    verdict: Verdict


@dataclass(frozen=True)
class ChainFault:
    kind: FaultKind
    message: str

    @property
    def explained(self) -> bool:
        return self.kind in EXPLAINED


@dataclass(frozen=True)
class ChainReport:
    recording_id: uuid.UUID
    links: tuple[ChainLink, ...]  # in index order, duplicates left out
    ending: Ending
    device_key: bytes  # the key that signed segment 0 (or the first segment given)
    faults: tuple[ChainFault, ...] = field(default=())

    @property
    def segments(self) -> int:
        return len(self.links)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.device_key)

    @property
    def unexplained(self) -> tuple[ChainFault, ...]:
        return tuple(f for f in self.faults if not f.explained)

    def refused(self, accepted: Collection[str]) -> tuple[ChainFault, ...]:
        """The faults that stop a decrypt when the operator accepted the kinds given."""
        return tuple(f for f in self.faults if f.kind not in accepted or f.kind not in ACCEPTABLE)

    def summary(self) -> str:
        kinds = sorted({f.kind for f in self.faults})
        state = "chain OK" if not self.faults else f"chain faults: {', '.join(kinds)}"
        return (
            f"recording {self.recording_id}: {state}; {self.segments} segment(s), ends "
            f"{self.ending}; signed by device key {self.fingerprint}"
        )


def group_by_recording(links: Sequence[ChainLink]) -> dict[uuid.UUID, list[ChainLink]]:
    """Split files of several recordings apart; order within each is left to assess_chain."""
    groups: dict[uuid.UUID, list[ChainLink]] = {}
    for link in links:
        groups.setdefault(link.verdict.header.recording_id, []).append(link)
    return groups


def assess_chain(links: Sequence[ChainLink]) -> ChainReport:
    """Order the segments of one recording by index and name every fault of the chain."""
    if not links:
        raise ChainError("no segments given")
    recording = links[0].verdict.header.recording_id
    faults: list[ChainFault] = []
    ordered: list[ChainLink] = []
    for link in sorted(links, key=lambda item: item.verdict.header.segment_index):
        header = link.verdict.header
        if header.recording_id != recording:
            raise ChainError(f"{link.name}: belongs to recording {header.recording_id}")
        if ordered and ordered[-1].verdict.header.segment_index == header.segment_index:
            same = ordered[-1].verdict.digest == link.verdict.digest
            faults.append(
                ChainFault(
                    "duplicated" if same else "substituted",
                    f"{link.name}: segment {header.segment_index} given twice"
                    + (" (identical copy, ignored)" if same else " with different contents"),
                )
            )
            continue
        ordered.append(link)
    device_key = ordered[0].verdict.header.device_key
    expected = 0
    for position, link in enumerate(ordered):
        header = link.verdict.header
        index, is_last = header.segment_index, position == len(ordered) - 1
        if header.device_key != device_key:
            faults.append(
                ChainFault(
                    "another-device",
                    f"{link.name}: signed by device key {fingerprint(header.device_key)}, "
                    f"not by {fingerprint(device_key)} like segment "
                    f"{ordered[0].verdict.header.segment_index}",
                )
            )
        if index != expected:
            gap = f"{expected}" if index == expected + 1 else f"{expected} to {index - 1}"
            faults.append(
                ChainFault("missing", f"segment {gap} of recording {recording} is missing")
            )
        elif index == 0 and any(header.prev_digest):
            faults.append(
                ChainFault("substituted", f"{link.name}: first segment names a previous one")
            )
        elif index > 0 and header.prev_digest != ordered[position - 1].verdict.digest:
            faults.append(
                ChainFault(
                    "substituted",
                    f"{link.name}: does not follow {ordered[position - 1].name} "
                    "(previous-segment digest differs: substituted or altered)",
                )
            )
        expected = index + 1
        faults.extend(_segment_faults(link, is_last=is_last))
    last = ordered[-1].verdict
    ending: Ending = "incomplete"
    if last.end_of_recording:
        ending = "end-of-recording"
    elif last.open_failed:
        ending = "ended early (a segment could not be opened)"
        faults.append(
            ChainFault(
                "ended-early",
                f"recording {recording} ended early: segment {last.header.segment_index} could "
                "not be opened (I/O error or no room, recorded in the device's audit trail as "
                "segment_open_failed); the device sealed it empty on recovery",
            )
        )
    elif last.sealed_torn:
        ending = "interrupted (power loss)"
        where = (
            "at a segment roll, before the segment began"
            if last.placeholder
            else "inside the last segment"
        )
        faults.append(
            ChainFault(
                "interrupted",
                f"recording {recording} was interrupted by a power loss {where}; the device "
                f"sealed segment {last.header.segment_index} as torn on recovery",
            )
        )
    elif last.status == "complete":
        faults.append(
            ChainFault(
                "missing",
                f"recording {recording} ends without its last segment ({ordered[-1].name} is "
                f"not marked end of recording; segment {last.header.segment_index + 1} or "
                "later is missing)",
            )
        )
    return ChainReport(recording, tuple(ordered), ending, device_key, tuple(faults))


def _segment_faults(link: ChainLink, *, is_last: bool) -> list[ChainFault]:
    verdict = link.verdict
    faults: list[ChainFault] = []
    if verdict.end_of_recording and not is_last:
        faults.append(
            ChainFault(
                "substituted", f"{link.name}: marked end of recording but more segments follow"
            )
        )
    if verdict.status == "torn" and not verdict.sealed_torn:
        faults.append(
            ChainFault(
                "truncated",
                f"{link.name}: {verdict.tail} (not sealed by the device: cut short or never "
                "recovered)",
            )
        )
    elif verdict.sealed_torn and not is_last:
        faults.append(
            ChainFault(
                "torn-middle",
                f"{link.name}: sealed torn by the device in the middle of the recording (a "
                "write failed; the recording went on in the next segment)",
            )
        )
    return faults


def check_chain(links: Sequence[ChainLink], accept: Collection[str] = EXPLAINED) -> ChainReport:
    """assess_chain, raising ChainError naming the first fault not accepted (by default,
    faults the device signed for are accepted: a power loss is reported, not a failure)."""
    report = assess_chain(links)
    refused = report.refused(accept)
    if refused:
        raise ChainError(refused[0].message)
    return report
