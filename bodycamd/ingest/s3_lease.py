"""A claim on one upload, kept in the bucket, so only one node writes an upload at a time.

tus clients send one PATCH at a time per upload, so two writers on one upload only happen
when a client gave up on a request that a node is still serving (a cut connection, a
load balancer that moved the client) or when a node died mid-request. The offset check
already turns a *stale* PATCH into 409; the lease handles two PATCHes *at once*: the second
gets `UploadBusy` (423) instead of both uploading the same part number.

The lease is a small object ``<upload>.lock`` holding a random token and an expiry:

- take: PutObject with If-None-Match: * — one node wins, any other sees 412;
- a node that loses reads the lease: its own token means an earlier attempt of this very
  request succeeded (botocore retried a write whose answer was lost); an expired lease (its
  holder died) is taken over with If-Match on the ETag read, so of two nodes breaking the
  same dead lease only one wins; a live lease is `UploadBusy`;
- renew (while parts are uploaded, past half the term): If-Match on our ETag, so a lease that
  was broken because we were too slow is noticed and the append stops with `UploadBusy`;
- release: DeleteObject with If-Match, which leaves a lease taken over by another alone.

A node killed while holding a lease blocks that upload for at most `lease_seconds`; the
camera's retries (HEAD, PATCH, 423, backoff) carry it over. Expiry compares the nodes'
clocks, which a fleet keeps in step (NTP); a skew only shortens or lengthens that wait.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from .errors import UploadBusy
from .s3_objects import Bucket


@dataclass
class Lease:
    key: str
    token: str
    etag: str
    expires_at: float


class Leases:
    def __init__(self, bucket: Bucket, seconds: float, clock: Callable[[], float]) -> None:
        self._bucket = bucket
        self._seconds = seconds
        self._clock = clock

    def _body(self, token: str) -> tuple[bytes, float]:
        expires_at = self._clock() + self._seconds
        return json.dumps({"token": token, "expires_at": expires_at}).encode(), expires_at

    async def take(self, key: str, what: str) -> Lease:
        """Hold `key`, or raise UploadBusy naming `what` while another node holds it."""
        token = secrets.token_hex(16)
        for _ in range(3):
            body, expires_at = self._body(token)
            etag = await self._bucket.put(key, body, if_none_match=True)
            if etag is not None:
                return Lease(key, token, etag, expires_at)
            held = await self._bucket.get(key)
            if held is None:
                continue  # released between our write and our read: try again
            state = json.loads(held.body)
            if state.get("token") == token:
                return Lease(key, token, held.etag, float(state["expires_at"]))
            if float(state.get("expires_at", 0)) > self._clock():
                raise UploadBusy(f"{what}: another request is writing it; try again later")
            etag = await self._bucket.put(key, body, if_match=held.etag)
            if etag is not None:
                return Lease(key, token, etag, expires_at)
        raise UploadBusy(f"{what}: other requests keep claiming it; try again later")

    async def renew(self, lease: Lease, what: str) -> None:
        """Extend the lease once half its term has passed; UploadBusy if it was taken over."""
        if self._clock() < lease.expires_at - self._seconds / 2:
            return
        body, expires_at = self._body(lease.token)
        etag = await self._bucket.put(lease.key, body, if_match=lease.etag)
        if etag is None:
            raise UploadBusy(f"{what}: this request was too slow and another one took over")
        lease.etag, lease.expires_at = etag, expires_at

    async def release(self, lease: Lease) -> None:
        await self._bucket.delete(lease.key, if_match=lease.etag)
