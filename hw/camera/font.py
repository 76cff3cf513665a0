"""A 3x5 pixel font for burning frame numbers and clocks into test-pattern frames, so a
decoded frame says by itself which frame it is and when it was made."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

_GLYPHS = {
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001001001001",
    "8": "111101111101111",
    "9": "111101111001111",
    ":": "000010000010000",
    ".": "000000000000010",
    " ": "000000000000000",
    "-": "000000111000000",
}


def burn_text(plane: npt.NDArray[np.uint8], text: str, x: int, y: int, scale: int) -> None:
    """Draw `text` in white into a luma plane, with a black box behind it for contrast."""
    width = len(text) * 4 * scale
    plane[y - scale : y + 6 * scale, x - scale : x + width] = 16
    for index, char in enumerate(text):
        block = _glyph(char, scale)
        left = x + index * 4 * scale
        region = plane[y : y + 5 * scale, left : left + 3 * scale]
        np.maximum(region, block[: region.shape[0], : region.shape[1]], out=region)


@lru_cache(maxsize=64)
def _glyph(char: str, scale: int) -> npt.NDArray[np.uint8]:
    """The glyph scaled up, made once per character and scale (a frame burns ~20 of them)."""
    bits = _GLYPHS.get(char, _GLYPHS[" "])
    glyph = np.array([int(b) for b in bits], dtype=np.uint8).reshape(5, 3)
    block: npt.NDArray[np.uint8] = np.kron(glyph, np.ones((scale, scale), dtype=np.uint8)) * 235
    block.setflags(write=False)
    return block
