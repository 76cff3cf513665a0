"""The short torture that runs in `make test`: one kill at a random moment and one at the
fsync where a roll is most exposed (segment n sealed and in ready/, n+1 not begun); the
whole `make torture` does 30 and every fsync of a roll."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.torture.run import torture


def test_short_torture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # point 10: after the 5th fsync of the roll: n is in ready/, n+1 has no file yet
    assert torture(tmp_path, kills=1, seed=7, points=[10]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "kills:        2 (1 at random moments, 1 at the" in out
    assert "interrupted (power loss): " in out and "missing" not in out
    assert "unexplained:  0" in out
