"""Frame-exact decoding: every returned frame is checked against the index drawn in it."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from xclip.data import (  # noqa: E402
    FrameIndexError,
    PyAVReader,
    VideoDecodeError,
    open_video,
    read_frames,
)
from xclip.data.synthetic import (  # noqa: E402
    make_indexed_frame,
    read_frame_index,
)
from xclip.data.video import available_backends, backend_problem  # noqa: E402


def tsn_centres(n: int, num: int) -> list[int]:
    return [int((i + 0.5) * n / num) for i in range(num)]


def assert_exact(frames: np.ndarray, indices) -> None:
    indices = [int(i) for i in indices]
    assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3
    assert frames.shape[0] == len(indices)
    got = []
    for f in frames:
        try:
            got.append(read_frame_index(f))
        except ValueError:
            got.append(None)
    assert got == indices


INDEX_SETS = {
    "sorted": lambda n: [0, 3, 10, n // 2, n - 1],
    "unsorted": lambda n: [n - 1, 5, n // 2, 0, 31, 2],
    "duplicates": lambda n: [7, 7, 0, n - 1, 7, 0],
    "tsn8": lambda n: tsn_centres(n, 8),
    "all": lambda n: list(range(n)),
    "reversed": lambda n: list(range(n - 1, -1, -9)),
}

CLIPS = {
    # name: (num_frames, size, gop, codec, extra)
    "h264_gop30.mp4": (90, (96, 64), 30, "h264", {}),
    "h264_gop250.mp4": (300, (64, 48), 250, "h264", {}),
    "h264_nob.mp4": (60, (64, 48), 30, "h264", {"bframes": 0}),
    "mpeg4_gop30.mp4": (90, (96, 64), 30, "mpeg4", {}),
    "vp9_gop30.webm": (60, (64, 48), 30, "vp9", {}),
    "mpeg4_gop12.avi": (40, (64, 48), 12, "mpeg4", {}),
}


@pytest.fixture(scope="session")
def clips(clip_factory):
    def get(name):
        n, size, gop, codec, extra = CLIPS[name]
        if codec == "vp9" and "libvpx-vp9" not in av.codecs_available:
            pytest.skip("no vp9 encoder in this PyAV build")
        return clip_factory(name, n, size=size, gop=gop, codec=codec, **extra)

    return get


def _reader(backend: str, source, **kw):
    # An optional backend that cannot work here (not installed, or torchcodec without the system
    # FFmpeg libraries) is skipped with the library's own reason, which names what to install, so
    # that XCLIP_REQUIRE_TEST_DEPS=1 turns the skip into a failure (tests/conftest.py).
    problem = backend_problem(backend)
    if problem is not None:
        pytest.skip(problem)
    return open_video(source, backend, **kw)


# ---------------------------------------------------------------------------------------------
# synthetic frames
# ---------------------------------------------------------------------------------------------


def test_barcode_roundtrip():
    for i in (0, 1, 2, 299, 1000, 16383):
        assert read_frame_index(make_indexed_frame(i, (64, 48))) == i
    frame = make_indexed_frame(5, (64, 48))
    with pytest.raises(ValueError):
        read_frame_index(np.rot90(frame))
    with pytest.raises(ValueError):
        read_frame_index(np.full((48, 64, 3), 128, np.uint8))


# ---------------------------------------------------------------------------------------------
# exact frames
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("clip", list(CLIPS))
@pytest.mark.parametrize("which", list(INDEX_SETS))
def test_pyav_exact_frames(clips, clip, which):
    path = clips(clip)
    with open_video(path) as r:
        n = CLIPS[clip][0]
        assert r.metadata.num_frames == n
        idx = INDEX_SETS[which](n)
        assert_exact(r.get_frames(idx), idx)


@pytest.mark.parametrize("backend", ["torchcodec", "decord"])
@pytest.mark.parametrize("clip", ["h264_gop30.mp4", "h264_gop250.mp4", "mpeg4_gop30.mp4"])
def test_optional_backend_exact_frames(clips, backend, clip):
    path = clips(clip)
    n = CLIPS[clip][0]
    with _reader(backend, path) as r:
        assert r.metadata.num_frames == n
        for which in ("sorted", "unsorted", "duplicates", "tsn8"):
            idx = INDEX_SETS[which](n)
            assert_exact(r.get_frames(idx), idx)
    ref = read_frames(path, tsn_centres(n, 8), backend="pyav")
    other = read_frames(path, tsn_centres(n, 8), backend=backend)
    assert other.shape == ref.shape


def test_many_calls_on_one_reader_stay_exact(clips):
    """Decoder state carried across calls (read-ahead, skipped non-reference frames)."""
    rng = np.random.default_rng(0)
    with open_video(clips("h264_gop30.mp4")) as r:
        for _ in range(25):
            idx = rng.integers(0, 90, size=int(rng.integers(1, 6)))
            assert_exact(r.get_frames(idx), idx)
        for i in range(90):  # frame after frame, as a sequential reader would
            assert_exact(r.get_frames([i]), [i])


@pytest.mark.parametrize("skip_nonref", [True, False])
@pytest.mark.parametrize("threads", [1, 2])
def test_pyav_options_stay_exact(clips, skip_nonref, threads):
    idx = [89, 0, 44, 45, 46, 13, 13]
    with PyAVReader(clips("h264_gop30.mp4"), num_threads=threads, skip_nonref=skip_nonref) as r:
        assert_exact(r.get_frames(idx), idx)


def test_metadata(clips):
    with open_video(clips("h264_gop30.mp4")) as r:
        m = r.metadata
    assert (m.num_frames, m.width, m.height, m.rotation) == (90, 96, 64, 0)
    assert m.fps == pytest.approx(30.0)
    assert m.duration == pytest.approx(3.0)
    assert m.codec == "h264" and m.backend == "pyav"
    assert m.keyframes == (0, 30, 60)
    assert len(r) == 90


def test_frame_count_comes_from_packets_not_header(clips):
    # Matroska/WebM headers carry no frame count (stream.frames == 0).
    with open_video(clips("vp9_gop30.webm")) as r:
        assert r.metadata.header_num_frames == 0
        assert r.metadata.num_frames == 60


@pytest.mark.parametrize("backend", ["pyav", "torchcodec", "decord"])
def test_variable_frame_rate(clip_factory, backend):
    rng = np.random.default_rng(1)
    steps = rng.choice([1 / 60, 1 / 30, 1 / 10, 1 / 5], size=80)
    ts = np.concatenate([[0.0], np.cumsum(steps)[:-1]]).tolist()
    path = clip_factory("vfr.mp4", 80, size=(64, 48), gop=20, timestamps=ts)
    with _reader(backend, path) as r:
        assert r.metadata.num_frames == 80
        for which in ("sorted", "unsorted", "duplicates", "tsn8"):
            idx = INDEX_SETS[which](80)
            assert_exact(r.get_frames(idx), idx)
        if backend == "pyav":
            assert r.metadata.duration == pytest.approx(ts[-1] * 80 / 79, rel=1e-3)


@pytest.mark.parametrize("codec", ["h264", "mpeg4"])
def test_odd_size(clip_factory, codec):
    path = clip_factory(f"odd_{codec}.mkv", 40, size=(65, 49), gop=10, codec=codec)
    with open_video(path) as r:
        assert (r.metadata.width, r.metadata.height) == (65, 49)
        idx = [39, 0, 20, 21, 20]
        frames = r.get_frames(idx)
        assert frames.shape == (5, 49, 65, 3)
        assert_exact(frames, idx)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_is_reported_and_applied(clip_factory, rotation):
    path = clip_factory(f"rot{rotation}.mp4", 30, size=(64, 48), gop=10, rotation=rotation)
    idx = [0, 29, 15]
    with open_video(path) as r:
        assert r.metadata.rotation == rotation
        assert (r.metadata.width, r.metadata.height) == (64, 48)  # upright, as displayed
        frames = r.get_frames(idx)
        assert frames.shape == (3, 48, 64, 3)
        assert_exact(frames, idx)
    with PyAVReader(path, apply_rotation=False) as r:
        raw = r.get_frames(idx)
        assert r.metadata.rotation == rotation and not r.metadata.rotation_applied
        assert_exact(np.rot90(raw, k=rotation // 90, axes=(1, 2)), idx)


@pytest.mark.parametrize("backend", ["torchcodec", "decord"])
def test_rotation_optional_backends(clip_factory, backend):
    path = clip_factory("rot90.mp4", 30, size=(64, 48), gop=10, rotation=90)
    with _reader(backend, path) as r:
        # decord rotates too but cannot tell by how much
        assert r.metadata.rotation == (90 if backend == "torchcodec" else None)
        assert (r.metadata.width, r.metadata.height) == (64, 48)
        assert_exact(r.get_frames([3, 1]), [3, 1])


@pytest.mark.parametrize("as_file", [False, True])
def test_stream_without_timestamps_or_index(clip_factory, as_file):
    """Raw H.264 (Annex B): no timestamps, cannot seek: decoded in order, reopened to go back."""
    path = clip_factory("raw.h264", 60, size=(64, 48), gop=20)
    idx = [59, 3, 3, 40, 0]
    source = open(path, "rb") if as_file else path  # noqa: SIM115
    try:
        with open_video(source) as r:
            assert r.metadata.num_frames == 60
            assert_exact(r.get_frames(idx), idx)
            assert_exact(r.get_frames([10, 5]), [10, 5])
    finally:
        if as_file:
            source.close()


# ---------------------------------------------------------------------------------------------
# sources: bytes, file objects, tar members
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["pyav", "torchcodec", "decord"])
def test_bytes_and_file_like_sources(clips, tmp_path, backend):
    path = clips("h264_gop30.mp4")
    data = path.read_bytes()
    idx = [50, 3, 3, 89]
    with _reader(backend, data, name="clip-from-bytes") as r:
        assert r.path == "clip-from-bytes"
        assert_exact(r.get_frames(idx), idx)
    with _reader(backend, io.BytesIO(data)) as r:
        assert_exact(r.get_frames(idx), idx)
    tar_path = tmp_path / "videos.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(path, arcname="a/clip.mp4")
    with tarfile.open(tar_path) as tar:
        member = tar.extractfile("a/clip.mp4")
        with _reader(backend, member, name=f"{tar_path}:a/clip.mp4") as r:
            assert_exact(r.get_frames(idx), idx)


# ---------------------------------------------------------------------------------------------
# seeking strategy (instrumented)
# ---------------------------------------------------------------------------------------------


def test_sparse_sampling_does_not_decode_whole_file(clip_factory):
    path = clip_factory("long_gop30.mp4", 300, size=(64, 48), gop=30)
    idx = tsn_centres(300, 8)  # 18, 56, 93, ... one target per GOP or so
    for skip in (True, False):
        with PyAVReader(path, skip_nonref=skip) as r:
            r.stats.reset()
            assert_exact(r.get_frames(idx), idx)
            # decoding from each target's keyframe costs ~130 frames (+ B-frame look-ahead);
            # a sequential decode to the last target would be 282.
            assert r.stats.decoded_frames <= 170, r.stats
            assert r.stats.packets < 220, r.stats
            assert 1 <= r.stats.seeks <= 8, r.stats
            assert r.stats.converted_frames == 8


def test_long_gop_does_not_seek_per_frame(clips):
    path = clips("h264_gop250.mp4")  # keyframes at 0 and 250
    idx = tsn_centres(300, 32)
    with PyAVReader(path) as r:
        assert r.metadata.keyframes == (0, 250)
        r.stats.reset()
        assert_exact(r.get_frames(idx), idx)
        assert r.stats.seeks <= 2, r.stats
        assert r.stats.decoded_frames <= 300, r.stats


def test_going_backwards_seeks_to_the_right_keyframe(clips):
    with PyAVReader(clips("h264_gop30.mp4")) as r:
        assert_exact(r.get_frames([80]), [80])
        r.stats.reset()
        assert_exact(r.get_frames([35]), [35])
        assert r.stats.seeks == 1
        assert r.stats.decoded_frames <= 6 + 8  # from keyframe 30, plus reorder look-ahead


# ---------------------------------------------------------------------------------------------
# errors and broken files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["pyav", "torchcodec", "decord"])
def test_out_of_range_index_names_path_count_and_index(small_clip, backend):
    with _reader(backend, small_clip) as r:
        with pytest.raises(FrameIndexError) as ei:
            r.get_frames([0, 59, 75, 61])
        msg = str(ei.value)
        assert str(small_clip) in msg and "60" in msg and "75" in msg
        assert isinstance(ei.value, VideoDecodeError) and isinstance(ei.value, IndexError)
        with pytest.raises(FrameIndexError):
            r.get_frames([-1])
        assert_exact(r.get_frames([59]), [59])  # still usable


@pytest.mark.parametrize("backend", ["pyav", "torchcodec", "decord"])
@pytest.mark.parametrize(
    "kind", ["text", "audio_only", "zero_frames", "truncated_moov_at_end", "missing"]
)
def test_unreadable_files_raise_video_decode_error(bad_videos, backend, kind):
    path = bad_videos[kind]
    with pytest.raises(VideoDecodeError) as ei:
        _reader(backend, path).get_frames([0])
    assert ei.value.path == str(path)
    assert ei.value.reason and str(path) in str(ei.value)


def test_error_reasons_are_specific(bad_videos):
    reasons = {}
    for kind in ("text", "audio_only", "zero_frames", "missing"):
        with pytest.raises(VideoDecodeError) as ei:
            open_video(bad_videos[kind])
        reasons[kind] = ei.value.reason
    assert "Invalid data" in reasons["text"]
    assert "no video stream" in reasons["audio_only"] and "audio" in reasons["audio_only"]
    assert "no frames" in reasons["zero_frames"]
    assert "does not exist" in reasons["missing"]


def test_video_decode_error_pickles():
    e = pickle.loads(pickle.dumps(FrameIndexError("/x.mp4", "bad")))
    assert isinstance(e, FrameIndexError) and e.path == "/x.mp4" and e.reason == "bad"


def test_truncated_file_recovers_existing_frames(bad_videos):
    with open_video(bad_videos["truncated"]) as r:
        m = r.metadata
        assert m.header_num_frames == 90
        assert 30 <= m.num_frames < 90  # what is in the file, not what the header claims
        idx = list(range(m.num_frames))
        assert_exact(r.get_frames(idx), idx)
        assert_exact(r.get_frames(tsn_centres(m.num_frames, 8)), tsn_centres(m.num_frames, 8))
        with pytest.raises(FrameIndexError):
            r.get_frames([m.num_frames])


def test_garbled_file_gives_exact_frames_or_errors(bad_videos):
    with open_video(bad_videos["garbled"]) as r:
        n = r.metadata.num_frames
        ok, failed = [], []
        for i in range(n):
            try:
                frame = r.get_frames([i])[0]
            except VideoDecodeError as e:
                assert "could not be decoded" in e.reason
                failed.append(i)
                continue
            assert read_frame_index(frame) == i  # never a wrong frame
            ok.append(i)
        assert len(ok) >= n // 2 and failed
        assert max(ok) == n - 1  # frames after the damage are recovered
        # a batch containing an undecodable frame raises, naming it
        with pytest.raises(VideoDecodeError, match=f"frame {failed[0]} "):
            r.get_frames([0, failed[0]])
        assert r.stats.errors > 0


# ---------------------------------------------------------------------------------------------
# time limits
# ---------------------------------------------------------------------------------------------


class SlowFile(io.RawIOBase):
    def __init__(self, data: bytes, delay: float):
        self._buf = io.BytesIO(data)
        self._delay = delay

    def readable(self):
        return True

    def seekable(self):
        return True

    def readinto(self, b):
        time.sleep(self._delay)
        with memoryview(b) as view:
            return self._buf.readinto(view[:2048])  # 2 KiB per read

    def seek(self, offset, whence=0):
        return self._buf.seek(offset, whence)

    def tell(self):
        return self._buf.tell()


def test_timeout_bounds_a_slow_source(clips):
    data = clips("h264_gop250.mp4").read_bytes()
    t0 = time.monotonic()
    with pytest.raises(VideoDecodeError, match="timed out") as ei:
        # 2 KiB and 30 ms per read: reading the file takes longer than the time limit
        r = PyAVReader(SlowFile(data, 0.03), timeout=0.3, name="slow")
        r.get_frames(list(range(300)))
    assert ei.value.path == "slow"
    assert time.monotonic() - t0 < 5


_WATCHDOG_SCRIPT = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("decode", sys.argv[1])
decode = importlib.util.module_from_spec(spec)
sys.modules["decode"] = decode
spec.loader.exec_module(decode)
with decode.decode_watchdog(0.5):
    time.sleep(60)  # stands for a decoder stuck in a C call
print("not reached")
"""


def test_watchdog_ends_a_stuck_worker():
    import xclip.data.video.watchdog as watchdog

    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _WATCHDOG_SCRIPT, watchdog.__file__],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "not reached" not in proc.stdout
    assert "Timeout" in proc.stderr  # faulthandler's traceback dump
    assert time.monotonic() - t0 < 20


# ---------------------------------------------------------------------------------------------
# factory
# ---------------------------------------------------------------------------------------------


def test_backend_selection(small_clip):
    assert "pyav" in available_backends()
    with open_video(small_clip, "auto") as r:
        assert r.backend == "pyav"
    with pytest.raises(ValueError, match="unknown video backend"):
        open_video(small_clip, "opencv")
    frames = read_frames(small_clip, [1, 2])
    assert_exact(frames, [1, 2])
    assert read_frames(small_clip, []).shape == (0, 48, 64, 3)


def test_multi_slice_h264_decodes_exactly(tmp_path):
    """Regression: frames of multi-slice h264 (what x264 writes with sliced threads, common in
    real files) were all flagged corrupt when error concealment was disabled, so nothing decoded."""
    import av

    from xclip.data.synthetic import make_indexed_frame, read_frame_index
    from xclip.data.video import open_video

    path = tmp_path / "slices.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(
            "libx264", rate=30, options={"crf": "20", "x264-params": "keyint=30:slices=4"}
        )
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(45):
            frame = av.VideoFrame.from_ndarray(make_indexed_frame(i, (160, 120)), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with open_video(path) as reader:
        assert reader.num_frames == 45
        idx = [3, 17, 44, 0]
        frames = reader.get_frames(idx)
    assert [read_frame_index(f) for f in frames] == idx


def test_synthetic_h264_encoder_threads_are_fixed(tmp_path):
    """write_video pins x264 to one thread: the stream structure (no slices) does not depend on the
    CPUs x264 sees, as it otherwise does (2 slices per frame on 2 cores, 1 under taskset)."""
    import os
    import re

    from xclip.data.synthetic import make_indexed_clip

    def x264_settings(path) -> str:
        info = re.search(rb"x264 - core.*?options: ([^\x00]*)", Path(path).read_bytes())
        return info.group(1).decode()

    a = make_indexed_clip(tmp_path / "a.mp4", 40, size=(160, 120))
    cpus = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(cpus)})
        b = make_indexed_clip(tmp_path / "b.mp4", 40, size=(160, 120))
    finally:
        os.sched_setaffinity(0, cpus)
    assert x264_settings(a) == x264_settings(b)
    assert "threads=1 " in x264_settings(a) and "sliced_threads=0" in x264_settings(a)
