"""`bodycamctl`: the command-line client of the daemon's local control API.

The control API (officer login, record start/stop, status over a Unix socket) is not built
yet; until it is, this command says so plainly and exits 69 (EX_UNAVAILABLE) instead of
pretending. The daemon's one-line status is in `systemctl status bodycamd` meanwhile.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

EX_UNAVAILABLE = 69


def main(argv: Sequence[str] | None = None) -> int:
    print(
        "bodycamctl: the control API is not built yet (see the officer-login/control issue); "
        "the daemon's status line is in `systemctl status bodycamd` or the `make run` log",
        file=sys.stderr,
    )
    return EX_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())
