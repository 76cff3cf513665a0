"""`bodycamd evidence ...`: the operator tool. It runs where the evidence private key is (the
back end), never on a device; the device has no command that exports footage.

- inspect FILE        header and keyless verdict
- verify FILE...      signatures, checkpoints, footers and the chain of each recording
- decrypt --key K FILE... -o OUT   the recovered MPEG-TS; torn segments only with --allow-torn
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from ..errors import EvidenceError
from ..fsutil import fsync_directory
from .chain import ChainLink, check_chain
from .keys import (
    fingerprint,
    kem_by_id,
    load_device_public_key,
    load_evidence_private_key,
)
from .reader import SegmentReader, Verdict, scan_segment


def add_commands(commands: Any) -> None:
    evidence = commands.add_parser("evidence", help="operator tool for segment files")
    actions = evidence.add_subparsers(dest="evidence_command", required=True, metavar="ACTION")

    def device_key_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--device-key",
            metavar="KEY",
            help="enrolled device public key (as `bodycamd keys show` prints it, or a file); "
            "without it signatures are checked against the key the segment embeds",
        )

    inspect = actions.add_parser("inspect", help="show a segment's header and verdict")
    inspect.add_argument("file", type=Path)
    device_key_option(inspect)
    verify = actions.add_parser("verify", help="check segments and the chain between them")
    verify.add_argument("files", type=Path, nargs="+", metavar="FILE")
    device_key_option(verify)
    decrypt = actions.add_parser("decrypt", help="decrypt segments to one MPEG-TS file")
    decrypt.add_argument("files", type=Path, nargs="+", metavar="FILE")
    decrypt.add_argument("--key", type=Path, required=True, help="evidence private key file")
    decrypt.add_argument("-o", "--output", type=Path, required=True)
    decrypt.add_argument(
        "--allow-torn", action="store_true", help="also write the recovered part of torn segments"
    )
    device_key_option(decrypt)


def dispatch(args: argparse.Namespace) -> int:
    device_key = load_device_public_key(args.device_key) if args.device_key else None
    if args.evidence_command == "inspect":
        return _inspect(args.file, device_key)
    if args.evidence_command == "verify":
        return _verify(args.files, device_key)
    return _decrypt(args, device_key)


def _when(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat(timespec="milliseconds")


def describe_verdict(verdict: Verdict) -> str:
    if verdict.status == "complete":
        return "complete"
    return (
        f"torn: {verdict.tail}; signatures vouch for {verdict.vouched_plaintext} bytes "
        f"in {verdict.vouched_records} records, {verdict.records_after_checkpoint} "
        "record(s) after the last checkpoint"
    )


def _inspect(path: Path, device_key: ed25519.Ed25519PublicKey | None) -> int:
    verdict = scan_segment(path, device_key)
    h = verdict.header
    rows = [
        ("file", str(path)),
        (
            "format",
            f"bodycamd segment v1, KEM {kem_by_id(h.kem_id)} (0x{h.kem_id:04x}), "
            "HKDF-SHA256, AES-256-GCM",
        ),
        ("recording", f"{h.recording_id}, segment {h.segment_index}"),
        ("device", f"{h.device_name or '(unnamed)'}, key {fingerprint(h.device_key)}"),
        (
            "signatures",
            "checked against the enrolled device key"
            if device_key
            else "checked against the key the segment embeds (not an enrolled key)",
        ),
        (
            "started",
            f"{_when(h.wall_start_ns)} (clock "
            f"{'synchronised' if h.clock_synced else 'NOT synchronised'}), "
            f"monotonic {h.mono_start_ns / 1e9:.3f} s",
        ),
        ("previous", h.prev_digest.hex() if any(h.prev_digest) else "none (first segment)"),
        ("verdict", describe_verdict(verdict)),
        (
            "payload",
            f"{verdict.plaintext_bytes} bytes in {verdict.data_records} records, "
            f"{verdict.checkpoints} checkpoints",
        ),
        ("end", "end of recording" if verdict.end_of_recording else "not the last segment"),
        ("sha256", verdict.digest.hex()),
    ]
    for name, value in rows:
        print(f"{name + ':':<12}{value}")
    return 0


def _verify(paths: list[Path], device_key: ed25519.Ed25519PublicKey | None) -> int:
    failures = 0
    recordings: dict[object, list[ChainLink]] = defaultdict(list)
    for path in paths:
        try:
            verdict = scan_segment(path, device_key)
        except (EvidenceError, OSError) as exc:
            print(f"{path}: FAILED: {exc}")
            failures += 1
            continue
        print(f"{path}: {describe_verdict(verdict)}")
        recordings[verdict.header.recording_id].append(ChainLink(str(path), verdict))
    for recording, links in recordings.items():
        try:
            report = check_chain(links)
        except EvidenceError as exc:
            print(f"recording {recording}: CHAIN FAILED: {exc}")
            failures += 1
            continue
        print(
            f"recording {recording}: chain OK, {report.segments} segment(s), ends {report.ending}"
        )
    if failures:
        print(f"{failures} problem(s) found")
    return 1 if failures else 0


def _decrypt(args: argparse.Namespace, device_key: ed25519.Ed25519PublicKey | None) -> int:
    """Write to a hidden .partial file, fsync, rename, fsync the directory: after a crash
    OUT is either absent or whole, never a truncated recording that looks complete."""
    key = load_evidence_private_key(args.key)
    output: Path = args.output
    tmp = output.with_name(f".{output.name}.partial")
    total = 0
    try:
        with tmp.open("wb") as out:
            for number, path in enumerate(args.files, 1):
                verdict = scan_segment(path, device_key)
                if verdict.status != "complete" and not args.allow_torn:
                    raise EvidenceError(
                        f"{path}: {describe_verdict(verdict)}; refusing without --allow-torn"
                    )
                reader = SegmentReader(path, key, device_key)
                for chunk in reader.plaintext():
                    out.write(chunk)
                    total += len(chunk)
                note = describe_verdict(reader.verdict)
                print(
                    f"[{number}/{len(args.files)}] {path}: {reader.verdict.plaintext_bytes} "
                    f"bytes, {note}",
                    file=sys.stderr,
                )
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(output)
        fsync_directory(output.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    print(f"wrote {total} bytes to {output}", file=sys.stderr)
    return 0
