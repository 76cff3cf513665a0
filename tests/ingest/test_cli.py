"""`bodycamd-ingest` operator commands: init, enroll, revoke, list, verify, receipt,
audit verify — exit codes and the one-line errors."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path

import pytest

from bodycamd.errors import KeyFileError
from bodycamd.ingest import cli
from bodycamd.ingest.app import running_ingest
from bodycamd.ingest.pki import server_ssl_context

from .helpers import Rig, make_csr, run_cli
from .test_verification import upload


def test_init_writes_private_files_0600_and_refuses_to_overwrite(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("ca.key", "server.key", "receipt.key"):
        assert stat.S_IMODE((rig.directory / name).stat().st_mode) == 0o600
    assert cli.main(["init", str(rig.directory), "--host", "x"]) == 2
    assert "already exists; refusing to overwrite" in capsys.readouterr().err


def test_enroll_checks_the_request(
    rig: Rig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, csr = make_csr(tmp_path, "cam-1")
    base = ["enroll", "-c", str(rig.directory), "--csr", str(csr)]
    key = "device public key: " + "A" * 43 + "="
    assert cli.main([*base, "--device-key", key, "--device", "cam-9"]) == 2
    assert "is for device 'cam-1'; expected 'cam-9'" in capsys.readouterr().err
    assert cli.main([*base, "--device-key", "not a key"]) == 2
    assert "expected a device public key" in capsys.readouterr().err
    _, bad = make_csr(tmp_path, "no spaces allowed")
    assert (
        cli.main(["enroll", "-c", str(rig.directory), "--csr", str(bad), "--device-key", key]) == 2
    )
    assert "expected 1-64 letters" in capsys.readouterr().err
    assert cli.main([*base, "--device-key", key]) == 0
    capsys.readouterr()
    assert cli.main([*base, "--device-key", key]) == 2
    assert "already enrolled" in capsys.readouterr().err
    assert cli.main([*base, "--device-key", key, "--replace"]) == 0


def test_ingest_private_keys_others_can_read_are_refused(
    rig: Rig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CA key (read by enroll) and the server key (read by OpenSSL at serve) get the same
    check as every other private key, naming the chmod that fixes them."""
    ca_key, server_key = rig.directory / "ca.key", rig.directory / "server.key"
    ca_key.chmod(0o644)
    _, csr = make_csr(tmp_path, "cam-1")
    key = "device public key: " + "A" * 43 + "="
    base = ["enroll", "-c", str(rig.directory), "--csr", str(csr), "--device-key", key]
    assert cli.main(base) == 2
    assert f"mode 0644); it must be readable by its owner only: chmod 600 {ca_key}" in (
        capsys.readouterr().err
    )
    ca_key.chmod(0o600)
    assert cli.main(base) == 0
    server_key.chmod(0o640)
    with pytest.raises(KeyFileError, match=rf"mode 0640\); .*: chmod 600 {server_key}$"):
        server_ssl_context(rig.config)


def test_revoke_unknown_device(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["revoke", "-c", str(rig.directory), "cam-0"]) == 2
    assert "not enrolled" in capsys.readouterr().err


async def test_list_verify_receipt_and_audit(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    camera = rig.enroll("cam-1")
    whole, broken = uuid.uuid4(), uuid.uuid4()
    segments = [camera.segment(whole, end=False), camera.segment(whole, end=True)]
    gap = [camera.segment(broken, end=False), camera.segment(broken, end=False)]
    gap.append(camera.segment(broken, end=True))
    async with running_ingest(rig.config, port=0) as server, rig.client(camera, server.url) as c:
        for sealed in [*segments, gap[0], gap[2]]:
            answer = await upload(c, camera, sealed.path.read_bytes(), camera.metadata(sealed))
            assert answer.status_code == 204
    capsys.readouterr()
    assert run_cli(["list", "-c", str(rig.directory)]) == 0
    listing = capsys.readouterr().out
    assert f"recording {whole}: 2 segment(s)" in listing
    assert f"recording {broken}: 2 segment(s)" in listing
    assert "complete\n" in listing and "gap (segment 1 missing)" in listing
    assert run_cli(["verify", "-c", str(rig.directory)]) == 1
    report = capsys.readouterr().out
    assert f"ok   cam-1/{whole}: chain of 2, end-of-recording" in report
    assert f"FAIL cam-1/{broken}: segment 1 of recording {broken} is missing" in report
    digest = segments[0].digest.hex()
    assert run_cli(["receipt", "-c", str(rig.directory), digest]) == 0
    assert json.loads(capsys.readouterr().out)["receipt"]["digest"] == digest
    assert run_cli(["receipt", "-c", str(rig.directory), "0" * 64]) == 1
    assert run_cli(["audit", "verify", "-c", str(rig.directory)]) == 0
    assert "entries, chain and signatures valid" in capsys.readouterr().out


async def test_verify_finds_altered_footage(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    camera = rig.enroll("cam-1")
    sealed = camera.segment()
    async with running_ingest(rig.config, port=0) as server, rig.client(camera, server.url) as c:
        answer = await upload(c, camera, sealed.path.read_bytes(), camera.metadata(sealed))
        assert answer.status_code == 204
    assert run_cli(["verify", "-c", str(rig.directory)]) == 0
    [stored] = (rig.config.path(rig.config.store_path) / "segments").glob("**/*.seg")
    data = bytearray(stored.read_bytes())
    data[5000] ^= 1
    stored.write_bytes(bytes(data))
    capsys.readouterr()
    assert run_cli(["verify", "-c", str(rig.directory)]) == 1
    assert "FAIL cam-1/" in capsys.readouterr().out


@pytest.mark.parametrize("tamper", ["edit", "drop", "swap"])
def test_audit_verify_finds_tampering(
    rig: Rig, tamper: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("cam-1", "cam-2", "cam-3"):
        rig.enroll(name)
    log = rig.config.path(rig.config.store_path) / "audit.log"
    lines = log.read_bytes().splitlines(keepends=True)
    if tamper == "edit":
        lines[1] = lines[1].replace(b"cam-2", b"cam-X")
    elif tamper == "drop":
        del lines[1]
    else:
        lines[1], lines[2] = lines[2], lines[1]
    log.write_bytes(b"".join(lines))
    capsys.readouterr()
    assert run_cli(["audit", "verify", "-c", str(rig.directory)]) == 1
    assert "audit entry 1:" in capsys.readouterr().err
