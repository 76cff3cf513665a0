"""Camera backends: picamera2 (the camera module), synthetic (test pattern) and file replay.

`open_camera` picks one from the config; picamera2 is imported only when chosen, since it
cannot be imported off a Pi.
"""

from __future__ import annotations

from bodycamd.camera import Camera, FaultSink, PacketSink
from bodycamd.config import CameraConfig, Hardware


def backend_name(config: CameraConfig, hardware: Hardware) -> str:
    if config.backend != "auto":
        return config.backend
    return "picamera2" if hardware == "pi" else "synthetic"


def open_camera(
    config: CameraConfig, hardware: Hardware, post: PacketSink, fault: FaultSink
) -> Camera:
    name = backend_name(config, hardware)
    if name == "picamera2":
        from .picam import Picamera2Camera

        return Picamera2Camera(config, post, fault)
    if name == "file":
        from .replay import FileCamera

        return FileCamera(config, post, fault)
    from .synthetic import SyntheticCamera

    return SyntheticCamera(config, post, fault)
