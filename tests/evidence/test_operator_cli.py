"""The operator tool end to end on files written by the device code."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from bodycamd.cli import main
from bodycamd.evidence import format as fmt
from bodycamd.evidence.keys import load_evidence_private_key
from bodycamd.evidence.reader import scan_segment
from bodycamd.evidence.recovery import seal_torn
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


def recording(
    directory: Path, keys: Keys, count: int, *, torn_last: bool = False
) -> tuple[list[Path], bytes]:
    """A recording of `count` segments (the last one cut by a power loss and recovered when
    `torn_last`); returns its files, named so that file-name order is NOT index order."""
    rec = uuid.uuid4()
    prev, paths, plain = b"\0" * 32, [], b""
    for index in range(count):
        name = f"z{count - index}-{rec.hex[:6]}"
        writer = SegmentWriter(
            directory / f"{name}.part",
            SegmentInfo(rec, index, prev, "cam-7"),
            keys.evidence.public,
            keys.device,
        )
        piece = f"<{rec.hex[:6]} segment {index}>".encode() * 3000
        writer.write(piece)
        if torn_last and index == count - 1:
            writer.checkpoint()
            writer.write(b"lost in the power cut")
            writer.abandon()
            paths.append(seal_torn(directory / f"{name}.part", keys.device).path)
            plain += piece
            break
        sealed = writer.seal(end_of_recording=index == count - 1)
        prev, plain = sealed.digest, plain + piece
        paths.append(sealed.path)
    return paths, plain


def decrypt(tmp_path: Path, files: list[Path], *extra: str) -> int:
    key = str(tmp_path / "evidence.key")
    return main(
        ["evidence", "decrypt", "--key", key, *map(str, files), "-o", str(tmp_path / "out"), *extra]
    )


def outputs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else []


def test_decrypt_orders_by_index_and_writes_one_file_per_recording(
    tmp_path: Path, back_end: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    first, first_plain = recording(tmp_path, back_end, 3)
    second, second_plain = recording(tmp_path, back_end, 2)
    files = sorted([*first, *second], reverse=True)  # mixed and in the wrong order
    assert decrypt(tmp_path, files) == 0
    err = capsys.readouterr().err
    assert "origin not checked" in err
    contents = {p.read_bytes() for p in outputs(tmp_path)}
    assert contents == {first_plain, second_plain}
    rec = scan_segment(first[0]).header.recording_id
    assert (tmp_path / "out" / f"{rec}.ts").read_bytes() == first_plain
    # never overwrites: the same command again refuses and leaves the outputs alone
    assert decrypt(tmp_path, files) == 1
    assert "already exists; refusing to overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("case", "kind"),
    [
        ("drop-first", "missing"),
        ("drop-middle", "missing"),
        ("drop-last", "missing"),
        ("duplicate", "duplicated"),
        ("interrupted", "interrupted"),
    ],
)
def test_decrypt_refuses_a_chain_fault_unless_accepted_by_name(
    tmp_path: Path, back_end: Keys, capsys: pytest.CaptureFixture[str], case: str, kind: str
) -> None:
    paths, _ = recording(tmp_path, back_end, 3, torn_last=case == "interrupted")
    files = {
        "drop-first": paths[1:],
        "drop-middle": [paths[0], paths[2]],
        "drop-last": paths[:2],
        "duplicate": [*paths, paths[1]],
        "interrupted": paths,
    }[case]
    assert decrypt(tmp_path, files) == 1
    err = capsys.readouterr()
    assert f"{kind}: " in err.out and "nothing written" in err.err
    assert outputs(tmp_path) == []
    other = "torn-middle"
    assert decrypt(tmp_path, files, "--accept", other) == 1
    assert outputs(tmp_path) == []
    assert decrypt(tmp_path, files, "--accept", kind) == 0
    assert len(outputs(tmp_path)) == 1


def test_decrypt_never_accepts_a_segment_of_another_device(
    tmp_path: Path, back_end: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    paths, _ = recording(tmp_path, back_end, 2)
    verdict = scan_segment(paths[1])
    paths[1].unlink()
    forger = Keys(back_end.evidence, make_keys().device)
    forged = SegmentWriter(
        tmp_path / "forged.part",
        SegmentInfo(verdict.header.recording_id, 1, verdict.header.prev_digest),
        back_end.evidence.public,
        forger.device,
    )
    forged.write(b"planted")
    files = [paths[0], forged.seal(end_of_recording=True).path]
    assert decrypt(tmp_path, files, "--accept", "missing") == 1
    assert "another-device: " in capsys.readouterr().out
    assert outputs(tmp_path) == []


def test_decrypt_names_an_altered_record_and_writes_nothing(
    tmp_path: Path, back_end: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = recording(tmp_path, back_end, 1)
    second, _ = recording(tmp_path, back_end, 1)
    raw = bytearray(second[0].read_bytes())
    raw[4096 + 8 + 100] ^= 1  # inside the first DATA record, before any checkpoint
    # the footer's hash would catch it keylessly; an unsealed file's unvouched tail would not
    torn = tmp_path / "tail.part"
    torn.write_bytes(raw[: len(raw) - 8 - fmt.FOOTER_BODY[2]])
    assert decrypt(tmp_path, [first[0], torn], "--accept", "truncated") == 1
    err = capsys.readouterr().err
    assert "record 0 (byte 4096): bad tag: the record was altered" in err
    assert outputs(tmp_path) == [] and not list((tmp_path / "out").glob(".*"))


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
    out = capsys.readouterr().out
    assert "chain OK; 1 segment(s), ends end-of-recording" in out
    assert "origin checked against the device key given" in out
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


def test_what_keys_show_prints_is_what_verify_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Round trip through the real CLI: the enrolment output goes straight into --device-key
    (as text, as a file) and into a registry line; a different device is refused."""
    config = write_config(tmp_path)
    assert main(["keys", "show", "--config", str(config)]) == 0
    shown = capsys.readouterr().out
    from bodycamd.config import load_config
    from bodycamd.evidence.keys import load_or_create_device_key

    state = load_config(config).device.state_dir
    device = load_or_create_device_key(state / "keys" / "device.key")
    keys = Keys(make_keys().evidence, device)
    paths, _ = recording(tmp_path, keys, 2)
    files = [str(p) for p in paths]
    (tmp_path / "shown.txt").write_text(shown)
    registry = tmp_path / "registry.txt"
    registry.write_text(f"# enrolled devices\ncam-7 {' '.join(shown.splitlines())}\n")
    for origin in (["--device-key", shown], ["--device-key", str(tmp_path / "shown.txt")]):
        assert main(["evidence", "verify", *origin, *files]) == 0, capsys.readouterr()
        assert "origin checked against the device key given" in capsys.readouterr().out
    assert main(["evidence", "verify", "--registry", str(registry), *files]) == 0
    assert "origin checked against the registry" in capsys.readouterr().out
    registry.write_text(f"cam-8 {' '.join(shown.splitlines())}\n")
    assert main(["evidence", "verify", "--registry", str(registry), *files]) == 1
    assert "device 'cam-7' is not enrolled in" in capsys.readouterr().out
    assert main(["evidence", "verify", *files]) == 0
    assert "origin not checked" in capsys.readouterr().out
    wrong = shown.replace(shown.split("fingerprint: ")[1][:4], "0000")
    assert main(["evidence", "verify", "--device-key", wrong, *files]) == 1
    assert "does not match the key" in capsys.readouterr().err


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
