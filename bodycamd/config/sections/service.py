"""The sections of the daemon's service to people and the back end: the shift (login
policy), the control socket, the daemon's own lifecycle, and the upload."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..fields import doc

LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class SessionConfig:
    personnel_pattern: str = field(
        default=r"[0-9]{6,8}",
        metadata={
            **doc("Regular expression a personnel number must match in full."),
            "regex": True,
        },
    )
    roster: str = field(
        default="",
        metadata=doc(
            "Optional file of allowed personnel numbers, one per line (# comments); empty "
            "means any number matching the pattern.",
            path=True,
        ),
    )
    allow_anonymous_recording: bool = field(
        default=False,
        metadata=doc(
            "Let recording start with nobody logged in (benches only); every such start is audited."
        ),
    )
    logout_on_dock: bool = field(
        default=True,
        metadata=doc(
            "Docking ends the shift: log the officer out once their last segment is sealed."
        ),
    )


@dataclass(frozen=True)
class ControlConfig:
    max_clients: int = field(
        default=16,
        metadata=doc(
            "Request clients served at once; more get a busy error, except that a `status` "
            "request always finds a reserved slot.",
            minimum=1,
            maximum=256,
        ),
    )
    max_streams: int = field(
        default=16,
        metadata=doc(
            "Event streams (`bodycamctl watch`) at once, counted apart from request clients; "
            "more get a busy error.",
            minimum=1,
            maximum=256,
        ),
    )
    idle_timeout: float = field(
        default=30.0,
        metadata=doc(
            "Seconds a control client has to send each request (blank lines do not restart "
            "the clock) before it is disconnected (event streams are exempt, but a stream "
            "that does not read for this long is cut off).",
            minimum=1.0,
            maximum=3600.0,
        ),
    )


@dataclass(frozen=True)
class DaemonConfig:
    stop_timeout: float = field(
        default=10.0,
        metadata=doc(
            "Seconds that components get on SIGTERM to seal what they hold before the daemon "
            "gives up and exits non-zero.",
            minimum=0.1,
            maximum=600.0,
        ),
    )
    log_level: LogLevel = field(
        default="info", metadata=doc("Lowest level logged: debug, info, warning or error.")
    )


@dataclass(frozen=True)
class UploadConfig:
    endpoint: str = field(
        default="",
        metadata=doc(
            "tus creation URL of the ingest, e.g. https://ingest.example:8443/files/. Empty: "
            "nothing is uploaded and footage stays on flash (docs/upload.md)."
        ),
    )
    receipts_url: str = field(
        default="",
        metadata=doc(
            "Where receipts are asked for: GET {receipts_url}/{digest}. Empty means "
            "{endpoint}/receipts; the project's ingest serves them at https://HOST:PORT/receipts."
        ),
    )
    ca_file: str = field(
        default="",
        metadata=doc(
            "CA certificate (PEM) the ingest's server certificate must chain to; the system "
            "trust store is never used.",
            path=True,
        ),
    )
    client_cert: str = field(
        default="",
        metadata=doc(
            "This device's TLS client certificate (PEM) issued at enrolment; its CN is "
            "device.name.",
            path=True,
        ),
    )
    client_key: str = field(
        default="",
        metadata=doc(
            "Its private key; empty means keys/tls-client.key in state_dir, made on the device "
            "by `bodycamd keys csr` (it never leaves the device).",
            path=True,
        ),
    )
    receipt_keys: str = field(
        default="",
        metadata=doc(
            "Ingest receipt public keys (Ed25519) trusted to sign receipts, comma-separated: "
            "each a file (PEM, raw or base64) or the base64 of the 32-byte key. A segment is "
            "deleted only against a receipt signed by one of them."
        ),
    )
    chunk_size: str = field(
        default="32MiB",
        metadata=doc(
            "Bytes per PATCH (64KiB to 256MiB); the acknowledged offset is journalled after each.",
            size=True,
        ),
    )
    max_rate: str = field(
        default="0",
        metadata=doc('Upload rate cap in bytes per second, e.g. "2MB"; 0 is unlimited.', size=True),
    )
    retry_min: float = field(
        default=1.0,
        metadata=doc("First backoff after a failure, in seconds.", minimum=0.1, maximum=60.0),
    )
    retry_max: float = field(
        default=300.0,
        metadata=doc(
            "Longest backoff, in seconds; a refused segment is retried after this.",
            minimum=1.0,
            maximum=86400.0,
        ),
    )
    development: bool = field(
        default=False,
        metadata=doc(
            "Allow a plain http:// endpoint (no TLS): benches and interop tests only, never "
            "a device in service."
        ),
    )
