"""`make demo`'s steps, shortened: a real ingest (`bodycamd-ingest serve`, mutual TLS), a real
daemon (`bodycamd run`, simulated hardware) worked through its control socket, the upload,
the back end's list/verify/decrypt, and the contact sheets. The figures the summary prints
are checked here against the footage decoded again by the test."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import av
import pytest
from PIL import Image

from bodycamd.demo.__main__ import main, run
from bodycamd.demo.contact_sheet import CAPTION, COLUMNS, MARKER_COLOUR, TILE_WIDTH
from bodycamd.demo.procs import DemoFailed, Processes
from bodycamd.demo.setup import DemoTiming
from bodycamd.demo.summary import checks, print_summary

FPS = 15  # the demo camera's framerate
ENCODER_LAG = 0.25  # seconds of frames a synthetic camera holds in its encoder at most
TIMING = DemoTiming(first_recording=5.0, second_recording=2.0, pre_event=3.0, segment=2.0)


def _frames(video: Path) -> int:
    with av.open(str(video)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


@pytest.mark.timeout(300)
def test_demo_shift_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run(tmp_path / "demo", TIMING, upload_timeout=90.0)
    figures, shift = outcome.figures, outcome.shift
    assert print_summary(outcome) == 0
    printed = capsys.readouterr().out
    assert "\r  upload [" in printed and "demo passed: 0 check(s) failed" in printed
    assert "FAIL" not in printed and all(ok for _, ok in checks(figures, shift))

    first, second = figures.recordings
    assert [first.recording, second.recording] == shift.recordings
    assert figures.verify_ok and len(figures.chains) == 2
    assert figures.left_on_flash == 0
    assert not list((tmp_path / "demo" / "camera").rglob("*.seg"))
    segments = first.segments + second.segments
    assert shift.receipts == segments and first.segments >= 3 and second.segments >= 2
    assert shift.upload_bytes == first.bytes + second.bytes
    assert len(figures.receipts) == segments and all(c.problem is None for c in figures.receipts)
    assert sum(c.size for c in figures.receipts) == shift.upload_bytes
    assert 0 < shift.upload_seconds <= shift.polled_seconds
    assert len(first.markers) == 1 and not second.markers
    assert 0 <= first.markers[0] <= first.decoded_seconds
    for recording in figures.recordings:
        # footage: what was asked for is the daemon's count, the pre-event included; the
        # hold's 3 s comes on top, less the frames still inside the camera's encoder when the
        # stop lands (measured 7.917 s for 5 + 3: about 2 frames)
        asked = TIMING.first_recording if recording is first else TIMING.second_recording
        assert recording.recorded_seconds >= asked + 3.0 - ENCODER_LAG
        decoded = _frames(recording.video) / FPS
        assert decoded == pytest.approx(recording.recorded_seconds, abs=1.5)
        assert decoded >= shift.pressed_seconds[recording.recording] + TIMING.pre_event / 2
        assert recording.video.name == f"{recording.recording}.ts"
        with Image.open(recording.sheet.path) as sheet:
            sheet.verify()
        with Image.open(recording.sheet.path) as sheet:
            assert sheet.format == "PNG"
            tile_height = round(360 * TILE_WIDTH / 640)
            rows = math.ceil(recording.sheet.tiles / COLUMNS)
            assert sheet.size == (COLUMNS * TILE_WIDTH, rows * (tile_height + CAPTION))
            assert recording.sheet.tiles >= int(decoded // 2.0 * 0.8)
            corners = [
                sheet.convert("RGB").getpixel(
                    ((n % COLUMNS) * TILE_WIDTH + 1, (n // COLUMNS) * (tile_height + CAPTION) + 1)
                )
                for n in range(recording.sheet.tiles)
            ]
            assert corners.count(MARKER_COLOUR) == len(recording.markers)


def test_demo_fails_in_one_line_when_its_output_is_unusable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["--out", str(blocker / "demo")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("demo FAILED: ") and "demo" in err[0]


def test_a_process_that_dies_is_reported_with_its_log(tmp_path: Path) -> None:
    with Processes(tmp_path) as procs:
        procs.start("ingest", [sys.executable, "-c", "print('bad config'); raise SystemExit(3)"])
        with pytest.raises(DemoFailed) as failed:
            procs.wait_until("ingest", lambda: False, timeout=60)
    assert str(failed.value) == f"ingest exited with status 3; see {tmp_path / 'ingest.log'}"
    assert "bad config" in (tmp_path / "ingest.log").read_text()


def test_every_process_started_is_stopped_when_the_demo_fails(tmp_path: Path) -> None:
    started = tmp_path / "started"
    sleeper = (  # the pid written whole (rename), then it waits to be stopped
        f"import pathlib, os, time; p = pathlib.Path({str(started)!r}); "
        "t = p.with_name('tmp'); t.write_text(str(os.getpid())); t.rename(p); time.sleep(600)"
    )
    with pytest.raises(DemoFailed), Processes(tmp_path) as procs:
        procs.start("camera", [sys.executable, "-c", sleeper])
        procs.wait_until("camera", started.exists, timeout=60)
        raise DemoFailed("a step failed")
    pid = int(started.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped by stop_all: not even a zombie is left
