"""The S3 store's view of one bucket: a few object and multipart calls over aiobotocore.

Every S3 store module goes through `Bucket`, which owns the aiobotocore client (opened on first
use, closed by `close`), prefixes every key with the configured `prefix`, and turns
botocore's errors into answers the store can act on, at this one boundary:

- a missing object or multipart upload is a value (`None`, `False`), not an exception;
- a conditional write that lost (412 Precondition Failed, AWS's 409
  ConditionalRequestConflict, or 404 for an If-Match on a key that is gone) returns `None`;
- anything else (refused credentials, a 5xx after botocore's retries, a dropped connection)
  is raised as `StoreError` naming the operation and the key, ``from`` the botocore error.

Conditional writes (If-None-Match: * and If-Match on PutObject, If-None-Match on
CompleteMultipartUpload, If-Match on DeleteObject) are what make the store safe for several
nodes; AWS S3, MinIO and Ceph RGW offer them. Credentials come from botocore's usual chain
(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, an instance role), never from the
ingest's config file.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from .errors import StoreError

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

_READ = 1 << 20
_COPY_RANGE = 1 << 30
_LOST = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_MISSING = {"NoSuchKey", "404", "NotFound", "NoSuchUpload"}
_FAILURES = (ClientError, BotoCoreError, OSError, TimeoutError)


@dataclass(frozen=True)
class S3Options:
    """The `[store]` keys of kind "s3" (see docs/ingest.md)."""

    bucket: str
    endpoint_url: str | None = None  # None: AWS; else MinIO, Ceph RGW, ... (path-style keys)
    region: str = "us-east-1"
    prefix: str = ""  # every key starts with this (no trailing slash needed)
    profile: str | None = None  # a named profile of ~/.aws/credentials
    part_size: int = 8 << 20  # bytes gathered before one UploadPart
    min_part_size: int = 5 << 20  # S3's minimum for every part but the last
    lease_seconds: float = 120.0  # how long a dead node's claim on an upload blocks others
    max_connections: int = 32


@dataclass(frozen=True)
class Head:
    size: int
    etag: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class Fetched:
    body: bytes
    etag: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class Part:
    number: int
    size: int
    etag: str


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class Bucket:
    """One bucket (and prefix) of an S3-compatible service, opened lazily."""

    def __init__(self, options: S3Options) -> None:
        self.options = options
        self.name = options.bucket
        self._prefix = options.prefix.strip("/") + "/" if options.prefix.strip("/") else ""
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: S3Client | None = None
        self._opening = asyncio.Lock()

    def url(self, key: str = "") -> str:
        return f"s3://{self.name}/{self._prefix}{key}"

    async def client(self) -> S3Client:
        async with self._opening:
            if self._client is None:
                options = self.options
                session = get_session()
                if options.profile:
                    session.set_config_variable("profile", options.profile)
                config = AioConfig(
                    s3={"addressing_style": "path" if options.endpoint_url else "auto"},
                    retries={"max_attempts": 4, "mode": "standard"},
                    connect_timeout=10,
                    read_timeout=60,
                    max_pool_connections=options.max_connections,
                )
                stack = contextlib.AsyncExitStack()
                self._client = await stack.enter_async_context(
                    session.create_client(
                        "s3",
                        endpoint_url=options.endpoint_url,
                        region_name=options.region,
                        config=config,
                    )
                )
                self._stack = stack
            return self._client

    async def close(self) -> None:
        async with self._opening:
            if self._stack is not None:
                await self._stack.aclose()
            self._stack, self._client = None, None

    def _settle(self, what: str, key: str, exc: Exception, *accepted: str) -> str:
        """What a failed call means, "missing" or "lost", if the caller `accepted` that
        answer; anything else is raised as StoreError naming the call and the key."""
        code = _code(exc) if isinstance(exc, ClientError) else ""
        kind = "missing" if code in _MISSING else "lost" if code in _LOST else ""
        if kind and kind in accepted:
            return kind
        raise self._error(what, key, exc) from exc

    def _error(self, what: str, key: str, exc: Exception) -> StoreError:
        detail = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        return StoreError(f"{self.url(key)}: S3 {what} failed ({detail}: {exc})")

    # -- objects ----------------------------------------------------------------------------
    async def head(self, key: str) -> Head | None:
        client = await self.client()
        try:
            found = await client.head_object(Bucket=self.name, Key=self._prefix + key)
        except _FAILURES as exc:
            self._settle("HeadObject", key, exc, "missing")
            return None
        return Head(found["ContentLength"], found["ETag"], dict(found.get("Metadata", {})))

    async def get(self, key: str) -> Fetched | None:
        """A small object's bytes (info, receipt, lease, incomplete part), or None."""
        client = await self.client()
        try:
            found = await client.get_object(Bucket=self.name, Key=self._prefix + key)
            async with found["Body"] as stream:
                body = await stream.read()
        except _FAILURES as exc:
            self._settle("GetObject", key, exc, "missing")
            return None
        return Fetched(body, found["ETag"], dict(found.get("Metadata", {})))

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        """A large object's bytes in blocks of at most 1 MiB; StoreError if it is missing."""
        client = await self.client()
        try:
            found = await client.get_object(Bucket=self.name, Key=self._prefix + key)
            async with found["Body"] as body:
                while block := await body.read(_READ):
                    yield block
        except _FAILURES as exc:
            raise self._error("GetObject", key, exc) from exc

    async def put(
        self,
        key: str,
        body: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> str | None:
        """Write the object; its new ETag, or None when the condition did not hold."""
        client = await self.client()
        extra: dict[str, Any] = {}
        if if_none_match:
            extra["IfNoneMatch"] = "*"
        if if_match is not None:
            extra["IfMatch"] = if_match
        try:
            done = await client.put_object(
                Bucket=self.name,
                Key=self._prefix + key,
                Body=body,
                Metadata=metadata or {},
                **extra,
            )
        except _FAILURES as exc:
            # a conditional write that lost; with If-Match, the object may be gone instead
            accepted = ("lost", "missing") if if_match else ("lost",) if extra else ()
            self._settle("PutObject", key, exc, *accepted)
            return None
        return done["ETag"]

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """Delete the object (missing is fine); False when `if_match` did not hold."""
        client = await self.client()
        extra: dict[str, Any] = {} if if_match is None else {"IfMatch": if_match}
        try:
            await client.delete_object(Bucket=self.name, Key=self._prefix + key, **extra)
        except _FAILURES as exc:
            accepted = ("missing", "lost") if extra else ("missing",)
            return self._settle("DeleteObject", key, exc, *accepted) == "missing"
        return True

    async def keys(self, prefix: str, *, start_after: str = "") -> AsyncIterator[str]:
        """Keys under `prefix` (without the bucket prefix), in S3's (binary) order."""
        client = await self.client()
        token: str | None = None
        start = self._prefix + start_after if start_after else ""
        while True:
            extra: dict[str, Any] = {"ContinuationToken": token} if token else {}
            if start and not token:
                extra["StartAfter"] = start
            try:
                page = await client.list_objects_v2(
                    Bucket=self.name, Prefix=self._prefix + prefix, **extra
                )
            except _FAILURES as exc:
                raise self._error("ListObjectsV2", prefix, exc) from exc
            for entry in page.get("Contents", []):
                yield entry["Key"][len(self._prefix) :]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    # -- multipart uploads ------------------------------------------------------------------
    async def create_multipart(self, key: str, metadata: dict[str, str] | None = None) -> str:
        client = await self.client()
        try:
            made = await client.create_multipart_upload(
                Bucket=self.name, Key=self._prefix + key, Metadata=metadata or {}
            )
        except _FAILURES as exc:
            raise self._error("CreateMultipartUpload", key, exc) from exc
        return made["UploadId"]

    async def upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> Part:
        client = await self.client()
        try:
            done = await client.upload_part(
                Bucket=self.name,
                Key=self._prefix + key,
                UploadId=upload_id,
                PartNumber=number,
                Body=body,
            )
        except _FAILURES as exc:
            raise self._error(f"UploadPart {number}", key, exc) from exc
        return Part(number, len(body), done["ETag"])

    async def copy_part(
        self, key: str, upload_id: str, number: int, source: str, first: int, last: int
    ) -> Part:
        """Part `number` of `key`'s multipart upload is bytes first..last of `source`."""
        client = await self.client()
        try:
            done = await client.upload_part_copy(
                Bucket=self.name,
                Key=self._prefix + key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource={"Bucket": self.name, "Key": self._prefix + source},
                CopySourceRange=f"bytes={first}-{last}",
            )
        except _FAILURES as exc:
            raise self._error(f"UploadPartCopy {number}", key, exc) from exc
        return Part(number, last - first + 1, done["CopyPartResult"]["ETag"])

    async def parts(self, key: str, upload_id: str) -> list[Part] | None:
        """The uploaded parts in number order, or None if the multipart upload is gone
        (completed or aborted)."""
        client = await self.client()
        found: list[Part] = []
        marker = 0
        while True:
            try:
                page = await client.list_parts(
                    Bucket=self.name,
                    Key=self._prefix + key,
                    UploadId=upload_id,
                    PartNumberMarker=marker,
                )
            except _FAILURES as exc:
                self._settle("ListParts", key, exc, "missing")
                return None
            found += [Part(p["PartNumber"], p["Size"], p["ETag"]) for p in page.get("Parts", [])]
            if not page.get("IsTruncated"):
                return sorted(found, key=lambda part: part.number)
            marker = int(page.get("NextPartNumberMarker", 0))

    async def complete(
        self, key: str, upload_id: str, parts: Iterable[Part], *, if_none_match: bool = False
    ) -> bool | None:
        """Complete the multipart upload: True; None if `if_none_match` and the key exists
        already; False if the multipart upload is gone (completed or aborted before)."""
        client = await self.client()
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if if_none_match else {}
        listed = [{"PartNumber": part.number, "ETag": part.etag} for part in parts]
        try:
            await client.complete_multipart_upload(
                Bucket=self.name,
                Key=self._prefix + key,
                UploadId=upload_id,
                MultipartUpload={"Parts": listed},  # type: ignore[typeddict-item]
                **extra,
            )
        except _FAILURES as exc:
            accepted = ("missing", "lost") if extra else ("missing",)
            kind = self._settle("CompleteMultipartUpload", key, exc, *accepted)
            return None if kind == "lost" else False
        return True

    async def abort(self, key: str, upload_id: str) -> None:
        client = await self.client()
        try:
            await client.abort_multipart_upload(
                Bucket=self.name, Key=self._prefix + key, UploadId=upload_id
            )
        except _FAILURES as exc:
            self._settle("AbortMultipartUpload", key, exc, "missing")

    async def copy(
        self, source: str, target: str, size: int, metadata: dict[str, str], *, once: bool
    ) -> bool:
        """Copy `source` (of `size` bytes) to `target` inside the bucket, server-side, as a
        multipart copy in ranges of at most 1 GiB (CopyObject stops at 5 GiB). With `once`,
        the target is written only if it does not exist yet (False if it does)."""
        if size == 0:
            return await self.put(target, b"", if_none_match=once, metadata=metadata) is not None
        upload_id = await self.create_multipart(target, metadata)
        try:
            parts = []
            for number, first in enumerate(range(0, size, _COPY_RANGE), 1):
                last = min(first + _COPY_RANGE, size) - 1
                parts.append(await self.copy_part(target, upload_id, number, source, first, last))
            done = await self.complete(target, upload_id, parts, if_none_match=once)
        except BaseException:
            with contextlib.suppress(StoreError):
                await self.abort(target, upload_id)
            raise
        if done is None:
            await self.abort(target, upload_id)
            return False
        if done is False:
            raise StoreError(f"{self.url(target)}: our copy's multipart upload vanished")
        return True
