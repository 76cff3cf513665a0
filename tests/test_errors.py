"""The one exception tree (bodycamd/errors.py): every error class is in it, under the parent
its docstring draws, and inherits the builtin drawn beside its branch."""

from __future__ import annotations

import builtins
import inspect
import re

from bodycamd import errors

ROW = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>\w+)(?: \((?P<builtin>\w+)\))?(?:\s|$)")


def _drawn() -> dict[str, tuple[str, str | None]]:
    """name -> (parent, builtin) as the module docstring draws the tree."""
    tree = errors.__doc__.split("::", 1)[1].split("\n\n", 2)[1]
    drawn: dict[str, tuple[str, str | None]] = {}
    parents: list[str] = []
    for line in tree.splitlines():
        row = ROW.match(line.removeprefix("    "))  # the literal block's indent
        if row is None or not row["name"][0].isupper():
            continue  # a wrapped description
        depth = len(row["indent"]) // 5
        parents[depth:] = [row["name"]]
        if depth:
            drawn[row["name"]] = (parents[depth - 1], row["builtin"])
    return drawn


def test_every_error_class_is_drawn_in_the_tree_where_it_is() -> None:
    classes = {
        name: cls
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.BodycamError) and cls is not errors.BodycamError
    }
    drawn = _drawn()
    assert set(drawn) == set(classes)
    for name, (parent, builtin) in drawn.items():
        assert classes[name].__bases__[0] is getattr(errors, parent), name
        if builtin is not None:
            assert issubclass(classes[name], getattr(builtins, builtin)), name


def test_the_control_clients_errors_are_leaves() -> None:
    """bodycamctl's failures are caught as BodycamError, and as ConnectionError by code
    that only knows the builtins."""
    for leaf in (errors.ControlUnreachable, errors.ControlFailed):
        assert issubclass(leaf, errors.ControlError)
        assert issubclass(leaf, errors.BodycamError)
        assert issubclass(leaf, ConnectionError)
