"""Personal fields of audit events: sealed to the evidence key, opened only by the back end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bodycamd.errors import WrongKeyError
from bodycamd.evidence.keys import generate_evidence_key
from bodycamd.evidence.sealed import open_personal, seal_personal

KEY = generate_evidence_key()


@pytest.mark.parametrize("kem", ["x25519", "mlkem768-x25519"])
def test_sealed_and_opened(kem: str) -> None:
    key = KEY if kem == "x25519" else generate_evidence_key("mlkem768-x25519")
    fields = {"personnel_number": "123456", "source": "button", "note": "suspect ran"}
    sealed = seal_personal("officer_login", fields, key.public)
    text = json.dumps(sealed)
    assert "123456" not in text and "suspect" not in text and sealed["source"] == "button"
    assert open_personal("officer_login", sealed, key) == fields


def test_nothing_personal_is_left_alone() -> None:
    fields = {"path": "ready/x/000000.seg", "officer": None}
    assert seal_personal("segment_sealed", fields, KEY.public) is fields


def test_wrong_key_or_moved_to_another_event_does_not_open() -> None:
    sealed = seal_personal("marker", {"note": "n"}, KEY.public)
    with pytest.raises(WrongKeyError, match="does not open"):
        open_personal("marker", sealed, generate_evidence_key())
    with pytest.raises(WrongKeyError, match="does not open"):
        open_personal("officer_login", sealed, KEY)


def test_journal_seals_personal_fields_and_names_the_boot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bodycamd.cli import main
    from bodycamd.clock import boot_id
    from bodycamd.evidence.keys import write_evidence_key_pair
    from bodycamd.journal import Journal
    from tests.evidence.helpers import make_keys

    keys = make_keys()
    write_evidence_key_pair(keys.evidence, tmp_path / "evidence.key")
    path = tmp_path / "journal.db"
    journal = Journal(path, keys.device, seal_to=keys.evidence.public)
    journal.audit("officer_login", personnel_number="987654", source="button")
    journal.audit("marker", note="the suspect ran north")
    assert journal.verify(keys.device_public).ok  # verifiable without any key
    journal.close()
    on_flash = b"".join(p.read_bytes() for p in tmp_path.glob("journal.db*"))
    assert b"987654" not in on_flash and b"suspect" not in on_flash
    out = tmp_path / "trail.jsonl"
    args = ["audit", "export", "--journal", str(path), "-o", str(out)]
    assert main([*args, "--key", str(tmp_path / "evidence.key")]) == 0
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert events[0]["fields"]["personnel_number"] == "987654"
    assert events[1]["fields"]["note"] == "the suspect ran north"
    assert {e["fields"]["boot"] for e in events} == {boot_id().hex()}
    out.unlink()
    assert main(args) == 0  # without the key: sealed, still exported
    assert "987654" not in out.read_text()
