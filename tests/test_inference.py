"""Inference for users: VideoClassifier, timelines, embeddings/search, and the classify/embed/search
commands, on tiny generated mp4 files with the tiny ``xclip_test`` model saved to a folder."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import xclip
from xclip.inference import (
    Prediction,
    VideoClassifier,
    VideoFailure,
    check_labels,
    embed_videos,
    find_videos,
    load_index,
    load_inference_model,
    search,
)
from xclip.inference.timeline import frame_windows as _windows
from xclip_app.cli import main

LABELS = ["cooking", "dancing", "riding a bike"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = xclip.create_model("xclip_test")
    # non-trivial prompt generator and MIT outputs (zero-initialised projections otherwise)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return xclip.save_model(model, tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def clf(tiny_dir):
    return VideoClassifier(tiny_dir, LABELS, template="a video of {}")


@pytest.fixture(scope="module")
def clips(clip_factory, tmp_path_factory):
    """A folder with two good clips, a short one, a text file named .mp4 and a non-video file."""
    d = tmp_path_factory.mktemp("folder")
    paths = {
        "a": clip_factory("inf_a.mp4", 60, size=(64, 48)),
        "b": clip_factory("inf_b.mp4", 45, size=(48, 64), seed=1),
        "short": clip_factory("inf_short.mp4", 2, size=(64, 48)),
        "long": clip_factory("inf_long.mp4", 150, size=(64, 48), fps=30),
    }
    for k in ("a", "b", "short"):
        (d / f"{k}.mp4").write_bytes(paths[k].read_bytes())
    (d / "sub").mkdir()
    (d / "sub" / "c.mkv").write_bytes(paths["a"].read_bytes())
    (d / "broken.mp4").write_text("this is not a video\n" * 10)
    (d / "notes.txt").write_text("ignored: not a video extension\n")
    paths["dir"] = d
    paths["bad"] = d / "broken.mp4"
    return paths


def _run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------------------------------------
# Python API
# ---------------------------------------------------------------------------------------------


def test_prediction_is_ranked_and_sums_to_one(clf, clips):
    pred = clf(clips["a"])
    assert isinstance(pred, Prediction)
    assert sorted(pred.labels) == sorted(LABELS)
    assert list(pred.probs) == sorted(pred.probs, reverse=True)
    assert sum(pred.probs) == pytest.approx(1.0, abs=1e-5)
    assert pred.label == pred.labels[0] and pred.prob == pred.probs[0]
    assert pred.top(2) == list(zip(pred.labels[:2], pred.probs[:2], strict=True))
    # the original test sampling: centres of T segments of 60 frames
    assert pred.frame_indices == ((7, 22, 37, 52),)
    assert set(pred.timings) == {"decode", "preprocess", "model"}
    d = pred.to_dict(2)
    assert d["video"] == str(clips["a"]) and len(d["predictions"]) == 2


def test_matches_the_model_logits(clf, clips):
    """Same numbers as decode -> EvalTransform -> model(clip, text_features) by hand."""
    from xclip.data.transforms import EvalTransform
    from xclip.data.video import read_frames

    model = clf.model
    frames = read_frames(clips["a"], [7, 22, 37, 52])
    clip = EvalTransform.from_preprocess(model.preprocess)(frames)
    with torch.inference_mode():
        text = model.encode_text(xclip.tokenize([f"a video of {lb}" for lb in LABELS]))
        probs = model(clip, text_features=text).softmax(-1)[0]
    pred = clf(clips["a"])
    got = dict(pred.top())
    for lb, p in zip(LABELS, probs.tolist(), strict=True):
        assert got[lb] == pytest.approx(p, abs=1e-5)


def test_text_features_are_computed_once(tiny_dir, clips):
    clf = VideoClassifier(tiny_dir, LABELS)
    calls = []
    orig = clf.model.encode_text
    clf.model.encode_text = lambda t: calls.append(t.shape) or orig(t)
    try:
        for _ in range(3):
            clf(clips["a"])
        clf.classify_many([clips["a"], clips["b"]])
        assert calls == []  # cached at construction
        clf(clips["a"], labels=["x", "y"])
        clf(clips["b"], labels=["x", "y"])
        assert len(calls) == 1  # a new label set: once, then cached
    finally:
        del clf.model.encode_text


def test_all_input_kinds_agree(clf, clips):
    from xclip.data.video import open_video

    ref = clf(clips["a"])
    with open_video(clips["a"]) as r:
        all_frames = r.get_frames(range(r.num_frames))  # uint8 [60, H, W, 3]
    prepared = clf.prepare(clips["a"])
    others = [
        clf(clips["a"].read_bytes()),
        clf(all_frames),
        clf(torch.from_numpy(all_frames).permute(0, 3, 1, 2)),  # [N, 3, H, W]
        clf(prepared.clips),  # preprocessed float [V, T, 3, S, S]
        clf(prepared.clips[0]),  # [T, 3, S, S]
    ]
    for p in others:
        assert p.labels == ref.labels
        np.testing.assert_allclose(p.probs, ref.probs, atol=1e-5)


def test_multi_view_averages_softmax_over_views(tiny_dir, clips):
    clf = VideoClassifier(tiny_dir, LABELS, num_clips=2, num_crops=3, batch_size=4)
    prepared = clf.prepare(clips["a"])
    assert prepared.clips.shape == (6, 4, 3, 32, 32)
    assert prepared.frame_indices.shape == (2, 4)
    with torch.inference_mode():
        text = clf.text_features()
        per_view = clf.model(prepared.clips, text_features=text).softmax(-1)
    pred = clf.predict(prepared)
    got = dict(pred.top())
    for k, lb in enumerate(LABELS):
        assert got[lb] == pytest.approx(per_view[:, k].mean().item(), abs=1e-5)


def test_predict_batch_is_predict_per_video(tiny_dir, clips):
    """Videos of several views, each with its own labels and template, in one encoder pass (the
    server's dynamic batching): the same predictions as one call each."""
    clf = VideoClassifier(tiny_dir, LABELS, num_clips=2, num_crops=3, batch_size=4)
    prepared = [clf.prepare(clips["a"]), clf.prepare(clips["b"]), clf.prepare(clips["short"])]
    labels = [None, ["x", "y"], ["cooking", "a dog"]]
    templates = [None, "a video of {}", None]
    batch = clf.predict_batch(prepared, labels, templates)
    for p, lb, tp, got in zip(prepared, labels, templates, batch, strict=True):
        alone = clf.predict(p, lb, tp)
        assert got.labels == alone.labels
        assert got.probs == pytest.approx(alone.probs, abs=1e-5)
    assert clf.predict_batch([]) == []
    with pytest.raises(ValueError, match="2 label sets"):
        clf.predict_batch(prepared, labels[:2])


def test_video_shorter_than_the_frame_count_repeats_frames(clf, clips):
    pred = clf(clips["short"])  # 2 frames, the model takes 4
    assert pred.frame_indices == ((0, 0, 1, 1),)
    assert sum(pred.probs) == pytest.approx(1.0, abs=1e-5)


def test_classify_many_reports_and_skips_bad_files(tiny_dir, clips):
    clf = VideoClassifier(tiny_dir, LABELS, batch_size=3)
    videos = find_videos([clips["dir"]])
    assert [v.rsplit("/", 1)[-1] for v in videos] == [
        "a.mp4", "b.mp4", "broken.mp4", "short.mp4", "c.mkv",
    ]  # fmt: skip
    seen = []
    preds, fails = clf.classify_many(videos, progress=lambda i, n, s: seen.append((i, n)))
    assert [f.source for f in fails] == [str(clips["bad"])]
    assert "not a readable video" in fails[0].error and "\n" not in fails[0].error
    assert len(preds) == 4 and seen[-1] == (5, 5)
    # order kept, and batching several videos per model call changes nothing
    results = list(clf.classify_iter(videos, workers=0))
    assert [type(r) for r in results] == [
        Prediction,
        Prediction,
        VideoFailure,
        Prediction,
        Prediction,
    ]
    for p in preds:
        np.testing.assert_allclose(p.probs, clf(p.source).probs, atol=1e-5)
    # a folder directly
    preds2, fails2 = clf.classify_many(clips["dir"])
    assert len(preds2) == 4 and len(fails2) == 1


def test_find_videos_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        find_videos([tmp_path / "nope.mp4"])
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="no video files found"):
        find_videos([tmp_path])


def test_windows_cover_the_video():
    assert _windows(300, 30.0, 4.0, 2.0) == [(0, 120), (60, 180), (120, 240), (180, 300)]
    assert _windows(300, 30.0, 3.0, 3.0) == [(0, 90), (90, 180), (180, 270), (270, 300)]
    assert _windows(30, 30.0, 5.0, 1.0) == [(0, 30)]  # shorter than one window
    assert _windows(1, 30.0, 1.0, 1.0) == [(0, 1)]


def test_timeline(clf, clips):
    tl = clf.timeline(clips["long"], window=2.0, stride=1.0)  # 150 frames = 5 s
    assert [(w.start, w.end) for w in tl] == [(0, 2), (1, 3), (2, 4), (3, 5)]
    for w in tl:
        lo, hi = round(w.start * 30), round(w.end * 30)
        assert all(lo <= i < hi for i in w.frame_indices[0])
        assert sum(w.probs) == pytest.approx(1.0, abs=1e-5)
    # a window equals classifying that stretch of frames as a video
    from xclip.data.video import read_frames

    frames = read_frames(clips["long"], range(30, 90))
    np.testing.assert_allclose(tl[1].probs, clf(frames).probs, atol=1e-5)
    assert tl[1].labels == clf(frames).labels
    # raw frames need fps; short videos give one window
    assert len(clf.timeline(frames, 10.0, fps=30)) == 1
    with pytest.raises(ValueError, match="fps"):
        clf.timeline(frames, 1.0)
    with pytest.raises(ValueError, match="> 0"):
        clf.timeline(clips["long"], 0)


def test_precisions(tiny_dir, clips):
    ref = VideoClassifier(tiny_dir, LABELS)(clips["a"])
    for prec in ("bf16", "fp16"):
        p = VideoClassifier(tiny_dir, LABELS, precision=prec)(clips["a"])
        np.testing.assert_allclose(
            [dict(p.top())[lb] for lb in LABELS], [dict(ref.top())[lb] for lb in LABELS], atol=0.05
        )
    with pytest.raises(ValueError, match="precision"):
        VideoClassifier(tiny_dir, LABELS, precision="int8")


def test_label_and_template_checks(tiny_dir):
    assert check_labels([" a ", "b"]) == ["a", "b"]
    with pytest.raises(ValueError, match="no labels"):
        check_labels([])
    with pytest.raises(ValueError, match="empty"):
        check_labels(["a", " "])
    with pytest.raises(ValueError, match="duplicate labels: 'Dancing' \\(positions 1 and 3\\)"):
        check_labels(["dancing", "cooking", "Dancing "])
    with pytest.raises(TypeError):
        check_labels("a,b")
    with pytest.raises(ValueError, match="template"):
        VideoClassifier(tiny_dir, LABELS, template="a video of")


def test_bad_video_inputs(clf, clips, tmp_path):
    with pytest.raises(ValueError, match="not a readable video"):
        clf(clips["bad"])
    with pytest.raises(FileNotFoundError):
        clf(tmp_path / "missing.mp4")
    with pytest.raises(ValueError, match="model was built for 4 frames"):
        clf(torch.zeros(8, 3, 32, 32))
    with pytest.raises(TypeError, match="uint8"):
        clf(np.zeros((8, 32, 32, 3), np.float64))


def test_model_loading_errors(tiny_dir, tmp_path):
    from xclip import CheckpointError

    with pytest.raises(CheckpointError, match="not a file or folder"):
        load_inference_model(tmp_path / "missing_model")
    with pytest.raises(ValueError, match="trained for 4 frames.*num_frames=8.*--interpolate"):
        load_inference_model(tiny_dir, num_frames=8)
    m = load_inference_model(tiny_dir, num_frames=8, interpolate=True)
    assert m.cfg.num_frames == 8


@pytest.mark.parametrize("suffix", [".safetensors", ".npy"])
def test_embed_search_round_trip(tiny_dir, clf, clips, tmp_path, suffix):
    videos = [clips["a"], clips["b"], clips["bad"], clips["short"]]
    index = embed_videos(tiny_dir, videos, labels=LABELS, template="a video of {}")
    assert index.paths == [str(clips[k]) for k in ("a", "b", "short")]
    assert [f.source for f in index.failures] == [str(clips["bad"])]
    assert index.embeds.shape == (3, 32) and index.tokens.shape == (3, 16, 32)
    path = index.save(tmp_path / f"index{suffix}")
    loaded = load_index(path)
    assert loaded.paths == index.paths and loaded.labels == LABELS
    torch.testing.assert_close(loaded.embeds, index.embeds)
    torch.testing.assert_close(loaded.tokens, index.tokens, atol=1e-3, rtol=1e-3)  # fp16 stored
    torch.testing.assert_close(loaded.text_embeds, clf.text_features(), atol=1e-5, rtol=1e-5)
    assert loaded.model["source"] == str(tiny_dir) and loaded.model["architecture"] == "xclip_test"

    model = clf.model
    hits = search("dancing", loaded, model, top_k=2)
    assert [h.rank for h in hits] == [1, 2]
    assert hits[0].score >= hits[1].score
    # the prompted score is the model's logit / logit scale for (video, query)
    prepared = clf.prepare(hits[0].path)
    with torch.inference_mode():
        text = model.encode_text(xclip.tokenize(["dancing"]))
        logit = model.logits(model.encode_video(prepared.clips), text)[0, 0]
        expected = (logit / model.logit_scale.exp()).item()
    assert hits[0].score == pytest.approx(expected, abs=2e-3)
    cos = search("dancing", loaded, model, top_k=None, method="cosine")
    assert len(cos) == 3 and all(-1 <= h.score <= 1 for h in cos)
    e = (
        torch.nn.functional.normalize(index.embeds, dim=-1)
        @ torch.nn.functional.normalize(text, dim=-1)[0]
    )
    assert {h.path: h.score for h in cos}[index.paths[0]] == pytest.approx(e[0].item(), abs=1e-5)


def test_search_checks(tiny_dir, clf, clips, tmp_path):
    compact = embed_videos(tiny_dir, [clips["a"], clips["b"]], keep_tokens=False)
    assert compact.tokens is None
    assert search("x", compact, clf.model)[0].rank == 1  # auto -> cosine
    with pytest.raises(ValueError, match="without tokens"):
        search("x", compact, clf.model, method="prompted")
    with pytest.raises(ValueError, match="query is empty"):
        search("  ", compact, clf.model)
    other = xclip.create_model("xclip_test")
    with pytest.raises(ValueError, match="other model weights"):
        search("x", compact, other)
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not an xclip video index"):
        load_index(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError):
        load_index(tmp_path / "none.npy")


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


def test_cli_classify_table(capsys, tiny_dir, clips):
    rc, out, err = _run(
        capsys, "classify", clips["a"], "--labels", ",".join(LABELS), "--model", tiny_dir,
        "--template", "a video of {}", "--timings",
    )  # fmt: skip
    assert rc == 0, err
    assert str(clips["a"]) in out and "rank" in out and "riding a bike" in out
    assert "timings:" in err and "decode" in err


def test_cli_classify_formats(capsys, tiny_dir, clips, tmp_path):
    base = ["classify", clips["a"], clips["b"], "--labels", ",".join(LABELS), "--model", tiny_dir]
    rc, out, _ = _run(capsys, *base, "--format", "json", "--top-k", "2")
    assert rc == 0
    doc = json.loads(out)
    assert doc["labels"] == LABELS and doc["failures"] == []
    assert [r["video"] for r in doc["results"]] == [str(clips["a"]), str(clips["b"])]
    assert all(len(r["predictions"]) == 2 for r in doc["results"])

    rc, out, _ = _run(capsys, *base, "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 2 and len(rows[0]["predictions"]) == 3

    rc, out, _ = _run(capsys, *base, "--format", "csv", "--top-k", "0")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 6 and rows[0]["rank"] == "1"
    assert sum(float(r["prob"]) for r in rows if r["video"] == str(clips["a"])) == pytest.approx(
        1, abs=1e-4
    )

    out_file = tmp_path / "res" / "out.jsonl"
    rc, out, _ = _run(capsys, *base, "--format", "jsonl", "-o", out_file)
    assert rc == 0 and out == "" and len(out_file.read_text().splitlines()) == 2


def test_cli_folder_with_a_bad_file(capsys, tiny_dir, clips):
    rc, out, err = _run(
        capsys,
        "classify",
        clips["dir"],
        "--labels",
        "a,b",
        "--model",
        tiny_dir,
        "--format",
        "jsonl",
    )
    assert rc == 1  # some files failed
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 5
    bad = [r for r in rows if "error" in r]
    assert [r["video"] for r in bad] == [str(clips["bad"])]
    assert f"skipped {clips['bad']}" in err and "1 of 5 video(s)" in err
    assert "Traceback" not in err
    # csv reports the failure in its error column
    rc, out, _ = _run(capsys, "classify", clips["dir"], "--labels", "a,b", "--model", tiny_dir,
                      "--format", "csv", "--no-recursive")  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rc == 1 and [r["video"] for r in rows if r["error"]] == [str(clips["bad"])]
    assert not any(r["video"].endswith("c.mkv") for r in rows)


def test_cli_timeline(capsys, tiny_dir, clips):
    base = ["classify", clips["long"], "--labels", "a,b,c", "--model", tiny_dir, "--window", "2"]
    rc, out, _ = _run(capsys, *base, "--stride", "1")
    assert rc == 0
    assert "0:00.00-0:02.00" in out and "0:03.00-0:05.00" in out
    rc, out, _ = _run(capsys, *base, "--format", "json")
    tl = json.loads(out)["results"][0]["timeline"]
    assert [(w["start"], w["end"]) for w in tl] == [(0, 2), (2, 4), (4, 5)]
    rc, out, _ = _run(capsys, *base, "--format", "csv", "--top-k", "1")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["start"] for r in rows] == ["0.000", "2.000", "4.000"]
    rc, out, _ = _run(capsys, *base, "--format", "jsonl")
    assert len(out.splitlines()) == 3 and "start" in json.loads(out.splitlines()[0])


def _one_line_error(rc, out, err, *needles):
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("xclip-video ")
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]


def test_cli_bad_input(capsys, tiny_dir, clips, tmp_path):
    ok = ["--model", tiny_dir]
    # a non-video file
    _one_line_error(
        *_run(capsys, "classify", clips["bad"], "--labels", "a,b", *ok), "not a readable video"
    )
    # empty and duplicate labels
    _one_line_error(
        *_run(capsys, "classify", clips["a"], "--labels", " , ", *ok), "--labels is empty"
    )
    _one_line_error(
        *_run(capsys, "classify", clips["a"], "--labels", "run,Run", *ok), "duplicate labels"
    )
    empty = tmp_path / "labels.txt"
    empty.write_text("# nothing\n\n")
    _one_line_error(
        *_run(capsys, "classify", clips["a"], "--labels-file", empty, *ok), "has no labels"
    )
    # a checkpoint for a different frame count
    _one_line_error(
        *_run(capsys, "classify", clips["a"], "--labels", "a,b", *ok, "--num-frames", "8"),
        "trained for 4 frames",
        "--interpolate",
    )
    # a missing model path, a missing video
    _one_line_error(
        *_run(capsys, "classify", clips["a"], "--labels", "a,b", "--model", tmp_path / "nope"),
        "is not a file or folder",
    )
    _one_line_error(
        *_run(capsys, "classify", tmp_path / "nope.mp4", "--labels", "a,b", *ok), "no such file"
    )
    # other option mistakes
    _one_line_error(
        *_run(capsys, "classify", clips["a"], "--labels", "a,b", *ok, "--template", "x"), "template"
    )
    _one_line_error(
        *_run(capsys, "classify", clips["a"], "--labels", "a,b", *ok, "--stride", "1"), "--window"
    )
    _one_line_error(
        *_run(capsys, "classify", clips["a"], "--labels", "a,b", *ok, "--device", "cuda:99")
    )


def test_cli_short_video_and_labels_file(capsys, tiny_dir, clips, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("# my labels\nplaying guitar, loudly\n\nswimming\n")
    rc, out, err = _run(
        capsys,
        "classify",
        clips["short"],
        "--labels-file",
        labels,
        "--model",
        tiny_dir,
        "--format",
        "json",
    )
    assert rc == 0, err
    preds = json.loads(out)["results"][0]["predictions"]
    assert {p["label"] for p in preds} == {"playing guitar, loudly", "swimming"}


def test_cli_no_traceback_in_a_real_process(tiny_dir, clips):
    r = subprocess.run(
        [sys.executable, "-m", "xclip_app.cli", "classify", str(clips["bad"]), "--labels", "a,b",
         "--model", str(tiny_dir)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "not a readable video" in r.stderr


def test_cli_embed_and_search(capsys, tiny_dir, clips, tmp_path):
    idx = tmp_path / "videos.safetensors"
    rc, out, err = _run(
        capsys, "embed", clips["dir"], "-o", idx, "--model", tiny_dir, "--labels", "a,b"
    )
    assert rc == 1 and "wrote" in err and "1 of 5" in err  # the broken file is skipped
    # the model defaults to the one recorded in the index
    rc, out, err = _run(capsys, "search", "dancing", "cooking", "--index", idx, "--format", "json")
    assert rc == 0, err
    doc = json.loads(out)
    assert [r["query"] for r in doc["results"]] == ["dancing", "cooking"]
    assert len(doc["results"][0]["hits"]) == 4
    rc, out, _ = _run(capsys, "search", "dancing", "--index", idx, "--top-k", "2")
    assert rc == 0 and "query: dancing" in out and out.count(".m") >= 2
    rc, out, _ = _run(
        capsys, "search", "dancing", "--index", idx, "--format", "csv", "--method", "cosine"
    )
    assert len(list(csv.DictReader(io.StringIO(out)))) == 4
    # npy + json, compact
    npy = tmp_path / "compact.npy"
    rc, _, err = _run(
        capsys, "embed", clips["a"], clips["b"], "-o", npy, "--model", tiny_dir, "--no-tokens"
    )
    assert rc == 0 and (tmp_path / "compact.json").is_file()
    _one_line_error(
        *_run(capsys, "search", "x", "--index", npy, "--method", "prompted"), "without tokens"
    )
    # another model's weights
    _one_line_error(
        *_run(capsys, "search", "x", "--index", idx, "--model", "xclip_test"), "other model weights"
    )
    _one_line_error(
        *_run(capsys, "search", "x", "--index", tmp_path / "none.npy"), "index file not found"
    )
    _one_line_error(
        *_run(capsys, "embed", clips["a"], "-o", tmp_path / "x.pt", "--model", tiny_dir),
        ".safetensors or .npy",
    )


def test_result_files_record_how_to_get_the_numbers_again(capsys, tiny_dir, clips, tmp_path):
    """Rule 5: model fingerprint, views and view mode, precision in classify json, the index and
    search json."""
    from xclip.inference import model_fingerprint

    fp = model_fingerprint(xclip.load_model(tiny_dir))
    rc, out, _ = _run(capsys, "classify", clips["a"], "--labels", "a,b", "--model", tiny_dir,
                      "--format", "json", "--num-clips", "2")  # fmt: skip
    doc = json.loads(out)
    assert rc == 0 and doc["model_info"]["fingerprint"] == fp
    assert doc["model_info"]["architecture"] == "xclip_test"
    assert doc["views"] == {"clips": 2, "crops": 1, "mode": "uniform"}
    assert doc["precision"] == "fp32" and doc["num_frames"] == 4
    idx = tmp_path / "i.npy"
    assert (
        _run(capsys, "embed", clips["a"], "-o", idx, "--model", tiny_dir, "--num-crops", "3")[0]
        == 0
    )
    meta = json.loads((tmp_path / "i.json").read_text())
    assert meta["model"]["fingerprint"] == fp and meta["num_crops"] == 3
    assert meta["view_mode"] == "uniform" and meta["precision"] == "fp32"
    assert set(meta["checksums"]) == {"i.npy", "i.tokens.npy"}
    loaded = load_index(idx)
    assert (loaded.num_crops, loaded.view_mode, loaded.precision) == (3, "uniform", "fp32")
    rc, out, _ = _run(capsys, "search", "x", "--index", idx, "--format", "json")
    doc = json.loads(out)
    assert doc["model_fingerprint"] == fp and doc["method"] == "prompted"
