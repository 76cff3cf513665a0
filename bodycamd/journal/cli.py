"""`bodycamd audit verify | export`: check and export the device's audit trail."""

from __future__ import annotations

import argparse
import dataclasses
import sqlite3
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from ..config import DEFAULT_CONFIG_PATH, load_config
from ..errors import KeyFileError, StorageError
from ..evidence.keys import (
    device_public_key_of,
    load_device_key,
    load_device_public_key,
    load_evidence_private_key,
)
from ..evidence.sealed import open_personal
from ..storage.layout import StateLayout
from .audit import read_events, verify_audit


def add_commands(commands: Any) -> None:
    audit = commands.add_parser("audit", help="verify or export the audit trail")
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    for name, text in (
        ("verify", "check the hash chain and signatures"),
        ("export", "write the trail as JSON lines"),
    ):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)
        sub.add_argument("--journal", type=Path, help="journal.db (default: from the config)")
        if name == "verify":
            sub.add_argument(
                "--device-key",
                action="append",
                metavar="KEY",
                help="a trusted device public key, as `bodycamd keys show` prints it or a file "
                "holding that (repeatable; default: this device's key and its retired copies)",
            )
        else:
            sub.add_argument("-o", "--output", type=Path, help="file (default: stdout)")
            sub.add_argument(
                "--key",
                type=Path,
                help="evidence private key (back end): open the sealed personal fields",
            )


def _open(args: argparse.Namespace) -> tuple[sqlite3.Connection, StateLayout | None]:
    layout = None
    path = args.journal
    if path is None:
        layout = StateLayout(load_config(args.config).device.state_dir)
        path = layout.journal
    if not path.exists():
        raise StorageError(f"{path}: no journal here")
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True), layout
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: cannot open the journal: {exc}") from exc


def _device_key_files(layout: StateLayout | None) -> list[Path]:
    """This device's key and its retired copies (keys/device.key.retired-*), newest first."""
    if layout is None:
        return []
    paths = [layout.device_key] if layout.device_key.exists() else []
    paths += sorted(layout.device_key.parent.glob(f"{layout.device_key.name}.retired-*"))[::-1]
    return paths


def _lookup_keys(paths: list[Path]) -> list[ed25519.Ed25519PublicKey]:
    """With --device-key given, this device's key files are only where an older rotation
    event's key is found by fingerprint: their public halves are all that is needed, so the
    mode check (which guards signing and trusting) does not apply, and a file that cannot be
    read is skipped with a note rather than stopping a verify that does not need it."""
    keys = []
    for path in paths:
        try:
            keys.append(device_public_key_of(path))
        except KeyFileError as exc:
            print(f"note: {exc}; not used to look keys up", file=sys.stderr)
    return keys


def dispatch(args: argparse.Namespace) -> int:
    db, layout = _open(args)
    try:
        if args.audit_command == "export":
            out = args.output.open("w") if args.output else sys.stdout
            try:
                count = 0
                opener = load_evidence_private_key(args.key) if args.key else None
                for event in read_events(db):
                    if opener is not None:
                        opened = open_personal(event.kind, event.fields, opener)
                        event = dataclasses.replace(event, fields=opened)
                    out.write(event.to_json() + "\n")
                    count += 1
            finally:
                if args.output:
                    out.close()
            print(f"exported {count} audit event(s)", file=sys.stderr)
            return 0
        files = _device_key_files(layout)
        if args.device_key:  # trusted as given; this device's files only a lookup
            trusted = [load_device_public_key(text) for text in args.device_key]
            own = _lookup_keys(files)
        else:  # trusted by default: loaded as the daemon loads them, or refused
            trusted = own = [load_device_key(path).public_key() for path in files]
        if not trusted:
            raise StorageError("no device key: give --device-key or --config")
        report = verify_audit(db, trusted, own)
    finally:
        db.close()
    for line in report.key_lines():
        print(line)
    for problem in report.problems:
        print(problem)
    verdict = "OK" if report.ok else f"FAILED ({len(report.problems)} problem(s))"
    print(f"audit trail: {report.events} event(s), {verdict}")
    return 0 if report.ok else 1
