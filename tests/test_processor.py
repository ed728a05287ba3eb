"""One video path (issue 20): every caller prepares videos through the model's VideoProcessor,
and every caller's model calls carry the views of several videos (or windows) together, so a
compiled encoder sees whole groups and a single video runs exactly its own views."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import xclip
from xclip.inference import VideoClassifier, VideoProcessor, embed_videos
from xclip.inference.errors import BAD_VIDEO_ERRORS, VideoTooLargeError
from xclip_app.engines.work import ClipPreparer, ModelWorker

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = xclip.create_model("xclip_test").eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m


@pytest.fixture()
def views_seen(model, monkeypatch):
    """The view counts of every model call (the encoder is what a compiled graph would run)."""
    seen: list[int] = []
    encode = type(model).encode_video

    def counting(self, video):
        seen.append(int(video.shape[0]))
        return encode(self, video)

    monkeypatch.setattr(type(model), "encode_video", counting)
    return seen


def test_frames_are_read_and_sampled_in_one_module_only():
    """The four copies of decode -> sample -> preprocess (pipeline, the engines' worker, the
    server, the timeline) are one: only the processor reads frames for inference and samples
    test views. Training data (dataset, scan), benchmarks and transcoding read their own."""
    allowed = {
        "xclip/inference/processor.py",
        "xclip/data/dataset.py",  # training/eval data: random or uniform views per epoch
        "xclip/data/scan.py",  # the data scan reads every frame on purpose
        "xclip/data/video/backends.py",  # read_frames, the reader's own helper
        "xclip_app/bench/data.py",  # the decoder benchmark
        "xclip_app/transcode.py",  # checks a transcode decodes
    }
    pattern = re.compile(r"\.get_frames\(|\bsample_frame_indices\(")
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel in allowed or rel.startswith("xclip/data/video/") or rel == "xclip/data/sampling.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and not line.lstrip().startswith(("#", '"', "def ")):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, "frames read or sampled outside the processor:\n" + "\n".join(offenders)


def test_every_caller_goes_through_the_processor(model, small_clip, monkeypatch):
    calls: list[str] = []
    frames = VideoProcessor.frames

    def counting(self, source, idx):
        calls.append(type(source).__name__)
        return frames(self, source, idx)

    monkeypatch.setattr(VideoProcessor, "frames", counting)
    clf = VideoClassifier(model, ["a", "b"], device="cpu")
    clf(small_clip)
    assert len(calls) == 1
    list(clf.classify_iter([small_clip, small_clip], workers=0))
    assert len(calls) == 3
    clf.timeline(small_clip, window=0.5)
    assert len(calls) == 4  # all the windows of a model call in one read
    embed_videos(model, [small_clip], device="cpu")
    assert len(calls) == 5
    row = ClipPreparer.for_model(model)(str(small_clip))
    assert row["error"] is None and len(calls) == 6
    np.testing.assert_array_equal(
        np.frombuffer(row["clips"], np.float32).reshape(row["clips_shape"]),
        clf.prepare(small_clip).clips.numpy(),
    )


def test_engine_rows_share_model_calls(model, small_clip, views_seen):
    """The engines' worker ran one model call per video (1 view each: [1, 1, 1]); the views of
    consecutive videos now share calls up to the batch size, failures keep their place."""
    prep = ClipPreparer.for_model(model)
    rows = [
        prep(str(small_clip)),
        prep("missing.mp4"),
        prep(str(small_clip)),
        prep(str(small_clip)),
    ]
    assert rows[1]["error"] is not None
    worker = ModelWorker(model, "classify", labels=["a", "b"], device="cpu", batch_size=8)
    views_seen.clear()
    out = worker.rows(rows)
    assert views_seen == [1, 2]  # the failure flushes the waiting video, then two together
    assert [r["error"] is None for r in out] == [True, False, True, True]
    assert out[0]["probs"] == pytest.approx(out[2]["probs"], abs=1e-6)
    single = worker.row(rows[0])
    assert single["labels"] == out[0]["labels"]
    assert single["probs"] == pytest.approx(out[0]["probs"], abs=1e-5)
    worker = ModelWorker(model, "embed", device="cpu", batch_size=2)
    views_seen.clear()
    worker.rows([rows[0], rows[2], rows[3]])
    assert views_seen == [2, 1]


def test_timeline_windows_share_model_calls(model, small_clip, views_seen):
    clf = VideoClassifier(model, ["a", "b"], device="cpu", batch_size=8)
    views_seen.clear()
    preds = clf.timeline(small_clip, window=0.5)  # 60 frames at 30 fps: 4 windows
    assert len(preds) == 4 and views_seen == [4]
    assert [(p.start, p.end) for p in preds][:2] == [(0.0, 0.5), (0.5, 1.0)]
    # each window is classified like the whole video of its frames
    one = clf(small_clip)
    assert preds[0].labels[0] in one.labels


def test_processor_pickles_as_settings(model):
    proc = VideoProcessor.for_model(model, num_clips=2, num_crops=3)
    proc.preprocess(np.zeros((2, model.cfg.num_frames, 40, 50, 3), np.uint8))  # builds transform
    data = pickle.dumps(proc)
    assert b"EvalTransform" not in data
    back = pickle.loads(data)
    assert back == proc and back.num_views == 6
    strict = proc.replace(untrusted=True, timeout=5.0, max_pixels=100)
    assert strict.untrusted and proc.untrusted is False


def test_pixel_cap_refuses_before_any_frame_is_decoded(model, clip_factory, monkeypatch):
    big = clip_factory("cap_160x120.mp4", 8, size=(160, 120))
    proc = VideoProcessor.for_model(model, max_pixels=160 * 120 - 1)
    from xclip.data.video.pyav_reader import PyAVReader

    read = []  # any frame decoded: the first one on opening, or the sampled ones
    monkeypatch.setattr(VideoProcessor, "frames", lambda *a: read.append(1))
    monkeypatch.setattr(PyAVReader, "_first_frame", lambda *a: read.append(1))
    with pytest.raises(VideoTooLargeError, match=r"160x120 \(19,200 pixels\).*limit of 19,199"):
        proc(big)
    with pytest.raises(VideoTooLargeError):
        proc(big.read_bytes(), name="upload.mp4")
    assert read == []
    assert issubclass(VideoTooLargeError, BAD_VIDEO_ERRORS)  # a batch skips it as a failure
    err = pickle.loads(pickle.dumps(VideoTooLargeError("v.mp4", 10, 20, 100)))
    assert err.width == 10 and "limit of 100" in str(err)
    monkeypatch.undo()
    assert proc.replace(max_pixels=160 * 120)(big).clips.shape[0] == 1
