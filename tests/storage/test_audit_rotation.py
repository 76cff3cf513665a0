"""`bodycamd audit verify` across device-key rotations: every event is checked against the key
the trail says is in force, and the keys given decide what is vouched for (journal/signers.py).

Real journals, real keys, and the real `bodycamd keys rotate --i-understand` path."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from bodycamd.cli import main
from bodycamd.config import load_config
from bodycamd.evidence.keys import device_public_raw, fingerprint, load_device_key
from bodycamd.journal import Journal
from bodycamd.journal.audit import append_event
from tests.conftest import write_config


class Device:
    """A state directory driven through the CLI, as an operator would."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.config = write_config(tmp_path)
        self.capsys = capsys
        self.state = load_config(self.config).device.state_dir
        self.journal = self.state / "journal.db"

    def show(self) -> str:
        """`bodycamd keys show`, exactly as printed (made on first use)."""
        self.capsys.readouterr()
        assert main(["keys", "show", "--config", str(self.config)]) == 0
        return self.capsys.readouterr().out

    def key(self) -> ed25519.Ed25519PrivateKey:
        return load_device_key(self.state / "keys" / "device.key")

    def events(self, *kinds: str) -> None:
        journal = Journal(self.journal, self.key())
        for kind in kinds:
            journal.audit(kind, note="x")
        journal.close()

    def rotate(self) -> None:
        assert main(["keys", "rotate", "--config", str(self.config), "--i-understand"]) == 0

    def verify(self, *keys: str) -> tuple[int, list[str]]:
        """`audit verify` on the device (no keys) or on the journal alone with the keys."""
        self.capsys.readouterr()
        if keys:
            args = ["--journal", str(self.journal)]
            for key in keys:
                args += ["--device-key", key]
        else:
            args = ["--config", str(self.config)]
        code = main(["audit", "verify", *args])
        return code, self.capsys.readouterr().out.splitlines()


def name(shown: str) -> str:
    return shown.splitlines()[1].removeprefix("fingerprint: ")


@pytest.fixture
def device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Device:
    return Device(tmp_path, capsys)


def test_rotation_with_the_old_key_verifies_with_either_key(device: Device) -> None:
    old = device.show()
    device.events("daemon_start", "recording_start")  # events 1, 2
    device.rotate()  # event 3, signed by the old key
    new = device.show()
    device.events("daemon_start", "marker")  # 4, 5
    with sqlite3.connect(device.journal) as db:
        fields = db.execute("SELECT fields FROM audit WHERE seq = 3").fetchone()[0]
    assert f'"old_public":"{old.split()[3]}"' in fields  # the retiring key, whole
    code, out = device.verify()  # this device's key and its retired copy
    assert code == 0, out
    assert out == [
        f"signer 1: key {name(old)}: signed events 1 to 3 (trusted)",
        f"signer 2: key {name(new)}: signed events 4 to 5 (trusted)",
        f"trust anchor: key {name(new)}; it vouches for events 1 to 5",
        "audit trail: 5 event(s), OK",
    ]
    code, out = device.verify(old)  # the enrolled key only: the rotation hands trust on
    assert code == 0, out
    assert (
        out[1]
        == f"signer 2: key {name(new)}: signed events 4 to 5 (trust handed forward by event 3)"
    )
    assert out[2] == f"trust anchor: key {name(old)}; it vouches for events 1 to 5"
    code, out = device.verify(new)  # the new key only: its events vouch for all before
    assert code == 0, out
    assert out[0] == f"signer 1: key {name(old)}: signed events 1 to 3 (not trusted)"


def test_lost_key_rotation_needs_the_new_key(device: Device) -> None:
    old = device.show()
    device.events("daemon_start", "recording_start")  # 1, 2
    (device.state / "keys" / "device.key").unlink()  # lost
    device.rotate()  # 3, signed by the new key: nothing the old key vouches for
    new = device.show()
    device.events("daemon_start")  # 4
    code, out = device.verify(old)
    assert code == 1
    assert (
        "events 3 to 4: not vouched for by any key given: the old key was lost at event 3; "
        "give the new key with --device-key"
    ) in out
    assert out[0] == f"signer 1: key {name(old)}: signed events 1 to 2 (trusted)"
    code, out = device.verify(new)
    assert code == 0, out
    assert out[0] == (
        "signer 1: a key the trail does not name (lost): signed events 1 to 2 (not trusted; not "
        "known here: its signatures were not checked)"
    )
    assert device.verify(old, new)[0] == 0
    assert device.verify()[0] == 0  # on the device: its current key is the new one


def forge_rotation(journal: Path, attacker: ed25519.Ed25519PrivateKey, old: str | None) -> None:
    """What a thief with a fresh key can do: append a rotation and an event after it,
    chained correctly (append_event computes the hashes as the device does)."""
    raw = device_public_raw(attacker)
    db = sqlite3.connect(journal, isolation_level=None)
    fields = {"old_key": None, "old_public": None}
    if old is not None:
        shown = old.splitlines()[0].removeprefix("device public key: ")
        fields = {"old_key": name(old), "old_public": shown}
    fields |= {"new_key": fingerprint(raw), "new_public": base64.b64encode(raw).decode()}
    append_event(db, attacker, "device_key_rotated", fields)
    append_event(db, attacker, "recording_stop", {"reason": "forged"})
    db.close()


def shown(key: ed25519.Ed25519PrivateKey) -> str:
    raw = device_public_raw(key)
    return f"device public key: {base64.b64encode(raw).decode()}\nfingerprint: {fingerprint(raw)}"


def test_a_forged_lost_key_rotation_fails_unless_its_key_is_given(device: Device) -> None:
    real = device.show()
    device.events("daemon_start", "recording_start", "marker")  # 1-3
    attacker = ed25519.Ed25519PrivateKey.generate()
    forge_rotation(device.journal, attacker, None)  # 4, 5
    for keys in [(), (real,)]:
        code, out = device.verify(*keys)
        assert code == 1
        assert (
            "events 4 to 5: not vouched for by any key given: the old key was lost at event 4; "
            "give the new key with --device-key"
        ) in out
    assert device.verify(real, shown(attacker))[0] == 0  # the operator vouches for it


def test_a_forged_rotation_of_the_real_key_always_fails(device: Device) -> None:
    real = device.show()
    device.events("daemon_start", "recording_start")  # 1, 2
    attacker = ed25519.Ed25519PrivateKey.generate()
    forge_rotation(device.journal, attacker, real)  # 3 claims to retire the real key
    for keys in [(real,), (real, shown(attacker))]:
        code, out = device.verify(*keys)
        assert code == 1
        assert any(
            line.startswith("event 3 (device_key_rotated): bad device signature") for line in out
        )


def test_an_event_signed_by_another_key_in_the_middle_is_named(device: Device) -> None:
    old = device.show()
    device.events("daemon_start")  # 1
    device.rotate()  # 2
    new = device.show()
    device.events("recording_start")  # 3
    other = ed25519.Ed25519PrivateKey.generate()
    db = sqlite3.connect(device.journal, isolation_level=None)
    append_event(db, other, "marker", {"note": "inserted"})  # 4, chained correctly
    db.close()
    device.events("recording_stop")  # 5, by the device again
    code, out = device.verify(old)
    assert code == 1
    assert f"event 4 (marker): bad device signature (the key in force is {name(new)})" in out
    code, out = device.verify(old, shown(other))  # a known key is named as the signer
    assert code == 1
    assert (
        f"event 4 (marker): bad device signature: signed by {fingerprint(device_public_raw(other))}"
        f", not by the key in force {name(new)}"
    ) in out


def test_an_older_rotation_event_without_old_public_finds_the_retired_key(device: Device) -> None:
    """Rotation events written before `old_public` existed name the old key by fingerprint
    only: it is found among this device's retired keys, or the keys given."""
    old = device.show()
    device.events("daemon_start")  # 1
    device.rotate()  # 2
    with sqlite3.connect(device.journal) as db:  # as an older bodycamd wrote it: re-signed
        db.execute("DELETE FROM audit WHERE seq = 2")
    key_dir = device.state / "keys"
    retired = next(key_dir.glob("device.key.retired-*"))
    new = device.key()
    raw = device_public_raw(new)
    db = sqlite3.connect(device.journal, isolation_level=None)
    append_event(
        db,
        load_device_key(retired),
        "device_key_rotated",
        {
            "old_key": name(old),
            "new_key": fingerprint(raw),
            "new_public": base64.b64encode(raw).decode(),
        },
    )
    db.close()
    device.events("recording_start")  # 3
    code, out = device.verify()
    assert code == 0, out
    assert out[0] == f"signer 1: key {name(old)}: signed events 1 to 2 (trusted)"
    code, out = device.verify(old)  # given: found by fingerprint, trust handed on
    assert code == 0, out
    code, out = device.verify(shown(new))  # the retired key is not known to this verifier
    assert code == 0, out
    assert out[0].endswith("(not trusted; not known here: its signatures were not checked)")


def test_a_rotation_by_a_retired_key_is_named(device: Device) -> None:
    """Whoever kept a retired key cannot take the trail back: a later rotation that names the
    retired key as the one it retires (signed by it, chained correctly) is not the key in
    force, and verify names that event whichever keys are given."""
    old = device.show()
    retired = device.key()
    device.events("daemon_start")  # 1
    device.rotate()  # 2: old -> new, signed by old
    new = device.show()
    device.events("recording_start")  # 3, by new
    attacker = ed25519.Ed25519PrivateKey.generate()
    db = sqlite3.connect(device.journal, isolation_level=None)
    raw_old, raw_attacker = device_public_raw(retired), device_public_raw(attacker)
    fields = {
        "old_key": fingerprint(raw_old),
        "old_public": base64.b64encode(raw_old).decode(),
        "new_key": fingerprint(raw_attacker),
        "new_public": base64.b64encode(raw_attacker).decode(),
    }
    append_event(db, retired, "device_key_rotated", fields)  # 4
    append_event(db, attacker, "recording_stop", {"reason": "forged"})  # 5
    db.close()
    for keys in [(old,), (new,), (old, new, shown(attacker))]:
        code, out = device.verify(*keys)
        assert code == 1, out
        assert any(line.startswith("event 4 (device_key_rotated)") for line in out), out


def resign_everything(journal: Path, key: ed25519.Ed25519PrivateKey) -> None:
    """What the holder of the new key can do after a lost-key rotation: rewrite the whole
    trail, every event signed by the new key and every hash recomputed."""
    db = sqlite3.connect(journal, isolation_level=None)
    rows = db.execute("SELECT kind, fields FROM audit ORDER BY seq").fetchall()
    db.execute("DELETE FROM audit")
    for kind, fields in rows:
        append_event(db, key, kind, json.loads(fields))
    db.close()


def test_events_before_a_lost_key_rotation_are_never_vouched_for_by_its_new_key(
    device: Device,
) -> None:
    """The key a lost-key rotation brings in did not exist before it: it is never taken as
    the signer of the events before it, and when the verifier holds a key that could have
    signed them (the enrolled old key) and none does, verify names those events."""
    old = device.show()
    device.events("daemon_start", "recording_start")  # 1, 2
    (device.state / "keys" / "device.key").unlink()  # lost
    device.rotate()  # 3
    new = device.show()
    device.events("daemon_start")  # 4
    resign_everything(device.journal, device.key())
    signed_by_new = (
        f", but by key {name(new)}, which the rotation at event 3 brought in: it cannot vouch "
        "for events before it"
    )
    unknown = " (they precede event 3, a rotation after a lost key)"
    for keys, why in [((old, new), signed_by_new), ((old,), unknown)]:
        code, out = device.verify(*keys)
        assert code == 1, out
        assert out[0] == (
            "signer 1: a key the trail does not name (lost): signed events 1 to 2 (not trusted; "
            "not known here: its signatures were not checked)"
        ), out
        assert f"events 1 to 2: signed by none of the keys given{why}" in out, "\n".join(out)
    # only the enrolled old key can tell: the new key alone sees a trail like an honest one
    code, out = device.verify(new)
    assert code == 0, out
    assert out[0].endswith("(not trusted; not known here: its signatures were not checked)")


def verify_on_device_with(device: Device, *keys: str) -> tuple[int, list[str], str]:
    """`audit verify --config ... --device-key ...`: the keys given are trusted; this
    device's key files are only where an older rotation event's key is looked up."""
    device.capsys.readouterr()
    args = ["audit", "verify", "--config", str(device.config)]
    for key in keys:
        args += ["--device-key", key]
    code = main(args)
    captured = device.capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_device_key_files_are_only_a_lookup_when_keys_are_given(device: Device) -> None:
    """With --device-key, a retired copy that others can read or that is not a key file
    does not stop the verify: the files are only looked up by fingerprint (their public
    halves, checked against the fingerprint the trail names), and one that cannot be read is
    skipped with a note. Without --device-key they are the trusted keys, and loaded as such."""
    old = device.show()
    device.events("daemon_start", "recording_start")  # 1, 2
    device.rotate()  # 3
    new = device.show()
    device.events("marker")  # 4
    key_dir = device.state / "keys"
    retired = next(key_dir.glob("device.key.retired-*"))
    retired.chmod(0o644)  # readable by others
    broken = key_dir / "device.key.retired-0"
    broken.write_text("not a key\n")
    broken.chmod(0o600)
    code, out, err = verify_on_device_with(device, new)
    assert code == 0, (out, err)
    assert out[0] == f"signer 1: key {name(old)}: signed events 1 to 3 (not trusted)"
    assert f"note: {broken}: expected the Ed25519 device key as unencrypted PEM" in err
    assert "not used to look keys up" in err
    assert str(retired) not in err  # its public half is all a lookup needs
    code, out, err = verify_on_device_with(device)  # trusted: loaded as the daemon does
    assert code != 0 and ("accessible by others" in err or "expected the Ed25519" in err), err
