"""The tus 1.0.0 handlers: core, creation, creation-with-upload, termination, checksum
(sha256) and expiration, plus `GET /receipts/{digest}`.

Every refusal is a 4xx with a one-line text reason (the camera logs it); a store that fails
while writing a chunk is a 503 with the reason. The device is the one the TLS layer verified
(app.py puts its registry entry on the request), so a device only ever sees its own uploads
and receipts: another device's is "not found", not "forbidden".

    OPTIONS /files/             204 Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-…
    POST    /files/             201 Location, Upload-Expires (+ Upload-Offset with a body)
    HEAD    /files/{id}         200 Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires
    PATCH   /files/{id}         204 Upload-Offset; the last byte: 204 only after the receipt
                                is stored, 422 when the segment is rejected (quarantined)
    DELETE  /files/{id}         204 (incomplete uploads only; finished ones are gone: 404)
    GET     /receipts/{digest}  200 the signed receipt (application/json), 404 none (yet)

Refusals: 400 malformed header, 403 metadata names another device, 404 no such upload,
409 Upload-Offset differs (the body says the offset), 410 expired, 412 Tus-Resumable missing
or not 1.0.0, 413 over Tus-Max-Size / the request body limit / the Upload-Length, 415 wrong
Content-Type, 422 segment rejected, 423 another request is writing this upload, 429 too many
uploads in flight for this device, 460 checksum mismatch (the chunk is discarded); 503 the
store failed writing the chunk (HEAD gives the durable offset).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from .context import CONTEXT, DEVICE, IngestContext
from .errors import (
    ChecksumMismatch,
    MetadataInvalid,
    OffsetMismatch,
    SegmentRejected,
    StoreError,
    UploadBusy,
    UploadNotFound,
    UploadTooLarge,
)
from .store import UploadInfo
from .verify import decode_device_key, parse_segment_meta

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
OFFSET_TYPE = "application/offset+octet-stream"
_READ_CHUNK = 1 << 16


_PHRASES = {460: "Checksum Mismatch"}


class Refusal(web.HTTPException):
    """A tus refusal: status, one-line reason, optional extra headers."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        super().__init__(
            text=reason + "\n",
            headers={"Tus-Resumable": TUS_VERSION, **(headers or {})},
            reason=_PHRASES.get(status),
        )


def _http_date(epoch: float) -> str:
    return email.utils.formatdate(epoch, usegmt=True)


def _int_header(request: web.Request, name: str) -> int:
    value = request.headers.get(name)
    if value is None:
        raise Refusal(400, f"{name} header is missing")
    if not value.isdigit() or len(value) > 18:
        raise Refusal(400, f"{name} header {value!r}: expected a non-negative integer")
    return int(value)


def parse_upload_metadata(header: str) -> dict[str, str]:
    """Upload-Metadata: comma-separated `key base64value` pairs (the value may be absent)."""
    metadata: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, encoded = pair.partition(" ")
        if not key or key in metadata or " " in encoded.strip():
            raise Refusal(400, f"Upload-Metadata pair {pair!r}: expected 'key base64value'")
        try:
            metadata[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Refusal(400, f"Upload-Metadata {key}: value is not base64 of UTF-8") from None
    return metadata


def encode_upload_metadata(metadata: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items())


def _checksum(request: web.Request) -> bytes | None:
    header = request.headers.get("Upload-Checksum")
    if header is None:
        return None
    algorithm, _, encoded = header.partition(" ")
    if algorithm != "sha256":
        raise Refusal(400, f"Upload-Checksum algorithm {algorithm!r}: only sha256 is supported")
    try:
        digest = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != 32:
        raise Refusal(400, "Upload-Checksum: expected 'sha256 <base64 of 32 bytes>'")
    return digest


async def _body(request: web.Request, context: IngestContext) -> AsyncIterator[bytes]:
    """The request body, bounded in size and in the wait for each piece."""
    limit = context.config.limits.max_request_body_bytes
    received = 0
    while True:
        async with asyncio.timeout(context.config.limits.read_timeout):
            chunk = await request.content.readany()
        if not chunk:
            return
        received += len(chunk)
        if received > limit:
            raise UploadTooLarge(f"request body over the limit of {limit} bytes")
        yield chunk


def _expires(info: UploadInfo) -> dict[str, str]:
    return {"Upload-Expires": _http_date(info.expires_at)}


async def _info(request: web.Request) -> tuple[IngestContext, UploadInfo]:
    context = request.app[CONTEXT]
    device = request[DEVICE]
    upload_id = request.match_info["upload_id"]
    try:
        info = await context.store.upload_info(device.device_id, upload_id)
    except UploadNotFound:
        raise Refusal(404, f"upload {upload_id}: no such upload for {device.device_id}") from None
    if info.expires_at <= context.clock():
        await context.expire(info)
        raise Refusal(410, f"upload {upload_id}: expired")
    return context, info


async def options(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    return web.Response(
        status=204,
        headers={
            "Tus-Resumable": TUS_VERSION,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": EXTENSIONS,
            "Tus-Max-Size": str(context.config.limits.max_upload_bytes),
            "Tus-Checksum-Algorithm": "sha256",
        },
    )


async def create(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    device = request[DEVICE]
    if "Upload-Defer-Length" in request.headers:
        raise Refusal(400, "Upload-Defer-Length is not supported; send Upload-Length")
    length = _int_header(request, "Upload-Length")
    limit = context.config.limits.max_upload_bytes
    if length > limit:
        raise Refusal(413, f"Upload-Length {length} is over Tus-Max-Size {limit}")
    metadata = parse_upload_metadata(request.headers.get("Upload-Metadata", ""))
    try:
        meta = parse_segment_meta(metadata)
    except MetadataInvalid as exc:
        raise Refusal(400, str(exc)) from exc
    if meta.device != device.device_id:
        await context.audit.record(
            "upload.refused",
            device=device.device_id,
            reason="metadata names another device",
            metadata_device=meta.device,
            digest=meta.digest,
        )
        raise Refusal(
            403, f"upload metadata names device {meta.device!r}; this is {device.device_id!r}"
        )
    async with context.creating.setdefault(device.device_id, asyncio.Lock()):
        in_flight = await context.store.uploads(device.device_id)
        limit = context.config.limits.max_uploads_per_device
        if len(in_flight) >= limit:
            raise Refusal(
                429,
                f"{device.device_id} has {len(in_flight)} uploads in flight; at most {limit} "
                "(finish or DELETE one)",
            )
        expires_at = context.clock() + context.config.limits.upload_expiry
        info = await context.store.create_upload(device.device_id, length, metadata, expires_at)
    await context.audit.record(
        "upload.created",
        device=device.device_id,
        upload=info.upload_id,
        length=length,
        recording=meta.recording,
        index=meta.index,
        digest=meta.digest,
    )
    location = str(request.url.with_path(f"/files/{info.upload_id}").with_query(None))
    headers = {"Tus-Resumable": TUS_VERSION, "Location": location, **_expires(info)}
    if request.headers.get("Content-Type") == OFFSET_TYPE and request.can_read_body:
        offset = await _append(context, request, info, 0)
        headers["Upload-Offset"] = str(offset)
    return web.Response(status=201, headers=headers)


async def head(request: web.Request) -> web.Response:
    context, info = await _info(request)
    if info.complete:
        await _complete(context, info)  # a crash after the last byte left it unfinished
    headers = {
        "Tus-Resumable": TUS_VERSION,
        "Upload-Offset": str(info.offset),
        "Upload-Length": str(info.length),
        "Cache-Control": "no-store",
        **_expires(info),
    }
    if info.metadata:
        headers["Upload-Metadata"] = encode_upload_metadata(info.metadata)
    return web.Response(status=200, headers=headers)


async def patch(request: web.Request) -> web.Response:
    if request.headers.get("Content-Type") != OFFSET_TYPE:
        raise Refusal(415, f"PATCH needs Content-Type: {OFFSET_TYPE}")
    offset = _int_header(request, "Upload-Offset")
    context, info = await _info(request)
    new_offset = await _append(context, request, info, offset)
    return web.Response(
        status=204,
        headers={"Tus-Resumable": TUS_VERSION, "Upload-Offset": str(new_offset), **_expires(info)},
    )


async def _append(
    context: IngestContext, request: web.Request, info: UploadInfo, offset: int
) -> int:
    declared = request.content_length
    body_limit = context.config.limits.max_request_body_bytes
    if declared is not None and declared > body_limit:
        raise Refusal(413, f"request body of {declared} bytes; at most {body_limit}")
    if declared is not None and offset + declared > info.length:
        raise Refusal(413, f"chunk would end at {offset + declared}; Upload-Length {info.length}")
    expect = _checksum(request)
    try:
        new_offset = await context.store.append(
            info.device_id, info.upload_id, offset, _body(request, context), expect_sha256=expect
        )
    except OffsetMismatch as exc:
        raise Refusal(409, str(exc), {"Upload-Offset": str(exc.offset)}) from exc
    except ChecksumMismatch as exc:
        raise Refusal(460, str(exc)) from exc
    except UploadBusy as exc:
        raise Refusal(423, str(exc)) from exc
    except UploadTooLarge as exc:
        raise Refusal(413, str(exc)) from exc
    except TimeoutError as exc:
        raise Refusal(408, f"upload {info.upload_id}: no body bytes for too long") from exc
    except ConnectionError as exc:  # the camera went away; what arrived is durable
        raise Refusal(400, f"upload {info.upload_id}: connection lost mid-body") from exc
    except StoreError as exc:  # the disk failed; HEAD says what is durable, the camera retries
        raise Refusal(503, str(exc)) from exc
    if new_offset == info.length:
        await _complete(context, await context.store.upload_info(info.device_id, info.upload_id))
    return new_offset


async def _complete(context: IngestContext, info: UploadInfo) -> None:
    """Verify, store and receipt a complete upload before the camera is told it is done."""
    device = await context.store.get_device(info.device_id)
    if device is None:  # revoked and removed between the request's check and now
        raise Refusal(403, f"device {info.device_id} is not enrolled")
    try:
        await context.completion.complete(info, decode_device_key(device.signing_key))
    except SegmentRejected as exc:
        raise Refusal(422, f"segment rejected and kept apart: {exc.reason}") from exc
    except UploadNotFound as exc:
        raise Refusal(404, f"upload {info.upload_id}: no such upload") from exc


async def terminate(request: web.Request) -> web.Response:
    context, info = await _info(request)
    if info.complete:
        raise Refusal(403, f"upload {info.upload_id} is complete; only incomplete ones end")
    try:
        await context.store.terminate(info.device_id, info.upload_id)
    except UploadNotFound:
        raise Refusal(404, f"upload {info.upload_id}: no such upload") from None
    await context.audit.record(
        "upload.terminated", device=info.device_id, upload=info.upload_id, offset=info.offset
    )
    return web.Response(status=204, headers={"Tus-Resumable": TUS_VERSION})


async def receipt(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    device = request[DEVICE]
    digest = request.match_info["digest"].lower()
    stored = await context.store.get_receipt(digest)
    if stored is None or stored.record.key.device_id != device.device_id:
        raise Refusal(404, f"no receipt for {digest} from {device.device_id}")
    return web.Response(body=stored.wire, content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_route("OPTIONS", "/files/", options)
    app.router.add_route("OPTIONS", "/files", options)
    app.router.add_post("/files/", create)
    app.router.add_post("/files", create)
    app.router.add_route("HEAD", "/files/{upload_id}", head)
    app.router.add_patch("/files/{upload_id}", patch)
    app.router.add_delete("/files/{upload_id}", terminate)
    app.router.add_get("/receipts/{digest}", receipt, allow_head=False)


def tus_headers_needed(request: web.Request) -> bool:
    return request.method != "OPTIONS" and request.path.startswith("/files")


__all__: list[Any] = ["Refusal", "add_routes", "tus_headers_needed"]
