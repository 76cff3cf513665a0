"""The loop↔thread pieces: one wake-up per batch, ordered worker calls, a sleep that leaves
nothing behind, and a channel that drains on close."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bodycamd.camera import EncodedPacket, StreamKind
from bodycamd.hop import Inbox, LoopHop, WorkerThread, sleep_unless
from bodycamd.recorder.channel import PacketChannel


def from_thread(work: object) -> None:
    """Run `work` on a real foreign thread while the loop is not running (joined here)."""
    assert callable(work)
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


async def test_a_burst_from_a_thread_costs_one_wakeup() -> None:
    inbox: Inbox[int] = Inbox(LoopHop.here())
    from_thread(lambda: [inbox.push(i) for i in range(100)])
    assert await inbox.wait()
    taken = []
    while (item := inbox.pop()) is not None:
        taken.append(item)
    assert taken == list(range(100))
    assert inbox.wakeups == 1


async def test_items_that_do_not_wake_ride_along_with_the_next_that_does() -> None:
    inbox: Inbox[str] = Inbox(LoopHop.here())
    from_thread(lambda: [inbox.push("audio", wake=False) for _ in range(3)])
    assert inbox.wakeups == 0
    from_thread(lambda: inbox.push("video"))
    assert await inbox.wait()
    assert [inbox.pop() for _ in range(4)] == ["audio", "audio", "audio", "video"]
    assert inbox.wakeups == 1


async def test_wait_sleeps_until_an_item_and_ends_after_close() -> None:
    inbox: Inbox[int] = Inbox(LoopHop.here())
    waiting = asyncio.create_task(inbox.wait())
    await asyncio.sleep(0)
    assert not waiting.done()
    threading.Thread(target=inbox.push, args=(7,)).start()
    assert await waiting
    assert inbox.pop() == 7 and inbox.pop() is None
    inbox.push(8)
    inbox.close()
    assert await inbox.wait()  # what was queued before close is still handed out
    assert inbox.pop() == 8
    assert not await inbox.wait()


async def test_worker_runs_calls_in_order_on_one_thread_and_returns_errors() -> None:
    worker = WorkerThread("test-io", depth=2)
    seen: list[tuple[int, str]] = []

    def call(i: int) -> int:
        seen.append((i, threading.current_thread().name))
        return i * 2

    results = await asyncio.gather(*(worker.run(lambda i=i: call(i)) for i in range(10)))
    assert results == [i * 2 for i in range(10)]
    assert [i for i, _ in seen] == list(range(10))
    assert {name for _, name in seen} == {"test-io"}

    def fail() -> None:
        raise OSError(5, "I/O error")

    with pytest.raises(OSError, match="I/O error"):
        await worker.run(fail)
    await worker.stop()
    assert "test-io" not in {t.name for t in threading.enumerate()}


async def test_sleep_unless_is_cut_short_and_leaves_no_task() -> None:
    event = asyncio.Event()
    forever = asyncio.Event()

    async def endless(_: float) -> None:
        await forever.wait()

    before = asyncio.all_tasks()
    sleeping = asyncio.create_task(sleep_unless(event, 3600, endless))
    await asyncio.sleep(0)
    event.set()
    assert await sleeping
    assert asyncio.all_tasks() == before

    async def short(_: float) -> None:
        await asyncio.sleep(0)

    event.clear()
    assert not await sleep_unless(event, 1.0, short)
    assert asyncio.all_tasks() == before


def packet(pts: int, key: bool = False, size: int = 100) -> EncodedPacket:
    return EncodedPacket(StreamKind.VIDEO, b"x" * size, key, pts)


async def test_channel_close_hands_out_the_queue_then_ends() -> None:
    channel = PacketChannel(10_000, LoopHop.here())
    from_thread(lambda: [channel.put(packet(i, i == 0)) for i in range(5)])
    channel.close()
    handled = []
    while await channel.wait():
        while (p := channel.pop()) is not None:
            handled.append(p.pts_us)
            channel.done(p)
    assert handled == [0, 1, 2, 3, 4]
    assert channel.queued_bytes == 0
    await channel.wait_empty()


async def test_channel_bound_counts_the_packet_in_hand_and_discard_frees_it() -> None:
    channel = PacketChannel(250, LoopHop.here())
    channel.put(packet(0, True))
    channel.put(packet(1))
    assert await channel.wait()
    first = channel.pop()
    assert first is not None
    channel.put(packet(2))  # 300 > 250 with the one in hand: dropped, a gap opens
    channel.put(packet(3))  # not a keyframe: dropped too (whole GOP)
    channel.done(first)
    channel.put(packet(4, True))  # a keyframe that fits: the gap closes
    gaps = channel.take_gaps()
    assert [(g.start_us, g.end_us, g.frames) for g in gaps] == [(2, 4, 2)]
    assert channel.discard() == 200
    await channel.wait_empty()


async def test_audio_after_the_last_frame_is_handled_when_waited_for() -> None:
    """Audio does not wake the loop by itself; waiting for the channel to empty does."""
    channel = PacketChannel(10_000, LoopHop.here())
    handled: list[int] = []

    async def consume() -> None:
        while await channel.wait():
            while (p := channel.pop()) is not None:
                handled.append(p.pts_us)
                channel.done(p)

    consumer = asyncio.create_task(consume())
    audio = [EncodedPacket(StreamKind.AUDIO, b"a" * 10, True, pts) for pts in (1, 2)]
    from_thread(lambda: [channel.put(p) for p in audio])
    assert channel.wakeups == 0
    async with asyncio.timeout(10):
        await channel.wait_empty()
    assert handled == [1, 2]
    channel.close()
    await consumer
