"""The device key: made only on a fresh state directory, never readable by others, replaced
only on purpose and with an audit event signed by the key it retires."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bodycamd.cli import main
from bodycamd.config import EvidenceConfig, load_config
from bodycamd.errors import KeyFileError
from bodycamd.evidence.keys import (
    load_device_key,
    load_evidence_private_key,
    load_or_create_device_key,
    write_evidence_key_pair,
)
from bodycamd.identity import IdentityComponent, device_key_for
from bodycamd.journal import Journal, verify_audit
from bodycamd.storage.layout import StateLayout
from tests.conftest import write_config
from tests.evidence.helpers import make_keys


def test_a_fresh_state_directory_gets_a_key_at_0600_whatever_the_umask(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path / "state")
    layout.prepare()
    old = os.umask(0)
    try:
        key, made = device_key_for(layout)
    finally:
        os.umask(old)
    assert made and layout.device_key.stat().st_mode & 0o777 == 0o600
    again, made = device_key_for(layout)
    assert not made and again.public_key() == key.public_key()


@pytest.mark.parametrize("history", ["journal", "footage"])
async def test_a_lost_key_on_a_used_state_directory_stops_the_start(
    tmp_path: Path, history: str
) -> None:
    layout = StateLayout(tmp_path / "state")
    layout.prepare()
    if history == "journal":
        Journal(layout.journal, load_or_create_device_key(layout.device_key)).close()
    else:
        (layout.ready / "rec").mkdir()
        (layout.ready / "rec" / "000000.seg").write_bytes(b"footage")
        load_or_create_device_key(layout.device_key)
    layout.device_key.unlink()
    config = EvidenceConfig(public_key=tmp_path / "evidence.pub", development_keys=True)
    with pytest.raises(KeyFileError) as caught:
        await IdentityComponent(config, layout).start()
    message = str(caught.value)
    assert "\n" not in message and "refusing to make a new key" in message
    assert "bodycamd keys rotate" in message
    assert not layout.device_key.exists()


def test_keys_show_refuses_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["keys", "show", "--config", str(config)]) == 0
    state = load_config(config).device.state_dir
    Journal(state / "journal.db", load_device_key(state / "keys" / "device.key")).close()
    (state / "keys" / "device.key").unlink()
    capsys.readouterr()
    assert main(["keys", "show", "--config", str(config)]) == 1
    assert "device key missing" in capsys.readouterr().err


def test_private_keys_readable_by_others_are_refused(tmp_path: Path) -> None:
    device = tmp_path / "device.key"
    load_or_create_device_key(device)
    device.chmod(0o644)
    with pytest.raises(KeyFileError, match=r"mode 0644\); .* chmod 600 .*device\.key"):
        load_device_key(device)
    device.chmod(0o600)
    load_device_key(device)
    write_evidence_key_pair(make_keys().evidence, tmp_path / "evidence.key")
    (tmp_path / "evidence.key").chmod(0o640)
    with pytest.raises(KeyFileError, match=r"chmod 600"):
        load_evidence_private_key(tmp_path / "evidence.key")


def test_rotate_is_explicit_and_audited(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    with pytest.raises(SystemExit):  # the flag is required
        main(["keys", "rotate", "--config", str(config)])
    assert main(["keys", "show", "--config", str(config)]) == 0
    before = capsys.readouterr().out
    state = load_config(config).device.state_dir
    old = load_device_key(state / "keys" / "device.key")
    journal = Journal(state / "journal.db", old)
    journal.audit("recording_start", recording="r1")
    journal.close()
    assert main(["keys", "rotate", "--config", str(config), "--i-understand"]) == 0
    assert "device key replaced" in capsys.readouterr().out
    assert main(["keys", "show", "--config", str(config)]) == 0
    after = capsys.readouterr().out
    assert after != before
    retired = list((state / "keys").glob("device.key.retired-*"))
    assert len(retired) == 1
    assert load_device_key(retired[0]).public_key() == old.public_key()
    import sqlite3

    with sqlite3.connect(state / "journal.db") as db:
        report = verify_audit(db, old.public_key())  # the rotation is signed by the old key
        kinds = [row[0] for row in db.execute("SELECT kind FROM audit ORDER BY seq")]
    assert report.ok and kinds == ["recording_start", "device_key_rotated"]
