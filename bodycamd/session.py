"""Officer sessions: who is wearing the camera.

An officer logs in with a personnel number before the camera can be used (policy can allow
anonymous recording on a bench, always audited). The number must match
`session.personnel_pattern` in full and, when a roster file is configured, appear in it. The
roster is read at every login, so a roster pushed to the device takes effect without a
restart. Every recording carries the number of the officer logged in when it started.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .config import SessionConfig
from .errors import LoginRefused


@dataclass(frozen=True)
class Officer:
    personnel_number: str
    since_ns: int


class SessionPolicy:
    def __init__(self, config: SessionConfig) -> None:
        self._config = config
        self._pattern = re.compile(config.personnel_pattern)

    @property
    def allow_anonymous_recording(self) -> bool:
        return self._config.allow_anonymous_recording

    @property
    def logout_on_dock(self) -> bool:
        return self._config.logout_on_dock

    def validate(self, number: object) -> str:
        if not isinstance(number, str) or not number:
            raise LoginRefused("personnel number missing")
        if not self._pattern.fullmatch(number):
            raise LoginRefused(
                f"personnel number {number!r} is not valid (expected "
                f"{self._config.personnel_pattern})"
            )
        if self._config.roster and number not in self._roster(Path(self._config.roster)):
            raise LoginRefused(f"personnel number {number} is not on this device's roster")
        return number

    @staticmethod
    def _roster(path: Path) -> set[str]:
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise LoginRefused(f"roster {path} cannot be read ({exc.strerror})") from exc
        return {line.split("#", 1)[0].strip() for line in lines} - {""}
