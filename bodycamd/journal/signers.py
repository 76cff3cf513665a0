"""Who signed the audit trail, and which of the keys a verifier trusts vouch for it.

A device key can be replaced (`bodycamd keys rotate`), so one trail may be signed by several
keys in turn. The trail names them itself: each `device_key_rotated` event carries `old_key`
and `new_key` (fingerprints; `old_key` null when the old key was lost), `new_public` and,
since this version, `old_public` (base64 of the raw Ed25519 keys; `old_public` null when
lost). An older rotation event has no `old_public`: its key is found by fingerprint among the
keys known (the ones given, the device's current key and its retired copies).

Who signs what, as the trail says:
- events before the first rotation: that rotation's old key (with no rotation at all, the
  trusted key that signs the newest event: the *trust anchor*); when the first rotation
  followed a lost key, whichever known key signs the newest of them (else: not known here),
  never a key that a rotation brings in (it did not exist then); if a key given could have
  signed them and none does, that is a problem naming them;
- the rotation event itself: the key it retires, or the new key when the old one was lost;
- events after rotation i: its new key.
Every event's signature is checked against the key in force for it; a mismatch names the
event. A rotation whose old key is not the key in force is named too.

Trust (what makes the trail more than self-consistent): the verifier is given trusted keys.
An event signed by a trusted key vouches for every event before it (each hash covers the one
before). A rotation signed by the key in force, itself trusted, hands trust forward to its
new key. A rotation after a LOST key is signed only by the new key, which nothing vouches
for: the events after it count only if a later event is signed by a trusted key (give the
new key); otherwise they are reported as not vouched for, naming the rotation. A trail that
no trusted key signs at all fails.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from ..evidence.keys import fingerprint

ROTATED = "device_key_rotated"
LABEL_AUDIT = b"bodycamd/v1 audit\0"


@dataclass(frozen=True)
class Signed:
    """What the signature check needs of one event."""

    seq: int
    kind: str
    fields: dict[str, Any]
    hash: bytes
    signature: bytes


@dataclass
class Span:
    """Consecutive events that the trail says one key signed."""

    key: bytes | None  # raw Ed25519 public key; None: not known here
    name: str | None  # its fingerprint; None: a lost key the trail cannot name
    first: int  # seq of the first event it signs (0 for an empty span)
    last: int
    trust: str | None = None  # "trusted" (given), or "trust handed forward by event N"
    unchecked: bool = False  # key not known here: signatures could not be checked

    def describe(self) -> str:
        who = f"key {self.name}" if self.name else "a key the trail does not name (lost)"
        events = (
            f"event {self.first}"
            if self.first == self.last
            else f"events {self.first} to {self.last}"
        )
        notes = [self.trust or "not trusted"]
        if self.unchecked:
            notes.append("not known here: its signatures were not checked")
        return f"{who}: signed {events} ({'; '.join(notes)})"


@dataclass
class Signers:
    spans: list[Span] = field(default_factory=list)
    anchor: str | None = None  # fingerprint of the given key the verdict rests on
    vouched: int = 0  # seq of the newest event a trusted key vouches for
    problems: list[str] = field(default_factory=list)


def _signs(key: bytes | None, event: Signed) -> bool:
    if key is None:
        return False
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(key).verify(
            event.signature, LABEL_AUDIT + event.hash
        )
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class _Rotation:
    position: int
    old: bytes | None
    old_name: str | None  # None: the old key was lost
    new: bytes | None
    new_name: str | None


def _decode(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        return None
    return raw if len(raw) == 32 else None


def _rotation(
    position: int, event: Signed, known: dict[str, bytes], problems: list[str]
) -> _Rotation:
    where = f"event {event.seq} ({event.kind})"
    keys: list[tuple[bytes | None, str | None]] = []
    for role in ("old", "new"):
        name, public = event.fields.get(f"{role}_key"), event.fields.get(f"{role}_public")
        raw = _decode(public)
        if not isinstance(name, str) and not (role == "old" and name is None):
            problems.append(f"{where}: {role}_key is not a fingerprint")
            name = None
        if public is not None and raw is None:
            problems.append(f"{where}: {role}_public is not a base64 Ed25519 public key")
        elif raw is not None and fingerprint(raw) != name:
            problems.append(f"{where}: {role}_public does not match {role}_key {name}")
            raw = None
        if raw is None and name is not None:
            raw = known.get(name)
        keys.append((raw, name))
    (old, old_name), (new, new_name) = keys
    return _Rotation(position, old, old_name, new, new_name)


def _first_signer(events: Sequence[Signed], candidates: Sequence[bytes]) -> bytes | None:
    """The candidate that signs the newest of `events` it signs any of (newest first: that
    one vouches for the most)."""
    for event in reversed(events):
        for key in candidates:
            if _signs(key, event):
                return key
    return None


def _before_rotations(
    events: Sequence[Signed],
    rotations: Sequence[_Rotation],
    trusted: Sequence[bytes],
    candidates: Sequence[bytes],
    problems: list[str],
) -> bytes | None:
    """The key of the events before the first rotation, when the trail does not name it (no
    rotation, or the first one followed a lost key): the candidate that signs the newest of
    them. A key some rotation brings in did not exist before it, so it is never a candidate:
    else whoever holds the new key after a lost-key rotation could re-sign the events before
    it (recomputing every hash) and have them pass as signed by the key of their time. When
    the verifier was given a key that could have signed them and none does, that is named."""
    brought_in = {r.new_name for r in rotations}
    before = events[: rotations[0].position] if rotations else events
    key = _first_signer(before, [k for k in candidates if fingerprint(k) not in brought_in])
    if key is not None or not rotations or not before:
        return key
    if not any(fingerprint(k) not in brought_in for k in trusted):
        return None  # only later keys given: not checked, and the output says so
    first, last = before[0].seq, before[-1].seq
    span = f"event {first}" if first == last else f"events {first} to {last}"
    later = _first_signer(before, candidates)
    by = (
        f", but by key {fingerprint(later)}, which the rotation at event "
        f"{_bringer(events, rotations, fingerprint(later))} brought in: it cannot vouch for "
        "events before it"
        if later is not None
        else f" (they precede event {events[rotations[0].position].seq}, a rotation after a "
        "lost key)"
    )
    problems.append(f"{span}: signed by none of the keys given{by}")
    return None


def _bringer(events: Sequence[Signed], rotations: Sequence[_Rotation], name: str) -> int:
    return next(events[r.position].seq for r in rotations if r.new_name == name)


def assess_signers(
    events: Sequence[Signed], trusted: Sequence[bytes], known: Sequence[bytes] = ()
) -> Signers:
    """The key sequence of the trail, each event checked against its key, and trust."""
    result = Signers()
    if not events:
        return result
    problems = result.problems
    by_name = {fingerprint(key): key for key in (*known, *trusted)}
    rotations = [
        _rotation(i, event, by_name, problems)
        for i, event in enumerate(events)
        if event.kind == ROTATED
    ]
    candidates = list(dict.fromkeys((*trusted, *known)))
    # the key of each span, and where each span starts (position in `events`)
    first_key: bytes | None
    first_name: str | None
    if rotations and rotations[0].old_name is not None:
        first_key, first_name = rotations[0].old, rotations[0].old_name
    else:
        first_key = _before_rotations(events, rotations, trusted, candidates, problems)
        first_name = fingerprint(first_key) if first_key is not None else None
    keys = [(first_key, first_name)] + [(r.new, r.new_name) for r in rotations]
    starts = [0] + [r.position + (r.old_name is not None) for r in rotations]
    ends = [*starts[1:], len(events)]
    for index, later in enumerate(rotations[1:], start=1):
        in_force = keys[index][1]
        if later.old_name is not None and later.old_name != in_force:
            problems.append(
                f"event {events[later.position].seq} ({ROTATED}): retires key {later.old_name}, "
                "but the key "
                f"in force is {in_force or 'not known'}"
            )
    given = set(trusted)
    last_trusted: int | None = None
    anchors: list[str | None] = []
    for index, ((key, name), start, end) in enumerate(zip(keys, starts, ends, strict=True)):
        span = Span(
            key, name, *((events[start].seq, events[end - 1].seq) if start < end else (0, 0))
        )
        rotation = rotations[index - 1] if index else None
        if key is not None and key in given:
            span.trust, anchor = "trusted", name
        elif (
            rotation is not None
            and rotation.old_name is not None
            and anchors[-1] is not None
            and rotation.old_name == keys[index - 1][1]
            and _signs(keys[index - 1][0], events[rotation.position])
        ):
            seq = events[rotation.position].seq
            span.trust, anchor = f"trust handed forward by event {seq}", anchors[-1]
        else:
            anchor = None
        anchors.append(anchor)
        span.unchecked = key is None and start < end
        for position in range(start, end):
            event = events[position]
            if key is None:
                continue
            if _signs(key, event):
                if anchor is not None:
                    last_trusted = position
                    result.anchor = anchor
                continue
            other = next((k for k in candidates if k != key and _signs(k, event)), None)
            if other is not None:
                why = f": signed by {fingerprint(other)}, not by the key in force {name}"
            else:
                why = f" (the key in force is {name})" if len(keys) > 1 else ""
            problems.append(f"event {event.seq} ({event.kind}): bad device signature{why}")
        if start < end:
            result.spans.append(span)
    _trust_verdict(events, rotations, last_trusted, result)
    return result


def _trust_verdict(
    events: Sequence[Signed],
    rotations: Sequence[_Rotation],
    last_trusted: int | None,
    result: Signers,
) -> None:
    if last_trusted is None:
        names = ", ".join(s.name or "a lost key" for s in result.spans)
        result.problems.append(
            f"no key given signs any event of this trail (its signers: {names}); give the "
            "device's key with --device-key"
        )
        return
    result.vouched = events[last_trusted].seq
    if last_trusted == len(events) - 1:
        return
    first, last = events[last_trusted + 1].seq, events[-1].seq
    lost = next((r for r in rotations if r.old_name is None and r.position > last_trusted), None)
    span = f"event {first}" if first == last else f"events {first} to {last}"
    if lost is not None:
        result.problems.append(
            f"{span}: not vouched for by any key given: the old key was lost at event "
            f"{events[lost.position].seq}; give the new key with --device-key"
        )
    else:
        result.problems.append(
            f"{span}: not vouched for by any key given (no later event is signed by a trusted key)"
        )
