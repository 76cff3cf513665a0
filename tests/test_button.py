"""Button semantics as pure logic, at exact instants."""

from __future__ import annotations

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
