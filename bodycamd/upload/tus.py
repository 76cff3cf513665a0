"""A tus 1.0.0 client (core, creation, termination, checksum sha256) on httpx.

docs/upload.md is the contract. Everything the server says is translated here, at the
boundary, into the upload branch of bodycamd's exception tree, so the worker never sees
httpx::

    UploadError (BodycamError, OSError)
     ├── TransientUploadError   httpx.TransportError (not TLS refusals), 409, 423, 429,
     │                          460, 5xx, an answer that breaks the protocol mid-upload
     ├── UploadRejected         other 4xx, 3xx, TLS: untrusted server or refused client cert
     │    └── SegmentRefused    422 on a PATCH: the server verified the segment and refused it
     └── UploadGone             404 / 410 on an upload URL

Every response body is read with a byte bound (a receipt at most MAX_RECEIPT_BYTES, other
bodies at most MAX_BODY, and thrown away); every request has the client's timeouts.
A PATCH streams one chunk from the file in reads of READ_SIZE bytes, so memory stays bounded
whatever the segment size.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx

from ..errors import (
    SegmentRefused,
    TransientUploadError,
    UploadError,
    UploadGone,
    UploadRejected,
)
from ..receipt import MAX_RECEIPT_BYTES

TUS_VERSION = "1.0.0"
READ_SIZE = 256 * 1024
HASH_READ_SIZE = 1024 * 1024
MAX_BODY = 64 * 1024
MAX_REASON = 300  # characters of a server's refusal kept (journal, status, audit)
TRANSIENT_STATUS = frozenset({409, 423, 429, 460})
Pace = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class ServerInfo:
    """What `OPTIONS {endpoint}` told us."""

    extensions: frozenset[str]
    checksum_algorithms: frozenset[str]
    max_size: int | None
    date: datetime | None  # the server's Date header: its clock, to 1 s

    @property
    def sha256(self) -> bool:
        return "checksum" in self.extensions and "sha256" in self.checksum_algorithms


def make_ssl_context(
    ca_file: Path, client_cert: Path | None, client_key: Path | None
) -> ssl.SSLContext:
    """TLS ≥ 1.2 trusting only `ca_file` (never the system store), presenting the client
    certificate for mutual TLS when one is given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # hostname check, CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=str(ca_file))
    if client_cert is not None:
        context.load_cert_chain(str(client_cert), str(client_key) if client_key else None)
    return context


def encode_metadata(metadata: Mapping[str, str]) -> str:
    """`Upload-Metadata`: comma-separated `key base64(value)` pairs."""
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in metadata.items()
    )


class TusClient:
    """One endpoint, one httpx client (owned by the caller, which closes it). Receipts are
    asked for at `{receipts_url}/{digest}` (default `{endpoint}/receipts`)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        endpoint: str,
        *,
        receipts_url: str | None = None,
        chunk_size: int = 32 * 2**20,
        pace: Pace | None = None,
        on_sent: Callable[[int], None] | None = None,
    ) -> None:
        self._http = http
        self.endpoint = httpx.URL(endpoint)
        self.receipts_url = (receipts_url or endpoint.rstrip("/") + "/receipts").rstrip("/")
        self.chunk_size = chunk_size
        self._pace = pace
        self._on_sent = on_sent

    # -- requests ---------------------------------------------------------------------------

    async def options(self) -> ServerInfo:
        """OPTIONS is optional in tus: a server that does not serve it (404, 405, a
        redirect) gets no extensions assumed. Its Date is taken from any answer."""
        response, _ = await self._request("OPTIONS", self.endpoint, "OPTIONS endpoint")
        served = response.status_code in (200, 204)
        if not served and (response.status_code in TRANSIENT_STATUS or response.status_code >= 500):
            self._expect(response, (200, 204), "OPTIONS endpoint")
        headers = response.headers if served else httpx.Headers()
        return ServerInfo(
            extensions=_token_set(headers.get("Tus-Extension")),
            checksum_algorithms=_token_set(headers.get("Tus-Checksum-Algorithm")),
            max_size=_int_header(headers, "Tus-Max-Size", required=False),
            date=server_date(response),
        )

    async def create(self, length: int, metadata: Mapping[str, str]) -> str:
        """POST: a new upload of `length` bytes; returns its absolute URL."""
        headers = {"Upload-Length": str(length), "Upload-Metadata": encode_metadata(metadata)}
        response, _ = await self._request("POST", self.endpoint, "create upload", headers)
        self._expect(response, (201,), "create upload")
        location = response.headers.get("Location")
        if not location:
            raise UploadRejected("create upload: 201 without a Location header", 201)
        url = self.endpoint.join(location)
        if (url.scheme, url.host, url.port) != (
            self.endpoint.scheme,
            self.endpoint.host,
            self.endpoint.port,
        ):
            raise UploadRejected(f"create upload: Location {location!r} is on another origin")
        return str(url)

    async def offset(self, url: str) -> tuple[int, int | None]:
        """HEAD: the server's (offset, length) of an upload."""
        response, _ = await self._request("HEAD", httpx.URL(url), "HEAD upload")
        self._expect(response, (200, 204), "HEAD upload")
        offset = _int_header(response.headers, "Upload-Offset", required=True)
        assert offset is not None
        return offset, _int_header(response.headers, "Upload-Length", required=False)

    async def patch(self, url: str, path: Path, offset: int, size: int, *, sha256: bool) -> int:
        """PATCH one chunk of `path` starting at `offset`; returns the server's new offset."""
        length = min(self.chunk_size, size - offset)
        if length <= 0:
            raise ValueError(f"nothing to send at offset {offset} of {size}")
        fd = await asyncio.to_thread(os.open, path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            headers = {
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(length),
            }
            if sha256:
                digest = await asyncio.to_thread(_hash_range, fd, offset, length)
                headers["Upload-Checksum"] = "sha256 " + base64.b64encode(digest).decode()
            response, body = await self._request(
                "PATCH", httpx.URL(url), "PATCH upload", headers, self._body(fd, offset, length)
            )
        finally:
            os.close(fd)
        if response.status_code == 422:  # the server's verdict on the segment itself
            raise SegmentRefused(f"PATCH upload: server answered 422: {server_reason(body)}")
        self._expect(response, (204,), "PATCH upload")
        new = _int_header(response.headers, "Upload-Offset", required=True)
        assert new is not None
        if not offset < new <= offset + length:
            raise TransientUploadError(
                f"PATCH upload: server acknowledged offset {new}; expected {offset + 1} to "
                f"{offset + length}"
            )
        return new

    async def delete(self, url: str) -> None:
        """DELETE (termination); an upload already gone is fine."""
        response, _ = await self._request("DELETE", httpx.URL(url), "DELETE upload")
        if response.status_code not in (404, 410):
            self._expect(response, (204,), "DELETE upload")

    async def receipt(self, digest: str) -> bytes | None:
        """GET the receipt for `digest`: its wire bytes, or None when the server has none."""
        url = httpx.URL(f"{self.receipts_url}/{digest}")
        response, body = await self._request("GET", url, "GET receipt", bound=MAX_RECEIPT_BYTES)
        if response.status_code in (404, 410):
            return None
        self._expect(response, (200,), "GET receipt")
        return body

    # -- plumbing ---------------------------------------------------------------------------

    async def _body(self, fd: int, offset: int, length: int) -> AsyncIterator[bytes]:
        end = offset + length
        while offset < end:
            want = min(READ_SIZE, end - offset)
            if self._pace is not None:
                await self._pace(want)
            block = await asyncio.to_thread(os.pread, fd, want, offset)
            if not block:
                raise UploadRejected(f"file shrank: nothing to read at offset {offset}")
            offset += len(block)
            if self._on_sent is not None:
                self._on_sent(len(block))
            yield block

    async def _request(
        self,
        method: str,
        url: httpx.URL,
        what: str,
        headers: Mapping[str, str] | None = None,
        content: AsyncIterator[bytes] | None = None,
        *,
        bound: int = MAX_BODY,
    ) -> tuple[httpx.Response, bytes]:
        request = self._http.build_request(
            method, url, headers={"Tus-Resumable": TUS_VERSION, **(headers or {})}, content=content
        )
        try:
            response = await self._http.send(request, stream=True)
            try:
                body = b"" if method == "HEAD" else await _read_bounded(response, bound, what)
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            raise transport_error(exc, what) from exc
        except httpx.StreamError as exc:
            raise TransientUploadError(f"{what}: {type(exc).__name__}: {exc}") from exc
        return response, body

    @staticmethod
    def _expect(response: httpx.Response, wanted: tuple[int, ...], what: str) -> None:
        status = response.status_code
        if status in wanted:
            return
        reason = f"{what}: server answered {status} {response.reason_phrase}".rstrip()
        if status in (404, 410):
            raise UploadGone(reason)
        if status in TRANSIENT_STATUS or status >= 500:
            raise TransientUploadError(reason, retry_after_seconds(response))
        raise UploadRejected(reason, status)


async def _read_bounded(response: httpx.Response, bound: int, what: str) -> bytes:
    """The body, refused past `bound` bytes (declared or read). Not for HEAD, whose
    Content-Length describes a body that is never sent."""
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > bound:
        raise UploadRejected(f"{what}: body of {declared} bytes; at most {bound} expected")
    parts: list[bytes] = []
    total = 0
    async for part in response.aiter_raw():
        total += len(part)
        if total > bound:
            raise UploadRejected(f"{what}: body longer than {bound} bytes")
        parts.append(part)
    return b"".join(parts)


def transport_error(exc: httpx.TransportError, what: str) -> UploadError:
    """A TLS refusal will not heal by retrying; anything else on the wire might."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return UploadRejected(
            f"{what}: TLS: server certificate not trusted by upload.ca_file "
            f"({cause.verify_message})"
        )
    if isinstance(cause, ssl.SSLError) and not isinstance(
        cause, ssl.SSLEOFError | ssl.SSLZeroReturnError
    ):
        detail = cause.reason or str(cause)
        if "CERTIFICATE_REQUIRED" in detail or "BAD_CERTIFICATE" in detail:
            detail += ": the server refused our client certificate (upload.client_cert)"
        return UploadRejected(f"{what}: TLS refused: {detail}")
    return TransientUploadError(f"{what}: {_deepest(exc)}")


def _deepest(exc: BaseException) -> str:
    """The innermost cause that says something ("Connection reset by peer"), since httpx's
    own ReadError often carries an empty message."""
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            text = cause.strerror
        elif str(cause):
            text = str(cause)
        cause = cause.__cause__ or cause.__context__
    return text


def server_reason(body: bytes) -> str:
    """The first line of a refusal's body (the ingest sends its reason there), printable
    characters only and at most MAX_REASON of them: it reaches the journal, the audit
    trail and an operator's terminal."""
    text = body.decode("utf-8", "replace").strip().split("\n", 1)[0]
    text = "".join(c if c.isprintable() else "?" for c in text[:MAX_REASON])
    return text or "(no reason given)"


def server_date(response: httpx.Response) -> datetime | None:
    value = response.headers.get("Date")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds: delta-seconds, or an HTTP date against the answer's Date."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = server_date(response)
    return None if now is None else max(0.0, (when - now).total_seconds())


def _int_header(headers: httpx.Headers, name: str, *, required: bool) -> int | None:
    value = headers.get(name)
    if value is None:
        if required:
            raise TransientUploadError(f"server answer lacks {name}")
        return None
    if not value.strip().isdigit():
        raise TransientUploadError(f"server sent {name}: {value!r}; expected digits")
    return int(value)


def _token_set(value: str | None) -> frozenset[str]:
    return frozenset(t.strip().lower() for t in (value or "").split(",") if t.strip())


def _hash_range(fd: int, offset: int, length: int) -> bytes:
    digest = hashlib.sha256()
    end = offset + length
    while offset < end:
        block = os.pread(fd, min(HASH_READ_SIZE, end - offset), offset)
        if not block:
            raise UploadRejected(f"file shrank: nothing to read at offset {offset}")
        digest.update(block)
        offset += len(block)
    return digest.digest()
