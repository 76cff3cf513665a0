"""A Picamera2 for tests off a Pi. With the `picamera2` fixture (conftest.py: only libcamera,
pykms and prctl stubbed), `NoLibcameraPicamera2` replaces only the Picamera2 methods that talk
to libcamera (open, configure, start, stop, close, the camera's control list). Everything
else (start_recording, start_encoder, stop_recording, the encoders with their audio thread)
is picamera2's own code."""

from __future__ import annotations

import types
from typing import Any, ClassVar


def no_libcamera_picamera2(
    *,
    offers_autofocus: bool = True,
    configure_error: Exception | None = None,
    model: str = "imx708",
) -> type[Any]:
    """A Picamera2 subclass (build it inside the `picamera2` fixture) whose libcamera edge is
    a camera that configures, starts and stops; every instance is kept in `instances`."""
    from picamera2 import Picamera2

    class NoLibcameraPicamera2(Picamera2):  # type: ignore[misc]
        instances: ClassVar[list[NoLibcameraPicamera2]] = []

        def __init__(self) -> None:  # no libcamera CameraManager to open
            self._reset_flags()
            self._preview = None
            self.is_open = True
            self.closed = False
            self.configured: dict[str, Any] | None = None
            self.camera_ctrl_info = {"FrameDurationLimits": (None, types.SimpleNamespace(min=1))}
            self.camera = types.SimpleNamespace(id=f"/base/soc/i2c0mux/i2c@1/{model}@1a")
            self.camera_properties_ = {"Model": model}
            NoLibcameraPicamera2.instances.append(self)

        @property
        def camera_controls(self) -> dict[str, Any]:
            controls: dict[str, Any] = {"FrameRate": (1.0, 120.0, 30.0)}
            if offers_autofocus:
                controls["AfMode"] = (0, 2, 0)
            return controls

        def create_video_configuration(self, main: Any, controls: Any, **_: Any) -> Any:
            width, height = main["size"]
            stream = {"size": (width, height), "format": "YUV420", "stride": width}
            return {"main": stream, "controls": controls, "encode": "main"}

        def configure(self, camera_config: Any = None) -> None:
            if configure_error is not None:
                raise configure_error
            self.configured = self.camera_config = camera_config
            self.encode_stream_name = camera_config["encode"]

        def camera_configuration(self) -> Any:
            return self.camera_config

        def start(self, *args: Any, **kwargs: Any) -> None:
            self.started = True

        def stop(self) -> None:
            self.started = False

        def close(self) -> None:
            self.stop()
            self.is_open = False
            self.closed = True

    return NoLibcameraPicamera2
