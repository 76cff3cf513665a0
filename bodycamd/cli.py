"""`bodycamd`: run the daemon, check a config, manage keys, and the evidence operator tool.

Exit codes: 0 success, 1 failure (bad config, a component failed, a check failed), 2 bad
command-line usage (argparse).
Errors are one line on stderr; `--debug` adds tracebacks.
"""

from __future__ import annotations

import argparse
import base64
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .config import DEFAULT_CONFIG_PATH, Config, load_config, to_toml
from .errors import BodycamError
from .evidence import cli as evidence_cli
from .evidence.keys import (
    KEM_IDS,
    atomic_write,
    device_public_raw,
    fingerprint,
    generate_evidence_key,
    load_or_create_device_key,
    write_evidence_key_pair,
)
from .journal import cli as audit_cli
from .logs import setup_logging
from .storage import StateLayout

log = logging.getLogger("bodycamd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bodycamd", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"bodycamd {__version__}")
    parser.add_argument("--debug", action="store_true", help="debug logging and tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--config",
            type=Path,
            default=DEFAULT_CONFIG_PATH,
            help=f"config file (default {DEFAULT_CONFIG_PATH})",
        )

    run = commands.add_parser("run", help="run the daemon in the foreground")
    with_config(run)
    check = commands.add_parser("check-config", help="validate a config file; exit 0 or 1")
    check.add_argument("file", nargs="?", type=Path, default=DEFAULT_CONFIG_PATH)
    check.add_argument("--show", action="store_true", help="print the effective config")

    keys = commands.add_parser("keys", help="device and evidence keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    init = key_commands.add_parser(
        "init-evidence", help="make an evidence key pair for a back end (never on a device)"
    )
    init.add_argument("out", type=Path, help="private key file; the public key gets .pub")
    init.add_argument("--kem", choices=sorted(KEM_IDS), default="x25519")
    show = key_commands.add_parser("show", help="print the device public key for enrolment")
    with_config(show)
    csr = key_commands.add_parser(
        "csr", help="make the device TLS key (stays here) and print its CSR for enrolment"
    )
    with_config(csr)
    csr.add_argument("--out", type=Path, help="write the CSR (PEM) here instead of stdout")

    evidence_cli.add_commands(commands)
    audit_cli.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug: bool = args.debug
    try:
        return _dispatch(args)
    except (BodycamError, OSError) as exc:
        if debug:
            log.exception("failed")
        print(f"bodycamd: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        config = load_config(args.config)
        setup_logging("debug" if args.debug else config.daemon.log_level)
        from .app import run_daemon

        return run_daemon(config, debug=args.debug)
    if args.command == "check-config":
        config = load_config(args.file)
        from .upload.settings import upload_settings

        upload_settings(config)  # files present, https unless development: one line if not
        if args.show:
            print(to_toml(config), end="")
        else:
            print(f"{args.file}: OK")
        return 0
    if args.command == "keys":
        return _keys(args)
    if args.command == "audit":
        return audit_cli.dispatch(args)
    return evidence_cli.dispatch(args)


def _keys(args: argparse.Namespace) -> int:
    if args.keys_command == "init-evidence":
        private = generate_evidence_key(args.kem)
        public_path = write_evidence_key_pair(private, args.out)
        print(f"evidence private key: {args.out}  (back end only: never copy it to a device)")
        print(f"evidence public key:  {public_path}  (install on devices as evidence.public_key)")
        print(f"fingerprint: {fingerprint(private.public.raw)}")
        return 0
    config = load_config(args.config)
    if args.keys_command == "csr":
        return _csr(config, args.out)
    layout = StateLayout(config.device.state_dir)
    existed = layout.device_key.exists()
    key = load_or_create_device_key(layout.device_key)
    raw = device_public_raw(key)
    if not existed:
        print(f"created device key {layout.device_key}", file=sys.stderr)
    print(f"device public key: {base64.b64encode(raw).decode()}")
    print(f"fingerprint: {fingerprint(raw)}")
    return 0


def _csr(config: Config, out: Path | None) -> int:
    from .app import device_name
    from .upload.csr import load_or_create_tls_key, make_csr
    from .upload.settings import client_key_path

    path = client_key_path(config)
    key, created = load_or_create_tls_key(path)
    if created:
        print(f"created TLS client key {path} (it never leaves this device)", file=sys.stderr)
    pem = make_csr(key, device_name(config))
    if out is None:
        print(pem.decode(), end="")
    else:
        atomic_write(out, pem, 0o644)
        print(f"wrote CSR for {device_name(config)} to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
