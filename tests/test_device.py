"""Device policy with the real recorder and storage behind it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bodycamd.camera import EncodedPacket
from bodycamd.config import SessionConfig
from bodycamd.device import Caller, Device
from bodycamd.errors import LoginRefused, Refused
from bodycamd.evidence.reader import scan_segment
from bodycamd.session import SessionPolicy
from bodycamd.state import StateChange
from bodycamd.storage.spool import Spool
from tests.device_rig import make_device

ME = Caller("test", uid=1000, pid=42)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[Device, Spool]]:
    device, capture, spool = await make_device(tmp_path, SessionConfig())
    task = asyncio.create_task(capture.run())
    yield device, spool
    await capture.stop()
    await task


def audit(spool: Spool) -> list[tuple[str, dict[str, object]]]:
    # every event names its boot (issue #11); the tests compare the rest
    return [
        (event.kind, {k: v for k, v in event.fields.items() if k != "boot"})
        for event in spool.journal.events()
    ]


async def test_recording_refused_while_logged_out(rig: tuple[Device, Spool]) -> None:
    device, _ = rig
    with pytest.raises(Refused) as refused:
        await device.record_start(ME)
    assert refused.value.code == "not_logged_in"


async def test_every_recording_carries_the_officer(rig: tuple[Device, Spool]) -> None:
    device, spool = rig
    flips: list[tuple[str, bool]] = []
    device.logged_in.listen(lambda value: flips.append(("logged_in", value)))
    device.recording.listen(lambda value: flips.append(("recording", value)))
    await device.login("7654321", ME)
    await device.record_start(ME)
    assert flips == [("logged_in", True), ("recording", True)]
    assert device._capture.recorder is not None
    recording = device._capture.recorder.recording
    assert recording is not None and recording.officer == "7654321"
    start = next(f for k, f in audit(spool) if k == "recording_start")
    assert start["officer"] == "7654321"
    login = next(f for k, f in audit(spool) if k == "officer_login")
    assert (login["peer_uid"], login["peer_pid"], login["source"]) == (1000, 42, "test")


async def test_docking_while_recording_keeps_recording_then_logs_out(
    rig: tuple[Device, Spool],
) -> None:
    device, spool = rig
    await device.login("123456", ME)
    await device.record_start(ME)
    await device.set_docked(True, Caller("dock"))
    assert device.state.recording == "recording" and device.state.officer == "123456"
    await device.record_stop(ME)
    await device.settle()
    assert device.state.officer is None
    logout = next(f for k, f in audit(spool) if k == "officer_logout")
    assert logout["reason"] == "docked"


async def test_change_events_reach_subscribers(rig: tuple[Device, Spool]) -> None:
    device, _ = rig
    subscription = device.events.subscribe(limit=2)
    await device.login("123456", ME)
    change = await subscription.next()
    assert change.new.officer == "123456" and "officer" in change.to_json()["changed"]
    for number in range(5):  # a slow reader loses the oldest, not the daemon's memory
        later = replace(device.state, recording_seconds=float(number))
        device.events.publish(StateChange(device.state, later, "tick"))
    assert subscription.overflowed == 3
    assert (await subscription.next()).new.recording_seconds == 3.0


async def test_anonymous_recording_when_policy_allows_it_is_audited(tmp_path: Path) -> None:
    device, capture, spool = await make_device(
        tmp_path, SessionConfig(allow_anonymous_recording=True)
    )
    task = asyncio.create_task(capture.run())
    try:
        await device.record_start(ME)
        assert device.state.recording == "recording"
        assert "anonymous_recording_allowed" in [k for k, _ in audit(spool)]
    finally:
        await capture.stop()
        await task


async def test_start_below_min_free_is_refused_with_the_reason(tmp_path: Path) -> None:
    device, capture, _ = await make_device(tmp_path, SessionConfig(), quota="64KiB")
    task = asyncio.create_task(capture.run())
    try:
        await device.login("123456", ME)
        with pytest.raises(Refused) as refused:
            await device.record_start(ME)
        assert refused.value.code == "storage_full"
        assert "a recording needs at least" in str(refused.value)
    finally:
        await capture.stop()
        await task


def test_personnel_number_rules(tmp_path: Path) -> None:
    roster = tmp_path / "roster.txt"
    roster.write_text("# shift A\n123456\n2345678  # sergeant\n")
    policy = SessionPolicy(SessionConfig(roster=str(roster)))
    assert policy.validate("123456") == "123456"
    assert policy.validate("2345678") == "2345678"
    with pytest.raises(LoginRefused, match="not on this device's roster"):
        policy.validate("999999")
    with pytest.raises(LoginRefused, match=r"'12345' is not valid \(expected \[0-9\]\{6,8\}\)"):
        policy.validate("12345")
    with pytest.raises(LoginRefused, match="personnel number missing"):
        policy.validate("")
    roster.unlink()
    with pytest.raises(LoginRefused, match=r"roster .* cannot be read"):
        policy.validate("123456")


async def test_clock_sync_and_storage_thresholds_are_audited(tmp_path: Path) -> None:
    device, capture, spool = await make_device(tmp_path, quota="1MiB")
    synced = {"now": False}
    device._clock_synced = lambda: synced["now"]
    await device.settle()
    assert {"clock_unsynced", "storage_low"} <= device.state.health
    synced["now"] = True
    await device.settle()
    assert "clock_unsynced" not in device.state.health
    events = audit(spool)
    assert ("clock_sync_changed", {"synchronised": True}) in events
    thresholds = [f for k, f in events if k == "storage_thresholds"]
    assert thresholds and thresholds[-1]["low"] is True
    await capture.stop()


def journal_refuses_audit(spool: Spool, refuse: bool) -> None:
    """A real SQLite failure on every audit insert (a trigger, from a second connection)."""
    db = sqlite3.connect(spool.journal.path)
    try:
        if refuse:
            db.execute(
                "CREATE TRIGGER no_audit BEFORE INSERT ON audit "
                "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
            )
        else:
            db.execute("DROP TRIGGER no_audit")
        db.commit()
    finally:
        db.close()


async def test_a_change_whose_audit_fails_is_refused_and_nothing_changes(
    rig: tuple[Device, Spool],
) -> None:
    device, spool = rig
    journal_refuses_audit(spool, True)
    with pytest.raises(Refused) as refused:
        await device.login("123456", ME)
    assert refused.value.code == "storage" and "nothing changed" in str(refused.value)
    assert device.officer is None and not device.logged_in.value
    await device.settle()
    assert device.state.officer is None and "journal_error" in device.state.health
    journal_refuses_audit(spool, False)
    await device.login("123456", ME)
    journal_refuses_audit(spool, True)
    with pytest.raises(Refused, match="nothing changed"):
        await device.logout(ME)
    assert device.state.officer == "123456"  # still logged in: the logout was not recorded
    journal_refuses_audit(spool, False)
    await device.logout(ME)
    assert device.state.officer is None and "journal_error" not in device.state.health
    assert [k for k, _ in audit(spool) if k.startswith("officer_")] == [
        "officer_login",
        "officer_logout",
    ]


async def test_a_failed_audit_on_the_recording_path_costs_no_footage(
    rig: tuple[Device, Spool],
) -> None:
    device, spool = rig
    await device.login("123456", ME)
    journal_refuses_audit(spool, True)
    await device.record_start(ME)  # its recording_start event cannot be written
    assert device.state.recording == "recording" and device.recording.value
    assert "journal_error" in device.state.health
    recorder = device._capture.recorder
    assert recorder is not None
    handled = asyncio.Event()
    handle = recorder.handle

    async def handle_and_tell(packet: EncodedPacket) -> None:
        await handle(packet)
        handled.set()

    recorder.handle = handle_and_tell  # type: ignore[method-assign]
    async with asyncio.timeout(20):  # the real-time camera delivers 1.5 s of footage
        while recorder.recording is None or recorder.recording.duration_s < 1.5:
            handled.clear()
            await handled.wait()
    await device.record_stop(ME)
    assert not device.recording.value
    sealed = list(spool.layout.spool.glob("*/*.seg"))  # sealed; journalled at the next start
    assert len(sealed) == 1 and scan_segment(sealed[0]).status == "complete"
    journal_refuses_audit(spool, False)
    await device.settle()
    await device.set_docked(True, ME)  # a write that commits clears the flag
    device.refresh("test")
    assert "journal_error" not in device.state.health


@pytest.mark.parametrize("how", ["logout", "dock"])
async def test_stealth_ends_with_the_officer_who_chose_it(tmp_path: Path, how: str) -> None:
    """One officer's stealth never carries over to the next: it ends when the session does
    (logout or the dock's logout), and the logout's audit event says so."""
    device, capture, spool = await make_device(tmp_path, SessionConfig())
    task = asyncio.create_task(capture.run())
    try:
        await device.login("111111", ME)
        await device.set_stealth(True, True, ME)
        assert device.state.stealth
        if how == "logout":
            await device.logout(ME)
        else:
            await device.set_docked(True, Caller("dock"))
            await device.settle()
            await device.set_docked(False, Caller("dock"))
            await device.settle()
        assert device.officer is None and not device.state.stealth
        logout = next(f for k, f in audit(spool) if k == "officer_logout")
        assert logout["stealth_ended"] is True
        await device.login("222222", ME)
        await device.record_start(ME)
        assert device.state.recording == "recording" and not device.state.stealth
        await device.record_stop(ME)
    finally:
        await capture.stop()
        await task
