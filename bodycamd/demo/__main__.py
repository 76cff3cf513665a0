"""`make demo` (python -m bodycamd.demo): a whole shift, camera to back end, in one command.

It recreates its output directory (./var/demo by default), sets up and serves the project's
ingest on 127.0.0.1, enrols a simulated camera, works a shift through the control socket,
docks, watches the upload, decrypts what the ingest stored, draws a contact sheet per
recording and ends with a summary of checks; the exit status is 1 if any check fails.
Every process it starts is stopped on the way out, also on Ctrl-C or a failure, which is
reported in one line naming the log to read.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .procs import DemoFailed, Processes
from .setup import DemoTiming, add_upload, camera_config, enroll, init_ingest, serve_ingest, tool
from .shift import Shift, step
from .summary import Outcome, backend_side, print_summary, show_receipts


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bodycamd.demo", description=__doc__)
    default = DemoTiming()
    parser.add_argument("--out", type=Path, default=Path("var/demo"), help="output directory")
    parser.add_argument(
        "--first-seconds",
        type=float,
        default=default.first_recording,
        help="footage of the first recording before the stop hold (pre-event included)",
    )
    parser.add_argument(
        "--second-seconds", type=float, default=default.second_recording, help="the second one"
    )
    parser.add_argument(
        "--pre-event-seconds", type=float, default=default.pre_event, help="pre-event buffer"
    )
    parser.add_argument(
        "--segment-seconds", type=float, default=default.segment, help="segment length"
    )
    parser.add_argument(
        "--upload-timeout", type=float, default=60.0, help="seconds the upload may take"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    timing = DemoTiming(
        first_recording=args.first_seconds,
        second_recording=args.second_seconds,
        pre_event=args.pre_event_seconds,
        segment=args.segment_seconds,
    )
    out: Path = args.out.resolve()
    try:
        outcome = run(out, timing, args.upload_timeout)
    except DemoFailed as exc:
        print(f"\ndemo FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo interrupted; every process it started is stopped", file=sys.stderr)
        return 130
    return print_summary(outcome)


def run(out: Path, timing: DemoTiming, upload_timeout: float) -> Outcome:
    """Every step up to the summary; the figures it checks."""
    started = time.monotonic()
    try:
        if out.exists():
            shutil.rmtree(out)
        (out / "logs").mkdir(parents=True)
    except OSError as exc:
        raise DemoFailed(f"cannot recreate the output directory {out}: {exc}") from exc
    print(f"bodycamd demo in {out}")
    with Processes(out / "logs") as procs:
        print("1. back end and enrolment")
        ingest = init_ingest(out)
        step(f"bodycamd-ingest init {ingest} (CA, server certificate, receipt key)")
        url = serve_ingest(procs, ingest)
        step(f"bodycamd-ingest serve: listening on {url} (mutual TLS, filesystem store)")
        config = camera_config(out, timing)
        cert = enroll(out, config, ingest)
        step(f"bodycamd keys csr / keys show, bodycamd-ingest enroll: certificate {cert.name}")
        add_upload(config, ingest, url, cert)
        step(f"camera config {config} uploads to {url}/files/")

        print("2. the camera daemon (simulated hardware, synthetic camera 640x360)")
        procs.start("camera", [*tool("bodycamd"), "run", "--config", str(config)])
        shift = Shift(procs, out / "run" / "control.sock", out / "camera" / "journal.db")
        shift.wait_ready()
        step("bodycamd run: control socket ready")

        print("3. the shift")
        shift.login()
        shift.fill_pre_event(timing.pre_event)
        shift.record(timing.first_recording, marker_at=timing.first_recording / 2)
        shift.fill_pre_event(timing.pre_event)  # it refills after the first recording
        shift.record(timing.second_recording, marker_at=None)
        shift.dock()

        print("4. the upload")
        shift.upload(upload_timeout)
        receipts = show_receipts(out, ingest)

        print("5. the back end: list, verify, decrypt, contact sheets")
        figures = backend_side(out, ingest, shift, receipts)
        procs.stop_all()
    return Outcome(out, figures, shift.result, time.monotonic() - started)


if __name__ == "__main__":
    sys.exit(main())
