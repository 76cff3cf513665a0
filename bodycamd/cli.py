"""`bodycamd`: run the daemon, check a config, manage keys, and the evidence operator tool.

Exit codes: 0 success, 1 failure (bad config, a component failed, a check failed), 2 bad
command-line usage (argparse).
Errors are one line on stderr; `--debug` adds tracebacks. `--debug` and `--config` are
accepted before or after the command (`bodycamd run --config F --debug`).
"""

from __future__ import annotations

import argparse
import base64
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__, identity
from .config import DEFAULT_CONFIG_PATH, Config, load_config, to_toml
from .errors import BodycamError, ConfigError
from .evidence import cli as evidence_cli
from .evidence.keys import (
    KEM_IDS,
    atomic_write,
    device_public_raw,
    fingerprint,
    generate_evidence_key,
    write_evidence_key_pair,
)
from .journal import cli as audit_cli
from .logs import setup_logging
from .storage import StateLayout

log = logging.getLogger("bodycamd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bodycamd", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"bodycamd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--config",
            type=Path,
            default=argparse.SUPPRESS,
            help=f"config file (default {DEFAULT_CONFIG_PATH})",
        )

    def command(name: str, text: str, parent: Any = commands) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(name, help=text, description=text)
        return sub

    run = command("run", "run the daemon in the foreground (systemd runs this)")
    with_config(run)
    check = command("check-config", "validate a config file; exit 0 or 1")
    check.add_argument(
        "file",
        nargs="?",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help=f"config file (default {DEFAULT_CONFIG_PATH})",
    )
    check.add_argument("--show", action="store_true", help="print the effective config")

    keys = command("keys", "device and evidence keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    init = command(
        "init-evidence",
        "make an evidence key pair for a back end (never on a device)",
        key_commands,
    )
    init.add_argument("out", type=Path, help="private key file; the public key gets .pub")
    init.add_argument("--kem", choices=sorted(KEM_IDS), default="x25519", help="key agreement")
    show = command(
        "show", "print the device public key for enrolment (made on first use)", key_commands
    )
    with_config(show)
    csr = command(
        "csr", "make the device TLS key (stays here) and print its CSR for enrolment", key_commands
    )
    with_config(csr)
    csr.add_argument("--out", type=Path, help="write the CSR (PEM) here instead of stdout")
    rotate = command(
        "rotate",
        "replace the device key on purpose (audited; re-enrol the device after)",
        key_commands,
    )
    with_config(rotate)
    rotate.add_argument(
        "--i-understand",
        action="store_true",
        required=True,
        help="that footage and audit events made so far stay signed by the old key",
    )

    doctor = commands.add_parser(
        "doctor", help="self-test on the device: one line per check, exit 1 if any fails"
    )
    with_config(doctor)

    evidence_cli.add_commands(commands)
    audit_cli.add_commands(commands)
    _everywhere(parser, top=True)
    return parser


def _everywhere(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """--debug on every parser, and --config read the same wherever it is typed: below the
    top level their defaults are SUPPRESS, so an option given before the command is not
    overwritten by a sub-parser's default (the default is applied in `_config_path`)."""
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="debug logging and tracebacks",
    )
    if top:
        parser.add_argument(
            "--config", type=Path, default=argparse.SUPPRESS, help="config file (see the command)"
        )
    for action in parser._actions:
        if action.dest == "config" and not top:
            action.default = argparse.SUPPRESS  # audit's own --config too
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _everywhere(sub, top=False)


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
    except ImportError as exc:  # hardware = "pi" on a machine without lgpio or picamera2
        if debug:
            log.exception("failed")
        print(
            f"bodycamd: cannot import {exc.name or exc}, which the configured hardware needs "
            "(on a Pi: the [pi] extra and python3-picamera2, see docs/operations.md; "
            'elsewhere: hardware = "simulated")',
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130


def _config_path(args: argparse.Namespace) -> Path:
    """The --config given, or the default; a missing default gets a hint, not a bare
    'No such file' (in a checkout the config is config/dev.toml)."""
    path: Path = getattr(args, "config", DEFAULT_CONFIG_PATH)
    if "config" not in args and not path.exists():
        raise ConfigError(
            f"{path}: no config file here (not installed?); pass --config FILE, "
            "e.g. --config config/dev.toml in a checkout"
        )
    args.config = path
    return path


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        config = load_config(_config_path(args))
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
    if args.command == "doctor":
        from .doctor import doctor_main

        return doctor_main(args.config)
    if args.command == "audit":
        if args.journal is None:
            _config_path(args)
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
    config = load_config(_config_path(args))
    if args.keys_command == "csr":
        return _csr(config, args.out)
    layout = StateLayout(config.device.state_dir)
    if args.keys_command == "rotate":
        return identity.rotate_command(layout)
    key, made = identity.device_key_for(layout)
    raw = device_public_raw(key)
    if made:
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
