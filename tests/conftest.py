"""Shared fixtures: small generated videos whose frames encode their own index.

* ``clip_factory(name, num_frames=60, size=(64, 48), fps=30, gop=30, codec="h264", **kw)``
  (session-scoped) writes a bar-coded clip once per session and returns its path; same arguments,
  same file. Extra keywords go to :func:`xclip.data.synthetic.make_indexed_clip` (``rotation``,
  ``timestamps``, ``bframes``, ...). Read frame indices back with
  :func:`xclip.data.synthetic.read_frame_index`.
* ``small_clip``: 64x48 h264, 60 frames at 30 fps, GOP 30.
* ``bad_videos``: dict of broken files: ``text`` (text named .mp4), ``audio_only``,
  ``zero_frames`` (a video track without frames), ``truncated`` (faststart mp4 cut at half:
  the header says 90 frames, about 40 are in the file), ``truncated_moov_at_end`` (unreadable),
  ``garbled`` (20 % of the bytes in the middle overwritten), ``missing`` (does not exist).

With ``XCLIP_REQUIRE_TEST_DEPS=1`` (set by ``.ci/run``), a test skipped because a dependency is
missing or unusable (``pytest.importorskip``, or a skip reason that names a missing package or
system library) FAILS instead: the suite cannot pass by not running.

With ``XCLIP_SKIPPED_LOG=FILE``, the node id of every skipped test (and of every module skipped at
collection) is appended to FILE, one a line. ``.ci/run`` runs the suite on the machine as it comes
with it, installs the system libraries, then reruns exactly those tests with
``XCLIP_REQUIRE_TEST_DEPS=1``: the newcomer's machine is tested first, and nothing that skipped
there escapes the strict run.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from xclip.data.synthetic import make_indexed_clip

# Skip reasons that mean "a declared test dependency is not there": importorskip's own message,
# and the messages of the tests that probe system libraries (torchcodec's FFmpeg, Chromium).
MISSING_DEPENDENCY = ("could not import", "pip install", "apt-get install", "FFmpeg libraries")


def _require_dependencies() -> bool:
    return os.environ.get("XCLIP_REQUIRE_TEST_DEPS", "") not in ("", "0")


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail_missing_dependency(report) -> None:
    if report.skipped and _require_dependencies():
        reason = _skip_reason(report)
        if any(m in reason for m in MISSING_DEPENDENCY):
            report.outcome = "failed"
            report.longrepr = (
                f"XCLIP_REQUIRE_TEST_DEPS=1 and a declared test dependency is missing: {reason}"
            )


def _log_skip(report) -> None:
    path = os.environ.get("XCLIP_SKIPPED_LOG", "")
    # an expected failure reports as skipped too; it is not a test that did not run
    if path and report.skipped and not hasattr(report, "wasxfail"):
        with open(path, "a", encoding="utf-8") as f:
            f.write(report.nodeid + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _log_skip(outcome.get_result())
    _fail_missing_dependency(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _log_skip(outcome.get_result())
    _fail_missing_dependency(outcome.get_result())


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def clip_factory(video_dir):
    pytest.importorskip("av")
    cache: dict = {}

    def make(
        name: str,
        num_frames: int = 60,
        size: tuple[int, int] = (64, 48),
        fps: float = 30,
        gop: int = 30,
        codec: str = "h264",
        **kwargs,
    ) -> Path:
        key = (name, num_frames, tuple(size), fps, gop, codec, repr(sorted(kwargs.items())))
        if key not in cache:
            if name in {k[0] for k in cache}:
                raise ValueError(f"clip name {name!r} already used with other arguments")
            path = video_dir / name
            make_indexed_clip(path, num_frames, size=size, fps=fps, gop=gop, codec=codec, **kwargs)
            cache[key] = path
        return cache[key]

    return make


@pytest.fixture(scope="session")
def small_clip(clip_factory) -> Path:
    return clip_factory("small_h264.mp4", 60, size=(64, 48), gop=30)


def _silent_audio(stream, n_frames: int = 10):
    import av  # lazy: optional dependency

    for i in range(n_frames):
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 16000
        frame.pts = i * 1024
        yield from stream.encode(frame)
    yield from stream.encode()


@pytest.fixture(scope="session")
def bad_videos(video_dir, clip_factory) -> dict[str, Path]:
    av = pytest.importorskip("av")
    d = video_dir / "bad"
    d.mkdir(exist_ok=True)
    out: dict[str, Path] = {}

    out["text"] = d / "text.mp4"
    out["text"].write_text("this is not a video\n" * 20)

    out["audio_only"] = d / "audio_only.mp4"
    with av.open(str(out["audio_only"]), "w") as c:
        a = c.add_stream("aac", rate=16000)
        for p in _silent_audio(a):
            c.mux(p)

    out["zero_frames"] = d / "zero_frames.mkv"
    with av.open(str(out["zero_frames"]), "w") as c:
        v = c.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=16000)
        for p in _silent_audio(a):
            c.mux(p)

    # faststart mp4 (moov first) cut at half: the header lies about the frame count
    full = clip_factory("bad_source_faststart.mp4", 90, size=(96, 64), gop=30, faststart=True)
    data = full.read_bytes()
    out["truncated"] = d / "truncated.mp4"
    out["truncated"].write_bytes(data[: len(data) // 2])

    plain = clip_factory("bad_source_plain.mp4", 90, size=(96, 64), gop=30)
    data = plain.read_bytes()
    out["truncated_moov_at_end"] = d / "truncated_moov_at_end.mp4"
    out["truncated_moov_at_end"].write_bytes(data[: len(data) // 2])

    garbled = bytearray(data)
    n = len(garbled)
    lo, hi = int(n * 0.4), int(n * 0.6)
    garbled[lo:hi] = np.random.default_rng(0).integers(0, 256, hi - lo, dtype=np.uint8).tobytes()
    out["garbled"] = d / "garbled.mp4"
    out["garbled"].write_bytes(bytes(garbled))

    out["missing"] = d / "does_not_exist.mp4"
    assert not os.path.exists(out["missing"])
    return out
