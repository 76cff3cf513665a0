"""`bodycamd-ingest`: set up, enrol, serve and inspect the ingest.

    bodycamd-ingest init DIR --host NAME [--host NAME...] [--port 8443] [--listen ADDR]
    bodycamd-ingest enroll  [-c CONFIG] --csr FILE --device-key KEY [--device NAME]
                            [--out FILE] [--replace]
    bodycamd-ingest revoke  [-c CONFIG] DEVICE
    bodycamd-ingest serve   [-c CONFIG] [--port N]
    bodycamd-ingest list    [-c CONFIG]
    bodycamd-ingest verify  [-c CONFIG]
    bodycamd-ingest receipt [-c CONFIG] DIGEST
    bodycamd-ingest audit verify [-c CONFIG]

CONFIG is ingest.toml or the directory holding it (default /etc/bodycamd-ingest, or
$BODYCAMD_INGEST_CONFIG). Exit status: 0 done, 1 a check failed (verify, audit verify,
receipt not found), 2 bad input or setup (one line on stderr naming the thing).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from ..errors import BodycamError
from ..evidence.keys import atomic_write, load_device_public_key
from ..receipt import receipt_key_id
from ..systemd import Notifier
from .app import open_store, running_ingest
from .audit import AuditLog, verify_audit
from .config import IngestConfig, load_config
from .errors import AuditLogInvalid, EnrolmentError
from .pki import init_ingest, issue_device_certificate, load_receipt_key, serial_hex
from .report import list_store, verify_store
from .store import DeviceRecord, IngestStore

DEFAULT_CONFIG = Path("/etc/bodycamd-ingest")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bodycamd-ingest", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path(os.environ.get("BODYCAMD_INGEST_CONFIG", DEFAULT_CONFIG)),
        help="ingest.toml or its directory (default %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    init = commands.add_parser("init", help="create the CA, server certificate, receipt key")
    init.add_argument("directory", type=Path, metavar="DIR")
    init.add_argument("--host", action="append", required=True, help="server name or address")
    init.add_argument("--port", type=int, default=8443)
    init.add_argument("--listen", default="0.0.0.0", help="address to listen on")  # noqa: S104
    enroll = commands.add_parser("enroll", parents=[common], help="issue a device certificate")
    enroll.add_argument("--csr", type=Path, required=True, help="the camera's request (PEM)")
    enroll.add_argument(
        "--device-key", required=True, help="what `bodycamd keys show` prints, or a file of it"
    )
    enroll.add_argument("--device", help="refuse unless the request is for this device id")
    enroll.add_argument("--out", type=Path, help="certificate file (default DIR/issued/ID.pem)")
    enroll.add_argument("--replace", action="store_true", help="re-enrol an enrolled device")
    revoke = commands.add_parser("revoke", parents=[common], help="refuse a device from now on")
    revoke.add_argument("device")
    serve = commands.add_parser("serve", parents=[common], help="run the ingest server")
    serve.add_argument("--port", type=int, help="override [server] port (0: any free port)")
    commands.add_parser("list", parents=[common], help="recordings per device")
    commands.add_parser("verify", parents=[common], help="re-verify stored segments and chains")
    receipt = commands.add_parser("receipt", parents=[common], help="show a receipt")
    receipt.add_argument("digest")
    audit = commands.add_parser("audit", help="the ingest audit log")
    audit_actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    audit_actions.add_parser("verify", parents=[common], help="check chain and signatures")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "init":
            return _init(args)
        config = load_config(args.config)
        if args.command == "serve":
            return asyncio.run(_serve(config, args.port))
        return asyncio.run(_offline(config, args))
    except BodycamError as exc:
        print(f"bodycamd-ingest: {exc}", file=sys.stderr)
        return 2


def _init(args: argparse.Namespace) -> int:
    done = init_ingest(args.directory, args.host, args.port, args.listen)
    print(f"ingest configuration: {done.config}")
    print(f"device CA (pin on every camera): {done.ca_certificate}")
    print(f"receipt public key (every camera's config): {done.receipt_public}")
    print(f"receipt key id: {done.receipt_key_id}")
    return 0


async def _offline(config: IngestConfig, args: argparse.Namespace) -> int:
    store = open_store(config)
    try:
        key = load_receipt_key(config.path(config.receipts.key))
        audit = AuditLog(store, key, _now)
        if args.command == "enroll":
            return await _enroll(config, store, audit, args)
        if args.command == "revoke":
            device = await store.get_device(args.device)
            if device is None:
                raise EnrolmentError(f"device {args.device!r} is not enrolled")
            revoked_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            await store.put_device(
                DeviceRecord(**{**vars(device), "revoked": True, "revoked_at": revoked_at})
            )
            await audit.record("device.revoked", device=args.device, serial=device.cert_serial)
            print(f"revoked {args.device}; its uploads are refused from now on")
            return 0
        trusted = {receipt_key_id(key.public_key()): key.public_key()}
        if args.command == "list":
            await list_store(store, sys.stdout)
            return 0
        if args.command == "verify":
            return await verify_store(store, trusted, sys.stdout)
        if args.command == "receipt":
            stored = await store.get_receipt(args.digest.lower())
            if stored is None:
                print(f"no receipt for {args.digest}", file=sys.stderr)
                return 1
            print(stored.wire.decode())
            return 0
        try:
            summary = await verify_audit(store, trusted)
        except AuditLogInvalid as exc:
            print(f"audit log: {exc}", file=sys.stderr)
            return 1
        print(f"audit log: {summary.entries} entries, chain and signatures valid")
        print(f"last entry hash: {summary.last_hash}")
        return 0
    finally:
        await store.close()


def _now() -> float:
    return dt.datetime.now(dt.UTC).timestamp()


async def _enroll(
    config: IngestConfig, store: IngestStore, audit: AuditLog, args: argparse.Namespace
) -> int:
    try:
        csr = args.csr.read_bytes()
    except OSError as exc:
        raise EnrolmentError(f"{args.csr}: cannot read ({exc.strerror or exc})") from exc
    signing_key = load_device_public_key(args.device_key)
    device_id, cert = issue_device_certificate(config, csr, args.device)
    existing = await store.get_device(device_id)
    if existing is not None and not existing.revoked and not args.replace:
        raise EnrolmentError(
            f"device {device_id!r} is already enrolled (serial {existing.cert_serial}); "
            "use --replace to issue a new certificate and retire the old one"
        )
    out = args.out or config.directory / "issued" / f"{device_id}.pem"
    atomic_write(out, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    record = DeviceRecord(
        device_id=device_id,
        signing_key=base64.b64encode(signing_key.public_bytes_raw()).decode(),
        cert_serial=serial_hex(cert),
        enrolled_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    await store.put_device(record)
    await audit.record(
        "device.enrolled",
        device=device_id,
        serial=record.cert_serial,
        signing_key=record.signing_key,
        replaced=existing is not None,
    )
    print(f"enrolled {device_id}: certificate {out}")
    print(f"device CA for the camera: {config.path(config.tls.ca_certificate)}")
    return 0


async def _serve(config: IngestConfig, port: int | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    notifier = Notifier()
    try:
        async with running_ingest(config, port=port) as server:
            print(f"bodycamd-ingest: listening on {server.url}", flush=True)
            notifier.ready(f"listening on {server.url}")
            await stop.wait()
            notifier.stopping()
    finally:
        notifier.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
