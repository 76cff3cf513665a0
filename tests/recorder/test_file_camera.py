"""The file camera (hw/camera/replay.py) probes a file once, without decoding, and replays it
loop after loop by seeking back, every loop the same packets on a time line that runs on."""

from __future__ import annotations

from pathlib import Path

from bodycamd.camera import EncodedPacket, StreamKind
from bodycamd.config import CameraConfig
from bodycamd.recorder.muxer import MuxState, TsMuxer
from hw.camera.replay import FileCamera
from tests.recorder.helpers import synthetic_packets


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
