"""The audit trail detects edits, deletions and reordering; the CLI verifies and exports."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from bodycamd.cli import main
from bodycamd.journal import Journal, verify_audit
from tests.conftest import write_config
from tests.evidence.helpers import make_keys

KEYS = make_keys()


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    path = tmp_path / "journal.db"
    journal = Journal(path, KEYS.device)
    for kind, fields in [
        ("daemon_start", {"device": "cam"}),
        ("officer_login", {"id": "123456"}),
        ("recording_start", {"reason": "button"}),
        ("recording_stop", {"reason": "hold"}),
        ("daemon_stop", {}),
    ]:
        journal.audit(kind, **fields)
    journal.close()
    return path


def problems(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return verify_audit(db, KEYS.device_public).problems


def test_untouched_trail_verifies(journal_path: Path) -> None:
    assert problems(journal_path) == []


def test_edited_event(journal_path: Path) -> None:
    with sqlite3.connect(journal_path) as db:
        db.execute("""UPDATE audit SET fields = '{"id":"654321"}' WHERE seq = 2""")
    assert problems(journal_path) == [
        "event 2 (officer_login): contents do not match its hash (edited)"
    ]


@pytest.mark.parametrize(
    "edit",
    ["hash = 'text'", "time_ns = 'noon'", "prev_hash = 7", "fields = x'7b7d'"],
    ids=["hash as text", "time as text", "prev_hash as a number", "fields as a blob"],
)
def test_a_column_of_another_type_is_named_not_a_traceback(journal_path: Path, edit: str) -> None:
    """SQLite stores whatever type an edit writes; verify names the row and goes on."""
    with sqlite3.connect(journal_path) as db:
        db.execute(f"UPDATE audit SET {edit} WHERE seq = 2")
    found = problems(journal_path)
    assert found[0] == "audit row 2: its columns are not of the types written"
    assert any(line.startswith("event 3 (recording_start): does not follow") for line in found)


def test_edited_and_rehashed_event_fails_the_signature(journal_path: Path) -> None:
    import hashlib

    from bodycamd.journal.audit import canonical

    with sqlite3.connect(journal_path) as db:
        seq, time_ns, mono_ns, kind, _, prev = db.execute(
            "SELECT seq, time_ns, mono_ns, kind, fields, prev_hash FROM audit WHERE seq = 2"
        ).fetchone()
        fields = '{"id":"654321"}'
        digest = hashlib.sha256(prev + canonical(seq, time_ns, mono_ns, kind, fields)).digest()
        db.execute("UPDATE audit SET fields = ?, hash = ? WHERE seq = 2", (fields, digest))
    found = problems(journal_path)
    assert "event 2 (officer_login): bad device signature" in found
    assert "event 3 (recording_start): does not follow the event before it" in found


def test_deleted_event(journal_path: Path) -> None:
    with sqlite3.connect(journal_path) as db:
        db.execute("DELETE FROM audit WHERE seq = 3")
    found = problems(journal_path)
    assert found[0] == (
        "event 4 (recording_stop): expected event 3 here (events deleted or reordered)"
    )
    assert "event 4 (recording_stop): does not follow the event before it" in found


def test_reordered_events(journal_path: Path) -> None:
    with sqlite3.connect(journal_path) as db:
        rows = db.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        db.execute("DELETE FROM audit")
        rows[1], rows[2] = rows[2], rows[1]
        db.executemany(
            "INSERT INTO audit (seq, time_ns, mono_ns, kind, fields, prev_hash, hash, "
            "signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(i + 1000, *r[1:]) for i, r in enumerate(rows)],
        )
    assert problems(journal_path)


def test_audit_cli_verify_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["keys", "show", "--config", str(config)]) == 0  # creates the device key
    from bodycamd.evidence.keys import device_public_raw, fingerprint, load_or_create_device_key

    device = load_or_create_device_key(tmp_path / "state" / "keys" / "device.key")
    journal = Journal(tmp_path / "state" / "journal.db", device)
    journal.audit("daemon_start", device="cam")
    journal.audit("marker", note="door")
    journal.close()
    capsys.readouterr()
    assert main(["audit", "verify", "--config", str(config)]) == 0
    name = fingerprint(device_public_raw(device))
    assert capsys.readouterr().out.splitlines() == [
        f"signer 1: key {name}: signed events 1 to 2 (trusted)",  # this device's key, by default
        f"trust anchor: key {name}; it vouches for events 1 to 2",
        "audit trail: 2 event(s), OK",
    ]
    out = tmp_path / "audit.jsonl"
    assert main(["audit", "export", "--config", str(config), "-o", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["kind"] for e in lines] == ["daemon_start", "marker"]
    assert lines[1]["prev_hash"] == lines[0]["hash"] and len(lines[1]["signature"]) == 128
    with sqlite3.connect(tmp_path / "state" / "journal.db") as db:
        db.execute("""UPDATE audit SET fields = '{"note":"window"}' WHERE seq = 2""")
    assert main(["audit", "verify", "--config", str(config)]) == 1
    assert "event 2 (marker): contents do not match its hash (edited)" in capsys.readouterr().out
