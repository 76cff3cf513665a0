"""`bodycamd evidence ...`: the operator tool. It runs where the evidence private key is (the
back end), never on a device; the device has no command that exports footage.

- inspect FILE...     header and keyless verdict of each
- verify FILE...      signatures, checkpoints, footers and the chain of each recording;
                      exit 1 on a bad file or an unexplained chain fault (a power loss or
                      a failed segment open the device signed for is reported, not a failure)
- decrypt --key K FILE... -o OUT   one MPEG-TS per recording, segments in index order; any
                      chain fault refuses (exit 1, nothing written) unless `--accept KIND`
                      names it. OUT is a directory (OUT/<recording id>.ts) or a pattern
                      holding `{recording}`.

`--device-key` (one device, as `bodycamd keys show` prints it) or `--registry` (a file of
enrolled devices, see origin.py) checks origin; without them the tools say "origin not
checked".
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from ..errors import ChainError, EvidenceError
from ..fsutil import fsync_directory
from .chain import ACCEPTABLE, ChainFault, ChainLink, ChainReport, assess_chain, group_by_recording
from .keys import fingerprint, kem_by_id, load_evidence_private_key
from .origin import Origin, origin_from
from .reader import SegmentReader, Verdict, read_header, scan_segment


def add_commands(commands: Any) -> None:
    evidence = commands.add_parser("evidence", help="operator tool for segment files")
    actions = evidence.add_subparsers(dest="evidence_command", required=True, metavar="ACTION")

    def origin_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--device-key",
            metavar="KEY",
            help="enrolled device public key: what `bodycamd keys show` prints, or a file "
            "holding it",
        )
        sub.add_argument(
            "--registry",
            type=Path,
            metavar="FILE",
            help="enrolled devices, one per line: NAME then what `bodycamd keys show` prints",
        )

    inspect = actions.add_parser("inspect", help="show each segment's header and verdict")
    inspect.add_argument("files", type=Path, nargs="+", metavar="FILE")
    origin_options(inspect)
    verify = actions.add_parser("verify", help="check segments and the chain between them")
    verify.add_argument("files", type=Path, nargs="+", metavar="FILE")
    origin_options(verify)
    decrypt = actions.add_parser("decrypt", help="decrypt each recording to one MPEG-TS file")
    decrypt.add_argument("files", type=Path, nargs="+", metavar="FILE")
    decrypt.add_argument("--key", type=Path, required=True, help="evidence private key file")
    decrypt.add_argument(
        "-o",
        "--output",
        required=True,
        help="directory (one OUT/<recording id>.ts per recording) or a pattern with {recording}",
    )
    decrypt.add_argument(
        "--accept",
        action="append",
        default=[],
        choices=sorted(ACCEPTABLE),
        metavar="KIND",
        help=f"decrypt despite this chain fault (repeatable): {', '.join(sorted(ACCEPTABLE))}",
    )
    origin_options(decrypt)


def dispatch(args: argparse.Namespace) -> int:
    origin = origin_from(args.device_key, args.registry)
    if args.evidence_command == "inspect":
        codes = []
        for n, path in enumerate(args.files):
            if n:
                print()  # a blank line between files
            codes.append(_inspect(path, origin))
        return max(codes)
    if args.evidence_command == "verify":
        return _verify(args.files, origin)
    return _decrypt(args, origin)


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


def scan_with_origin(path: Path, origin: Origin) -> Verdict:
    """Keyless scan, signatures checked against the enrolled key for the segment's device."""
    with path.open("rb") as stream:
        header = read_header(stream, None)
    return scan_segment(path, origin.key_for(header, str(path)))


def _inspect(path: Path, origin: Origin) -> int:
    verdict = scan_with_origin(path, origin)
    h = verdict.header
    ending = ""
    if verdict.end_wall_ns is not None:
        ending = f"{_when(verdict.end_wall_ns)}"
        if verdict.recovered_wall_ns:
            ending += (
                f" (last checkpoint); sealed by recovery at {_when(verdict.recovered_wall_ns)}"
            )
    rows = [
        ("file", str(path)),
        (
            "format",
            f"bodycamd segment v{h.version}, KEM {kem_by_id(h.kem_id)} (0x{h.kem_id:04x}), "
            "HKDF-SHA256, AES-256-GCM",
        ),
        ("recording", f"{h.recording_id}, segment {h.segment_index}"),
        ("device", f"{h.device_name or '(unnamed)'}, key {fingerprint(h.device_key)}"),
        ("signatures", origin.describe()),
        (
            "started",
            f"{_when(h.wall_start_ns)} (clock "
            f"{'synchronised' if h.clock_synced else 'NOT synchronised'}), "
            f"monotonic {h.mono_start_ns / 1e9:.3f} s",
        ),
        ("boot", uuid.UUID(bytes=h.boot_id).hex if any(h.boot_id) else "unknown"),
        ("ended", ending or "no footer"),
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


def _scan_all(paths: list[Path], origin: Origin) -> tuple[list[ChainLink], int]:
    links, failures = [], 0
    for path in paths:
        try:
            verdict = scan_with_origin(path, origin)
        except (EvidenceError, OSError) as exc:
            print(f"{path}: FAILED: {exc}")
            failures += 1
            continue
        print(f"{path}: {describe_verdict(verdict)}")
        links.append(ChainLink(str(path), verdict))
    return links, failures


def _report(report: ChainReport) -> None:
    print(report.summary())
    for fault in report.faults:
        print(f"  {fault.kind}: {fault.message}")


def _verify(paths: list[Path], origin: Origin) -> int:
    links, failures = _scan_all(paths, origin)
    for group in group_by_recording(links).values():
        report = assess_chain(group)
        _report(report)
        failures += len(report.unexplained)
    print(origin.describe())
    if failures:
        print(f"{failures} problem(s) found")
    return 1 if failures else 0


def output_path(pattern: str, recording: uuid.UUID) -> Path:
    if "{recording}" in pattern:
        return Path(pattern.replace("{recording}", str(recording)))
    return Path(pattern) / f"{recording}.ts"


def _decrypt(args: argparse.Namespace, origin: Origin) -> int:
    """Check every file and every chain first; refuse before writing anything. Then write
    each recording to a hidden .partial file, fsync, and rename all of them only when every
    one decrypted: after a crash or a bad record an output is absent or whole, never a
    truncated recording that looks complete. Existing outputs are never overwritten."""
    key = load_evidence_private_key(args.key)
    links, failures = _scan_all(args.files, origin)
    if failures:
        raise EvidenceError(f"{failures} file(s) failed verification; nothing written")
    reports = [assess_chain(group) for group in group_by_recording(links).values()]
    refused: list[ChainFault] = []
    for report in reports:
        _report(report)
        refused += report.refused(args.accept)
    print(origin.describe(), file=sys.stderr)
    if refused:
        kinds = ", ".join(sorted({fault.kind for fault in refused}))
        raise ChainError(
            f"chain faults ({kinds}); nothing written. Name the ones to accept "
            "with --accept KIND, if the report above explains them"
        )
    targets = {
        report.recording_id: output_path(args.output, report.recording_id) for report in reports
    }
    for target in targets.values():
        if target.exists():
            raise FileExistsError(f"{target}: already exists; refusing to overwrite it")
    written: list[tuple[Path, Path]] = []
    try:
        for report in reports:
            target = targets[report.recording_id]
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.partial")
            written.append((tmp, target))
            _decrypt_recording(report, key, origin, tmp)
        for tmp, target in written:
            os.link(tmp, target)  # fails rather than replace a file that appeared meanwhile
            tmp.unlink()
            fsync_directory(target.parent)
            print(f"wrote {target}", file=sys.stderr)
    except BaseException:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)
        raise
    return 0


def _decrypt_recording(report: ChainReport, key: Any, origin: Origin, tmp: Path) -> None:
    total = 0
    with tmp.open("xb") as out:
        for number, link in enumerate(report.links, 1):
            path = Path(link.name)
            reader = SegmentReader(path, key, origin.key_for(link.verdict.header, link.name))
            for chunk in reader.plaintext():
                out.write(chunk)
                total += len(chunk)
            if reader.verdict.digest != link.verdict.digest:
                raise EvidenceError(f"{path}: changed while it was being decrypted")
            print(
                f"[{number}/{report.segments}] {path}: segment "
                f"{link.verdict.header.segment_index}, {reader.verdict.plaintext_bytes} bytes, "
                f"{describe_verdict(reader.verdict)}",
                file=sys.stderr,
            )
        out.flush()
        os.fsync(out.fileno())
    print(f"recording {report.recording_id}: {total} bytes", file=sys.stderr)
