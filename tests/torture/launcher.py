"""`bodycamd run` with a crash-point hook for the torture: SIGKILL at one chosen fsync of a
segment roll. Test instrumentation only; the daemon itself carries no hook.

TORTURE_ROLL_POINT=p arms at the first roll (a seal that is not end of recording) and kills
before fsync number p // 2 of the roll when p is even, after it when odd, counting every
fsync made through os.fsync (files and directories alike) until the next segment's header is
on flash. If the roll ends before point p, TORTURE_MARK is created and the daemon runs on.
os.fsync is patched before bodycamd is imported, so default arguments bind the patched one.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

_real_fsync = os.fsync
_point = int(os.environ.get("TORTURE_ROLL_POINT", "-1"))
_mark = Path(os.environ.get("TORTURE_MARK", os.devnull))
_state = {"armed": False, "count": 0, "done": False}


def _fsync(fd: int) -> None:
    if not _state["armed"]:
        _real_fsync(fd)
        return
    number = int(_state["count"])
    _state["count"] = number + 1
    if 2 * number == _point:
        os.kill(os.getpid(), signal.SIGKILL)
    _real_fsync(fd)
    if 2 * number + 1 == _point:
        os.kill(os.getpid(), signal.SIGKILL)


os.fsync = _fsync


def install() -> None:
    from bodycamd.evidence import writer

    seal, init = writer.SegmentWriter.seal, writer.SegmentWriter.__init__

    def hooked_seal(self: writer.SegmentWriter, **kwargs: Any) -> Any:
        if _point >= 0 and not _state["done"] and not kwargs.get("end_of_recording"):
            _state["armed"] = True
        return seal(self, **kwargs)

    def hooked_init(self: writer.SegmentWriter, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if _state["armed"]:
            _state["armed"], _state["done"] = False, True
            _mark.write_text(f"{_state['count']} fsyncs in the roll\n")

    writer.SegmentWriter.seal = hooked_seal  # type: ignore[method-assign]
    writer.SegmentWriter.__init__ = hooked_init  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    from bodycamd.cli import main

    sys.exit(main(sys.argv[1:]))
