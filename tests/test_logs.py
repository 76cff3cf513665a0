from __future__ import annotations

import io
import logging
import os
from pathlib import Path

from bodycamd.logs import JournalFormatter, stderr_is_journal


def record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("bodycamd.x", level, __file__, 1, message, None, None)


def test_journal_lines_carry_priority_prefix_and_no_timestamp() -> None:
    formatter = JournalFormatter("%(name)s: %(message)s")
    assert formatter.format(record(logging.ERROR, "disk full")) == "<3>bodycamd.x: disk full"
    assert formatter.format(record(logging.INFO, "a\nb")) == "<6>bodycamd.x: a\n<6>b"
    assert formatter.format(record(logging.DEBUG, "d")).startswith("<7>")
    assert formatter.format(record(logging.WARNING, "w")).startswith("<4>")


def test_journal_detected_only_for_the_stream_systemd_named(tmp_path: Path) -> None:
    with (tmp_path / "log").open("w") as stream:
        st = os.fstat(stream.fileno())
        assert stderr_is_journal(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        assert not stderr_is_journal(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        assert not stderr_is_journal(stream, {})
    assert not stderr_is_journal(io.StringIO(), {"JOURNAL_STREAM": "1:2"})
