"""Button semantics as pure logic, at exact instants."""

from __future__ import annotations

import pytest

from bodycamd.button import Action, ButtonLogic, ButtonTiming

T = ButtonTiming(debounce_seconds=0.05, hold_seconds=3.0, double_press_seconds=0.5)


def test_press_starts_at_once() -> None:
    logic = ButtonLogic(T)
    assert logic.edge(True, 10.0, recording=False) == [Action.START]
    assert logic.edge(False, 10.2, recording=True) == []


def test_short_press_while_recording_does_nothing_and_hold_stops() -> None:
    logic = ButtonLogic(T)
    assert logic.edge(True, 10.0, recording=True) == []
    assert logic.edge(False, 10.3, recording=True) == []
    assert logic.edge(True, 20.0, recording=True) == []
    assert logic.next_due == 23.0
    assert logic.poll(22.99, recording=True) == []
    assert logic.poll(23.0, recording=True) == [Action.STOP]
    assert logic.edge(False, 24.0, recording=False) == []  # letting go afterwards is nothing


def test_hold_recognised_on_release_too() -> None:
    logic = ButtonLogic(T)
    logic.edge(True, 5.0, recording=True)
    assert logic.edge(False, 8.5, recording=True) == [Action.STOP]


def test_double_press_while_recording_adds_a_marker() -> None:
    logic = ButtonLogic(T)
    assert logic.edge(True, 1.0, recording=True) == []
    assert logic.edge(False, 1.1, recording=True) == []
    assert logic.edge(True, 1.4, recording=True) == [Action.MARKER]
    assert logic.edge(False, 1.5, recording=True) == []
    assert logic.edge(True, 1.8, recording=True) == []  # a third press starts a new pair


def test_bounce_counts_once_and_a_quick_release_still_settles() -> None:
    logic = ButtonLogic(T)
    edges = [(True, 1.000), (False, 1.004), (True, 1.009), (False, 1.013), (True, 1.020)]
    actions = [a for level, t in edges for a in logic.edge(level, t, recording=False)]
    assert actions == [Action.START]
    assert logic.poll(1.06, recording=True) == []  # settled down: still pressed
    logic.edge(False, 1.2, recording=True)  # let go
    # a press released within the bounce window: the release is taken when the window ends
    assert logic.edge(True, 5.0, recording=True) == []
    assert logic.edge(False, 5.001, recording=True) == []
    assert logic.next_due == 5.05
    assert logic.poll(5.05, recording=True) == []
    assert logic.next_due is None  # released: no hold pending
    assert logic.poll(9.0, recording=True) == []


def test_hold_begun_inside_the_release_window_is_timed_from_its_edge() -> None:
    """A hold that follows the start press's release within the bounce window: its down edge
    is taken when the window closes, but dated from the edge, so a 3 s hold stops."""
    logic = ButtonLogic(T)
    assert logic.edge(True, 10.0, recording=False) == [Action.START]
    assert logic.edge(False, 10.15, recording=True) == []
    assert logic.edge(True, 10.152, recording=True) == []  # inside the release's window
    window_closes = logic.next_due
    assert window_closes == pytest.approx(10.2)
    assert logic.poll(window_closes, recording=True) == []
    assert logic.next_due == pytest.approx(13.152)  # not 13.2: the edge's time
    assert logic.edge(False, 13.153, recording=True) == [Action.STOP]


def test_a_late_poll_settles_the_release_before_judging_a_hold() -> None:
    """A press released inside its window, with the poll 3.5 s late (the panel was busy
    starting the recording): the 10 ms press is not a hold."""
    logic = ButtonLogic(T)
    assert logic.edge(True, 10.0, recording=False) == [Action.START]
    assert logic.edge(False, 10.01, recording=True) == []
    assert logic.poll(13.5, recording=True) == []
    assert logic.next_due is None


def test_a_pending_release_is_settled_before_the_next_press() -> None:
    """Edges in a batch (no poll between): a tap released inside its window, then another
    press 3.5 s later, is two taps, not a 3.5 s hold."""
    logic = ButtonLogic(T)
    assert logic.edge(True, 10.0, recording=True) == []
    assert logic.edge(False, 10.01, recording=True) == []
    assert logic.edge(True, 13.5, recording=True) == []
    assert logic.next_due == 16.5


def test_a_press_right_after_a_hold_is_not_lost_to_its_release() -> None:
    """The symmetric case: a hold stops, then a quick press begins inside the hold release's
    window and ends before any poll (the edges were queued): the press still starts."""
    logic = ButtonLogic(T)
    assert logic.edge(True, 10.0, recording=True) == []
    assert logic.poll(13.0, recording=True) == [Action.STOP]
    batch = [(False, 13.2), (True, 13.202), (False, 13.352)]
    actions = [a for level, t in batch for a in logic.edge(level, t, recording=False)]
    assert actions == [Action.START]
    assert logic.next_due is None
