"""A contact sheet: one PNG of frames taken every few seconds from a decrypted recording.

Why: a reviewer of `make demo` must be able to see what the camera recorded without a video
player. Frames are decoded with PyAV from the recording's MPEG-TS (the same bytes an evidence
officer gets from the back end); each tile is captioned with its time in the recording, and
tiles at a marker's time get a red frame, so the marker can be checked against the synthetic
camera's burnt-in clock.

The sheet is written atomically (temporary file, fsync, rename): a Ctrl-C leaves no half PNG.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image, ImageDraw

TILE_WIDTH = 320
COLUMNS = 4
CAPTION = 18
MARKER_COLOUR = (220, 30, 30)


@dataclass(frozen=True)
class SheetInfo:
    path: Path
    tiles: int
    width: int
    height: int
    duration: float  # seconds of video decoded


def make_contact_sheet(
    recording: Path,
    output: Path,
    *,
    every: float = 2.0,
    markers: Sequence[float] = (),
) -> SheetInfo:
    """Decode `recording` and write a sheet of one frame per `every` seconds to `output`.
    `markers` are times (seconds from the recording's first frame) to highlight."""
    frames: list[tuple[float, Image.Image]] = []
    first: float | None = None
    last = 0.0
    with av.open(str(recording)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.pts is None or frame.time_base is None:
                continue
            t = float(frame.pts * frame.time_base)
            first = t if first is None else first
            last = t - first
            if not frames or last >= frames[-1][0] + every:
                frames.append((last, Image.fromarray(frame.to_ndarray(format="rgb24"))))
    if not frames:
        raise ValueError(f"{recording}: no decodable video frames")
    image = _compose(frames, markers, every)
    _write_atomically(image, output)
    return SheetInfo(output, len(frames), image.width, image.height, last)


def _compose(
    frames: list[tuple[float, Image.Image]], markers: Sequence[float], every: float
) -> Image.Image:
    source = frames[0][1]
    tile_height = round(source.height * TILE_WIDTH / source.width)
    rows = -(-len(frames) // COLUMNS)
    sheet = Image.new("RGB", (COLUMNS * TILE_WIDTH, rows * (tile_height + CAPTION)), "white")
    draw = ImageDraw.Draw(sheet)
    for n, (t, picture) in enumerate(frames):
        x, y = (n % COLUMNS) * TILE_WIDTH, (n // COLUMNS) * (tile_height + CAPTION)
        sheet.paste(picture.resize((TILE_WIDTH, tile_height)), (x, y))
        marked = [m for m in markers if t - every < m <= t]
        caption = f"{t:6.1f} s" + ("  marker" if marked else "")
        draw.text((x + 4, y + tile_height + 3), caption, fill=MARKER_COLOUR if marked else "black")
        if marked:
            draw.rectangle(
                (x, y, x + TILE_WIDTH - 1, y + tile_height - 1), outline=MARKER_COLOUR, width=4
            )
    return sheet


def _write_atomically(image: Image.Image, output: Path) -> None:
    tmp = output.with_name(f".{output.name}.tmp")
    with tmp.open("wb") as handle:
        image.save(handle, format="PNG")
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(output)
