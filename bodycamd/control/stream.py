"""An event stream (`bodycamctl watch`, the `events` request): every state change pushed to
one client until it leaves.

Why it is bounded both ways: the daemon's memory must not depend on a client. Changes wait
for a slow reader in a mailbox of STREAM_MAILBOX (the oldest are dropped, and the reader is
told); what the client sends is read and thrown away, at most MAX_REQUEST bytes in all
before the stream ends with `too_large`; and every write goes through the server's `send`,
which cuts off a client that stops reading. The server decides who may stream (its stream
pool, server.py); this module only runs one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ..device import Device
from .protocol import MAX_REQUEST, Request, encode, failure, success

STREAM_MAILBOX = 256  # state changes queued for a slow stream reader; older ones are dropped
DISCARD_CHUNK = 4096
Send = Callable[[asyncio.StreamWriter, bytes], Awaitable[None]]


async def stream_events(
    device: Device,
    request: Request,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    send: Send,
) -> None:
    """Push every state change until the client leaves. The client has nothing more to
    say: what it sends is read and thrown away, and more than MAX_REQUEST bytes of it
    ends the stream (`too_large`), so a stream never grows the daemon's memory."""
    subscription = device.events.subscribe(STREAM_MAILBOX)
    closed = asyncio.create_task(_discard_until_eof(reader))
    try:
        await send(
            writer, success(request.id, {"subscribed": True, "state": device.state.to_json()})
        )
        while not closed.done():
            change = asyncio.create_task(subscription.next())
            await asyncio.wait({change, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not change.done():
                change.cancel()
                break
            await send(writer, encode({"event": change.result().to_json()}))
        if closed.done() and not closed.cancelled() and closed.result():
            await send(writer, failure(request.id, "too_large", "an event stream takes no input"))
    finally:
        closed.cancel()
        device.events.unsubscribe(subscription)


async def _discard_until_eof(reader: asyncio.StreamReader) -> bool:
    """Read and drop what a stream client sends; True once it sent more than MAX_REQUEST
    bytes (it is then cut off), False at EOF."""
    received = 0
    while chunk := await reader.read(DISCARD_CHUNK):
        received += len(chunk)
        if received > MAX_REQUEST:
            return True
    return False
