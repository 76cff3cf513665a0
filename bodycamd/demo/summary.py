"""The demo's back-end side and closing summary: `bodycamd-ingest list` and `verify`, the
stored segments decrypted with the development evidence key into <out>/<recording>.ts, a
contact sheet per recording, and the figures checked (PASS/FAIL) against what the camera said.

Why the footage is decoded again here (PyAV) rather than trusted from the daemon's count: the
demo's claim is that what arrives at the back end is the footage recorded, pre-event included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import av

from .contact_sheet import SheetInfo, make_contact_sheet
from .procs import DemoFailed, run_tool
from .receipts import ReceiptCheck, check_receipts
from .setup import DEVICE_NAME, tool
from .shift import Shift, ShiftLog, step

# Decoded footage may differ from the daemon's count by up to one keyframe interval (segments
# and the pre-event buffer start on keyframes) plus a frame.
DURATION_TOLERANCE = 1.5


@dataclass(frozen=True)
class RecordingFigures:
    recording: str
    segments: int
    bytes: int
    recorded_seconds: float  # the daemon's count, pre-event included
    decoded_seconds: float  # PyAV, from the decrypted MPEG-TS
    markers: list[float]
    video: Path
    sheet: SheetInfo


@dataclass
class Figures:
    recordings: list[RecordingFigures] = field(default_factory=list)
    verify_ok: bool = False
    chains: list[str] = field(default_factory=list)  # verify's per-recording lines
    left_on_flash: int = -1
    receipts: list[ReceiptCheck] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    out: Path
    figures: Figures
    shift: ShiftLog
    elapsed: float


def show_receipts(out: Path, ingest: Path) -> list[ReceiptCheck]:
    """Each receipt the camera kept, verified again against the file the ingest stored."""
    checked = check_receipts(out / "camera" / "journal.db", ingest)
    for c in checked:
        verdict = c.problem or "signed by the ingest's key, covers the stored file"
        step(f"receipt {c.recording[:8]}/{c.index}: {c.size:,} bytes, {verdict}")
    return checked


def backend_side(out: Path, ingest: Path, shift: Shift, receipts: list[ReceiptCheck]) -> Figures:
    log = out / "logs" / "backend.log"
    listing = run_tool([*tool("bodycamd-ingest"), "list", "-c", str(ingest)], log, "list")
    _show("bodycamd-ingest list", listing)
    verified = _run_verify(ingest, log)
    _show("bodycamd-ingest verify", verified)
    figures = Figures(
        receipts=receipts,
        verify_ok=verified.rstrip().endswith("verified: 0 problem(s)"),
        chains=[line for line in verified.splitlines() if ": chain of " in line],
    )
    stored = out / "ingest" / "store" / "segments" / DEVICE_NAME
    files = sorted(stored.glob("*/*.seg"))
    argv = [*tool("bodycamd"), "evidence", "decrypt", "--key", str(out / "keys/evidence.key")]
    argv += ["--device-key", str(out / "camera-device-key.txt"), "-o", str(out / "{recording}.ts")]
    run_tool([*argv, *map(str, files)], log, "evidence decrypt")
    step(f"bodycamd evidence decrypt: {len(files)} segments → {out}/<recording>.ts")
    for recording in shift.result.recordings:
        figures.recordings.append(_one_recording(out, stored, recording, shift, log))
    figures.left_on_flash = len(list((out / "camera").rglob("*.seg")))
    return figures


def _run_verify(ingest: Path, log: Path) -> str:
    try:
        return run_tool([*tool("bodycamd-ingest"), "verify", "-c", str(ingest)], log, "verify")
    except DemoFailed:  # a failed verification is a summary check, not a crash
        return log.read_text().rsplit("$ ", 1)[-1]


def _one_recording(
    out: Path, stored: Path, recording: str, shift: Shift, log: Path
) -> RecordingFigures:
    folder = _named(stored.iterdir(), recording, f"stored segments under {stored}", log)
    segments = sorted(folder.glob("*.seg"))
    video = _named(out.glob("*.ts"), recording, f"decrypted recording in {out}", log)
    named = out / f"{recording}.ts"
    if video != named:
        video.replace(named)
    markers = shift.marker_offsets(recording)
    sheet = make_contact_sheet(named, out / f"{recording}.png", every=2.0, markers=markers)
    step(f"contact sheet {sheet.path.name}: {sheet.tiles} frames, {sheet.width}x{sheet.height}")
    return RecordingFigures(
        recording=recording,
        segments=len(segments),
        bytes=sum(p.stat().st_size for p in segments),
        recorded_seconds=shift.result.recorded_seconds[recording],
        decoded_seconds=decoded_duration(named),
        markers=markers,
        video=named,
        sheet=sheet,
    )


def _named(paths: Iterable[Path], recording: str, what: str, log: Path) -> Path:
    """The path named after `recording`, its id written with or without dashes."""
    hexid = recording.replace("-", "")
    for path in paths:
        if path.stem.replace("-", "") == hexid:
            return path
    raise DemoFailed(f"no {what} for recording {recording}; see {log}")


def decoded_duration(video: Path) -> float:
    """Seconds from the first to the last decoded video frame, plus one frame."""
    times: list[float] = []
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        for frame in container.decode(stream):
            if frame.pts is not None and frame.time_base is not None:
                times.append(float(frame.pts * frame.time_base))
    if not times:
        return 0.0
    return max(times) - min(times) + (1.0 / rate if rate else 0.0)


def _show(title: str, text: str) -> None:
    step(f"$ {title}")
    for line in text.rstrip().splitlines():
        print(f"      {line}")


def checks(figures: Figures, shift: ShiftLog) -> list[tuple[str, bool]]:
    recordings = figures.recordings
    segments = sum(r.segments for r in recordings)
    result = [
        ("two recordings stored at the ingest", len(recordings) == 2),
        ("every stored chain verified", figures.verify_ok),
        ("a receipt for every segment", shift.receipts == segments and segments > 0),
        (
            "every receipt signed by the ingest and covering the stored file",
            len(figures.receipts) == segments and not any(c.problem for c in figures.receipts),
        ),
        ("0 segments left on the camera's flash", figures.left_on_flash == 0),
        ("the marker was recorded", bool(recordings) and bool(recordings[0].markers)),
    ]
    for r in recordings:
        close = abs(r.decoded_seconds - r.recorded_seconds) <= DURATION_TOLERANCE
        result.append((f"{r.recording[:8]}: decoded footage matches time recorded", close))
        before_press = r.decoded_seconds - shift.pressed_seconds[r.recording]
        pre_event = before_press >= shift.pre_event / 2
        result.append((f"{r.recording[:8]}: pre-event footage before the press", pre_event))
        result.append((f"{r.recording[:8]}: contact sheet drawn", r.sheet.tiles > 0))
    return result


def print_summary(outcome: Outcome) -> int:
    """Print the figures and each check; 1 if any check failed."""
    out, figures, shift, elapsed = outcome.out, outcome.figures, outcome.shift, outcome.elapsed
    print("6. summary")
    for r in figures.recordings:
        marks = ", ".join(f"{m:.1f} s" for m in r.markers) or "none"
        print(
            f"  recording {r.recording}: {r.segments} segments, {r.bytes:,} bytes, "
            f"footage {r.decoded_seconds:.1f} s decoded vs {r.recorded_seconds:.1f} s recorded "
            f"(pre-event included; {r.decoded_seconds - shift.pressed_seconds[r.recording]:.1f} s "
            f"before the press), markers at {marks}"
        )
    for line in figures.chains:
        print(f"  chain {line.strip()}")
    rate = shift.upload_bytes / shift.upload_seconds if shift.upload_seconds else 0.0
    print(
        f"  upload: {shift.upload_bytes:,} bytes in {shift.upload_seconds:.1f} s "
        f"({rate / 1e6:.2f} MB/s, by the camera's journal), {shift.receipts} receipts, "
        f"flash empty {shift.polled_seconds:.0f} s after the dock; "
        f"left on the camera's flash: {figures.left_on_flash} segments"
    )
    print(f"  marker made by: {shift.marker_by}")
    print(f"  files: {out}/<recording>.ts and .png; logs in {out}/logs; took {elapsed:.0f} s")
    failed = 0
    for name, ok in checks(figures, shift):
        failed += not ok
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    print(f"demo {'FAILED' if failed else 'passed'}: {failed} check(s) failed")
    return 1 if failed else 0
