"""The ingest's systemd unit verifies and keeps the contract docs/ingest.md describes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import skip_unless_ci

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "bodycamd-ingest.service"


def test_unit_runs_serve_as_its_own_user_with_notify() -> None:
    text = UNIT.read_text()
    for line in [
        "Type=notify",
        "Restart=on-failure",
        "User=bodycamd-ingest",
        "ConfigurationDirectory=bodycamd-ingest",
        "StateDirectory=bodycamd-ingest",
        "LimitCORE=0",
        "UMask=0077",
        "CapabilityBoundingSet=",
    ]:
        assert re.search(f"^{re.escape(line)}$", text, re.MULTILINE), line
    assert "bodycamd-ingest serve --config /etc/bodycamd-ingest" in text


@skip_unless_ci(
    shutil.which("systemd-analyze") is None,
    "systemd-analyze is not installed here (.ci/run installs systemd)",
)
def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "bodycamd-ingest"
    copy = tmp_path / "bodycamd-ingest.service"
    copy.write_text(
        UNIT.read_text().replace("/opt/bodycamd-ingest/bin/bodycamd-ingest", str(script))
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
