"""The file camera (hw/camera/replay.py) probes a file once, without decoding, and replays it
loop after loop by seeking back, every loop the same packets on a time line that runs on."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from bodycamd.camera import EncodedPacket, StreamKind
from bodycamd.config import CameraConfig
from bodycamd.errors import HardwareError
from bodycamd.recorder.muxer import MuxState, TsMuxer
from hw.camera.replay import FileCamera
from tests.recorder.helpers import decode_capturing, synthetic_packets


def test_replays_every_loop_the_same_packets_on_a_running_time_line(tmp_path: Path) -> None:
    packets, params = synthetic_packets(2)
    muxer = TsMuxer(params, MuxState(packets[0].pts_us))
    footage = tmp_path / "footage.ts"
    footage.write_bytes(b"".join(muxer.mux(p) for p in packets) + muxer.close())

    seen: list[EncodedPacket] = []
    errors: list[BaseException] = []
    config = CameraConfig(backend="file", file=str(footage), realtime=False)
    camera = FileCamera(config, seen.append, errors.append, loops=2)
    assert (camera.params.width, camera.params.height) == (params.width, params.height)
    assert (camera.params.video_codec, camera.params.audio_codec) == ("h264", "aac")
    assert camera.params.audio_rate == params.audio_rate
    camera.start()
    assert camera._thread is not None
    camera._thread.join()
    camera.stop()

    assert not errors
    half = len(seen) // 2
    first, second = seen[:half], seen[half:]
    assert len(first) == len(second) and len(first) >= len(packets)  # + the muxer's primer
    assert [(p.stream, p.data, p.keyframe) for p in first] == [
        (p.stream, p.data, p.keyframe) for p in second
    ]
    video = [p.pts_us for p in seen if p.stream is StreamKind.VIDEO]
    assert video == sorted(video) and len(set(video)) == len(video)
    assert second[0].stream is first[0].stream and second[0].pts_us > first[-1].pts_us


def rehearsal_mp4(
    path: Path, b_frames: int, audio_codec: str = "aac", layout: str = "mono"
) -> None:
    """A short MP4 as a phone or an editor writes it: H.264 in avcC form, AAC."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=30)
        assert isinstance(video, av.VideoStream)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        video.options = {"bf": str(b_frames)}
        audio = container.add_stream(audio_codec, rate=48_000)
        assert isinstance(audio, av.AudioStream)
        audio.layout = layout
        channels = audio.layout.nb_channels
        for index in range(45):
            image = np.full((240 * 3 // 2, 320), index * 5 % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
            frame.pts = index
            container.mux(video.encode(frame))
        for index in range(70):
            sound = av.AudioFrame.from_ndarray(
                np.zeros((channels, 1024), dtype=np.float32), format="fltp", layout=layout
            )
            sound.sample_rate, sound.pts = 48_000, index * 1024
            container.mux(audio.encode(sound))
        container.mux(video.encode())
        container.mux(audio.encode())


def test_an_mp4_loops_and_records_as_the_camera_would_give_it(tmp_path: Path) -> None:
    """MP4 cannot seek by byte (the file is opened again for the next loop), and its H.264 is
    length-prefixed: converted to Annex B as read, it records into a TS that decodes whole."""
    footage = tmp_path / "rehearsal.mp4"
    rehearsal_mp4(footage, b_frames=0)
    seen: list[EncodedPacket] = []
    errors: list[BaseException] = []
    config = CameraConfig(backend="file", file=str(footage), realtime=False)
    camera = FileCamera(config, seen.append, errors.append, loops=2)
    camera.start()
    assert camera._thread is not None
    camera._thread.join()
    camera.stop()
    assert not errors
    video = [p for p in seen if p.stream is StreamKind.VIDEO]
    assert len(video) == 90 and all(p.data[:4] == b"\0\0\0\1" for p in video)  # Annex B
    muxer = TsMuxer(camera.params, MuxState(seen[0].pts_us))
    data = b"".join(muxer.mux(p) for p in seen) + muxer.close()
    warnings, _ = decode_capturing(data)
    assert warnings == []


def test_footage_with_b_frames_is_refused_naming_the_fix(tmp_path: Path) -> None:
    footage = tmp_path / "edited.mp4"
    rehearsal_mp4(footage, b_frames=3)
    config = CameraConfig(backend="file", file=str(footage), realtime=False)
    with pytest.raises(HardwareError, match=r"B-frames .* -bf 0"):
        FileCamera(config, lambda packet: None, lambda error: None)


@pytest.mark.parametrize(
    ("codec", "layout", "named"),
    [("aac", "5.1", r"aac, 6 channel\(s\)"), ("libopus", "stereo", r"opus, 2 channel\(s\)")],
)
def test_audio_the_muxer_cannot_frame_is_refused_at_open(
    tmp_path: Path, codec: str, layout: str, named: str
) -> None:
    """Refused when the camera opens, naming the re-encode and camera.audio = false; it
    used to fail at the first segment of the first recording. Without audio it replays."""
    footage = tmp_path / "concert.mkv"
    rehearsal_mp4(footage, b_frames=0, audio_codec=codec, layout=layout)
    config = CameraConfig(backend="file", file=str(footage), realtime=False)
    with pytest.raises(HardwareError, match=rf"{named} .* -ac 2 .* camera.audio = false"):
        FileCamera(config, lambda packet: None, lambda error: None)
    silent = CameraConfig(backend="file", file=str(footage), realtime=False, audio=False)
    camera = FileCamera(silent, lambda packet: None, lambda error: None)
    assert camera.params.audio_codec is None
    camera.stop()
