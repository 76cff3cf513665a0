"""The operator tool end to end on files written by the device code."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from bodycamd.cli import main
from bodycamd.evidence.keys import load_evidence_private_key
from bodycamd.evidence.writer import SegmentInfo, SegmentWriter
from tests.conftest import write_config
from tests.evidence.helpers import Keys, make_keys


@pytest.fixture
def back_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Keys:
    assert main(["keys", "init-evidence", str(tmp_path / "evidence.key")]) == 0
    out = capsys.readouterr().out
    assert "never copy it to a device" in out and "fingerprint:" in out
    assert (tmp_path / "evidence.key").stat().st_mode & 0o777 == 0o600
    keys = make_keys()
    return Keys(load_evidence_private_key(tmp_path / "evidence.key"), keys.device)


def test_init_evidence_refuses_to_overwrite(
    tmp_path: Path, back_end: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "init-evidence", str(tmp_path / "evidence.key")]) == 1
    assert "already exists; refusing to overwrite a key" in capsys.readouterr().err


def test_decrypt_complete_and_torn(
    tmp_path: Path, back_end: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = uuid.uuid4()
    whole = SegmentWriter(
        tmp_path / "000000.part",
        SegmentInfo(recording, 0),
        back_end.evidence.public,
        back_end.device,
    )
    whole.write(b"A" * 100_000)
    first = whole.seal(end_of_recording=False)
    torn = SegmentWriter(
        tmp_path / "000001.part",
        SegmentInfo(recording, 1, first.digest),
        back_end.evidence.public,
        back_end.device,
    )
    torn.write(b"B" * 5000)
    torn.checkpoint()
    torn.write(b"C" * 70_000)  # one whole record reaches the file, unvouched; the rest is lost
    torn.abandon()
    key = str(tmp_path / "evidence.key")
    out = tmp_path / "out.ts"
    files = [str(first.path), str(tmp_path / "000001.part")]

    assert main(["evidence", "decrypt", "--key", key, *files, "-o", str(out)]) == 1
    assert "refusing without --allow-torn" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".out.ts*"))

    assert main(["evidence", "decrypt", "--key", key, *files, "-o", str(out), "--allow-torn"]) == 0
    err = capsys.readouterr().err
    assert "[2/2]" in err
    assert "signatures vouch for 5000 bytes in 1 records, 1 record(s) after the last" in err
    assert out.read_bytes() == b"A" * 100_000 + b"B" * 5000 + b"C" * 65_512


def test_inspect_and_verify(
    tmp_path: Path, back_end: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = SegmentWriter(
        tmp_path / "000000.part",
        SegmentInfo(uuid.uuid4(), 0, device_name="cam-3", clock_synced=True),
        back_end.evidence.public,
        back_end.device,
    )
    writer.write(b"x" * 10)
    sealed = writer.seal(end_of_recording=True)
    assert main(["evidence", "inspect", str(sealed.path)]) == 0
    out = capsys.readouterr().out
    assert "recording:  " in out and ", segment 0" in out
    assert "device:     cam-3, key " in out
    assert "verdict:    complete" in out
    assert "(clock synchronised)" in out
    assert f"sha256:     {sealed.digest.hex()}" in out

    device = base64.b64encode(back_end.device.public_key().public_bytes_raw()).decode()
    assert main(["evidence", "verify", "--device-key", device, str(sealed.path)]) == 0
    assert "chain OK, 1 segment(s), ends end-of-recording" in capsys.readouterr().out
    other = base64.b64encode(make_keys().device.public_key().public_bytes_raw()).decode()
    assert main(["evidence", "verify", "--device-key", other, str(sealed.path)]) == 1
    assert "FAILED: header: segment signed by another device" in capsys.readouterr().out


def test_keys_show_prints_the_device_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    assert main(["keys", "show", "--config", str(config)]) == 0
    first = capsys.readouterr()
    assert "created device key" in first.err
    assert main(["keys", "show", "--config", str(config)]) == 0
    second = capsys.readouterr()
    assert second.out == first.out and "created" not in second.err
    assert first.out.startswith("device public key: ") and "fingerprint: " in first.out


def test_malformed_key_files_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bodycamd.errors import KeyFileError
    from bodycamd.evidence.keys import load_evidence_private_key, load_evidence_public_key

    bad = tmp_path / "evidence.pub"
    bad.write_text("-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----\n")
    with pytest.raises(KeyFileError, match=r"evidence\.pub: not a bodycamd evidence public key"):
        load_evidence_public_key(bad)
    bad.write_text("bodycamd evidence public key v1\nkem: rsa\nkey: AAAA\n")
    with pytest.raises(KeyFileError, match=r"kem: expected x25519 or mlkem768-x25519, got 'rsa'"):
        load_evidence_public_key(bad)
    bad.write_text("bodycamd evidence public key v1\nkem: x25519\nkey: AAAA\n")
    with pytest.raises(KeyFileError, match=r"not a valid x25519 public key \(expected 32 bytes"):
        load_evidence_public_key(bad)
    with pytest.raises(KeyFileError, match="not a bodycamd evidence PRIVATE key"):
        load_evidence_private_key(bad)  # a public key where the private one belongs
    assert (
        main(["evidence", "decrypt", "--key", str(bad), str(bad), "-o", str(tmp_path / "o.ts")])
        == 1
    )
    assert capsys.readouterr().err.startswith("bodycamd: ")
