"""Personal fields of audit events: sealed to the evidence key, opened only by the back end."""

from __future__ import annotations

import json

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
