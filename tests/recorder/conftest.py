"""The `picamera2` fixture: the real picamera2 package importable off a Pi, with only
libcamera, pykms and prctl stubbed (they exist only on a Pi). Modules are restored after."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

STUBBED = ("libcamera", "pykms", "prctl")


class _Anything:
    """Whatever picamera2 reads from libcamera at import time."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __call__(self, *args: object, **kwargs: object) -> _Anything:
        return _Anything()

    def __getattr__(self, name: str) -> _Anything:
        return _Anything()

    def __iter__(self) -> Iterator[object]:
        return iter(())

    def __mro_entries__(self, bases: tuple[type, ...]) -> tuple[type, ...]:
        return (object,)


@pytest.fixture
def picamera2() -> Iterator[Any]:
    saved = {
        name: mod
        for name, mod in sys.modules.items()
        if name.split(".")[0] in (*STUBBED, "picamera2")
    }
    for name in STUBBED:
        stub = types.ModuleType(name)
        stub.__getattr__ = lambda attr: _Anything()  # type: ignore[method-assign]
        stub.__path__ = []
        sys.modules[name] = stub
    import picamera2 as real

    yield real
    for name in [n for n in sys.modules if n.split(".")[0] in (*STUBBED, "picamera2")]:
        del sys.modules[name]
    sys.modules.update(saved)
