"""Rules 1, 3 and 6 for inference (classify, embed, search and the library API).

Rule 1: no output destroys anything (input = output refused, --overwrite, atomic writes that
survive SIGKILL and a full disk). Rule 3: only the decoder's and the file system's errors become
"failed video"; a TypeError in a transform or an out-of-memory error propagates. Rule 6: library
contracts (a path string is never iterated character by character, NaN clips are refused).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import xclip
import xclip.atomic
from xclip.atomic import atomic_write_text
from xclip.data.transforms import EvalTransform
from xclip.inference import (
    UnreadableVideoError,
    VideoClassifier,
    VideoFailure,
    VideoIndex,
    check_labels,
    embed_videos,
    load_index,
    search,
    video_list,
)
from xclip.ownership import kept_name
from xclip_app.cli import main
from xclip_app.exit_codes import EXIT_BUG

SRC = Path(__file__).resolve().parents[2] / "src"
LABELS = ["cooking", "dancing"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = xclip.create_model("xclip_test")
    with torch.no_grad():  # non-trivial MIT / prompt outputs
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return xclip.save_model(model, tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def clf(tiny_dir):
    return VideoClassifier(tiny_dir, LABELS)


@pytest.fixture
def folder(tmp_path, small_clip):
    """A folder with two good videos."""
    d = tmp_path / "videos"
    d.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(small_clip, d / name)
    return d


def _run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _usage_error(result, *needles):
    rc, _, err = result
    assert rc == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("xclip-video ") and "Traceback" not in err, err
    for n in needles:
        assert n in last, last


def _leftovers(folder: Path) -> list[str]:
    """Hidden files but the ones meant to stay (manifest, lock files)."""
    return sorted(
        p.name for p in folder.iterdir() if p.name.startswith(".") and not kept_name(p.name)
    )


# ---------------------------------------------------------------------------------------------
# Rule 1: outputs that are inputs, existing outputs, killed writers, a full disk
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_classify_output_equal_to_the_video_is_refused_and_untouched(
    capsys, tiny_dir, small_clip, tmp_path, overwrite
):
    """The measured bug: `classify victim.mp4 -o victim.mp4` truncated the video to 0 bytes."""
    victim = tmp_path / "victim.mp4"
    shutil.copy(small_clip, victim)
    before = victim.read_bytes()
    _usage_error(
        _run(capsys, "classify", victim, "--labels", "a,b", "--model", tiny_dir, "-o", victim,
             *overwrite),
        "is also an input", "--overwrite never replaces an input",
    )  # fmt: skip
    assert victim.read_bytes() == before
    # the same file under another name (a hard link) is the same input
    os.link(victim, tmp_path / "alias.jsonl")
    _usage_error(
        _run(capsys, "classify", victim, "--labels", "a,b", "--model", tiny_dir,
             "-o", tmp_path / "alias.jsonl", "--overwrite"),
        "is also an input",
    )  # fmt: skip
    assert victim.read_bytes() == before and _leftovers(tmp_path) == []


def test_outputs_inside_an_input_folder_or_equal_to_other_inputs(
    capsys, tiny_dir, folder, tmp_path
):
    a = folder / "a.mp4"
    before = a.read_bytes()
    base = ["classify", folder, "--model", tiny_dir]
    # a video found by the folder scan
    _usage_error(_run(capsys, *base, "--labels", "a,b", "-o", a, "--overwrite"), "also an input")
    assert a.read_bytes() == before
    # a new file with a video extension in the scanned folder would be read as a video next time
    _usage_error(
        _run(capsys, *base, "--labels", "a,b", "-o", folder / "sub" / "out.mp4"),
        "video extension",
    )
    assert not (folder / "sub").exists()
    # the labels file
    labels = tmp_path / "labels.txt"
    labels.write_text("cooking\ndancing\n")
    _usage_error(
        _run(capsys, *base, "--labels-file", labels, "-o", labels, "--overwrite"), "also an input"
    )
    assert labels.read_text() == "cooking\ndancing\n"
    # inside the model folder
    _usage_error(
        _run(capsys, *base, "--labels", "a,b", "-o", tiny_dir / "preds.jsonl"), "model folder"
    )
    # a results file beside the videos is fine
    rc, _, err = _run(capsys, *base, "--labels", "a,b", "--format", "jsonl",
                      "-o", folder / "preds.jsonl")  # fmt: skip
    assert rc == 0, err
    assert len((folder / "preds.jsonl").read_text().splitlines()) == 2


def test_embed_and_search_refuse_their_inputs(capsys, tiny_dir, folder, tmp_path):
    idx = tmp_path / "index.npy"
    rc, _, err = _run(capsys, "embed", folder, "--model", tiny_dir, "-o", idx)
    assert rc == 0, err
    snapshot = {p.name: p.read_bytes() for p in tmp_path.glob("index.*")}
    assert set(snapshot) == {"index.npy", "index.json", "index.tokens.npy"}
    # search -o the index or one of its sidecars, even with --overwrite
    for target in (idx, tmp_path / "index.json", tmp_path / "index.tokens.npy"):
        _usage_error(
            _run(capsys, "search", "x", "--index", idx, "-o", target, "--overwrite"),
            "also an input",
        )
    # embed into the model folder
    _usage_error(
        _run(capsys, "embed", folder, "--model", tiny_dir, "-o", tiny_dir / "i.safetensors"),
        "model folder",
    )
    assert {p.name: p.read_bytes() for p in tmp_path.glob("index.*")} == snapshot


def test_a_second_run_is_refused_then_replaces_with_overwrite(capsys, tiny_dir, folder, tmp_path):
    out = tmp_path / "out.jsonl"
    base = ["classify", folder, "--labels", "a,b", "--model", tiny_dir, "--format", "jsonl"]
    assert _run(capsys, *base, "-o", out)[0] == 0
    first = out.read_text()
    _usage_error(_run(capsys, *base, "-o", out), "already exists", "--overwrite")
    assert out.read_text() == first
    assert _run(capsys, *base, "-o", out, "--overwrite")[0] == 0  # xclip's own earlier output
    assert out.read_text() == first and _leftovers(tmp_path) == []
    # edited by hand since: the user's now, never replaced, --overwrite or not
    out.write_text("an earlier result\n")
    _usage_error(_run(capsys, *base, "-o", out, "--overwrite"), "not written by xclip")
    assert out.read_text() == "an earlier result\n"

    # embed: an index and its sidecars are one output
    idx = tmp_path / "index.npy"
    assert _run(capsys, "embed", folder, "--model", tiny_dir, "-o", idx)[0] == 0
    (tmp_path / "index.npy").unlink()  # a sidecar alone still counts as the index
    _usage_error(
        _run(capsys, "embed", folder, "--model", tiny_dir, "-o", idx), "index.json already exists"
    )
    rc, _, err = _run(capsys, "embed", folder, "--model", tiny_dir, "-o", idx, "--overwrite",
                      "--no-tokens")  # fmt: skip
    assert rc == 0, err
    # the replaced index's tokens are not left beside the compact one
    assert sorted(p.name for p in tmp_path.glob("index.*")) == ["index.json", "index.npy"]
    assert load_index(idx).tokens is None

    # search
    res = tmp_path / "hits.csv"
    assert _run(capsys, "search", "x", "--index", idx, "--format", "csv", "-o", res)[0] == 0
    _usage_error(_run(capsys, "search", "x", "--index", idx, "-o", res), "--overwrite")
    assert _run(capsys, "search", "y", "--index", idx, "-o", res, "--overwrite")[0] == 0


_KILLED_CLASSIFY = r"""
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from xclip_app import inference_output
from xclip_app.cli import main

ready = Path(sys.argv[2])
write = inference_output.PredictionWriter.prediction

def slow(self, pred):  # the first result is streamed, then the run is killed mid-way
    write(self, pred)
    ready.touch()
    time.sleep(60)

inference_output.PredictionWriter.prediction = slow
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.parametrize("earlier", [None, "an earlier result\n"])
def test_sigkill_mid_classify_leaves_no_partial_output(tiny_dir, folder, tmp_path, earlier):
    out = tmp_path / "res" / "out.jsonl"
    out.parent.mkdir()
    if earlier is not None:
        atomic_write_text(out, earlier)  # an earlier output of xclip's
    ready = tmp_path / "ready"
    argv = ["classify", str(folder), "--labels", "a,b", "--model", str(tiny_dir),
            "--format", "jsonl", "-o", str(out), "--overwrite", "--no-progress"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_CLASSIFY, str(SRC), str(ready), *argv])
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, "classify ended before it was killed"
            assert time.monotonic() < deadline, "classify never wrote its first result"
            time.sleep(0.05)
        # the first result is in the temporary file, not in the output
        (tmp,) = _leftovers(out.parent)
        assert tmp.startswith(".out.jsonl.") and (out.parent / tmp).stat().st_size > 0
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    if earlier is None:
        assert not out.exists()
    else:
        assert out.read_text() == earlier
    # the next run publishes a whole file and removes what the killed one left
    assert main(argv) == 0
    assert len(out.read_text().splitlines()) == 2
    assert _leftovers(out.parent) == []


class _FullDiskFile:
    """A file whose writes fail with ENOSPC once ``budget`` bytes were written."""

    def __init__(self, f, budget: int):
        self.f, self.budget = f, budget

    def write(self, data):
        self.budget -= len(data)
        if self.budget < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def _fill_disk_after(monkeypatch, budget: int) -> None:
    """Every file xclip.atomic opens runs out of space after ``budget`` bytes."""
    real_open = open
    monkeypatch.setattr(
        xclip.atomic, "open", lambda *a, **k: _FullDiskFile(real_open(*a, **k), budget),
        raising=False,
    )  # fmt: skip


def test_a_full_disk_keeps_the_earlier_classify_output(capsys, tiny_dir, folder, tmp_path,
                                                        monkeypatch):  # fmt: skip
    out = tmp_path / "out.jsonl"
    atomic_write_text(out, "an earlier result\n")
    _fill_disk_after(monkeypatch, 100)  # the first prediction fits, the second does not
    _usage_error(
        _run(capsys, "classify", folder, "--labels", "a,b", "--model", tiny_dir, "--format",
             "jsonl", "-o", out, "--overwrite"),
        f"cannot write {out}: No space left on device",
    )  # fmt: skip
    assert out.read_text() == "an earlier result\n"
    assert _leftovers(tmp_path) == []


def test_enospc_at_fsync_keeps_the_earlier_search_output(capsys, tiny_dir, folder, tmp_path,
                                                          monkeypatch):  # fmt: skip
    """Delayed allocation: the disk may report that it is full only at fsync."""
    idx = tmp_path / "i.safetensors"
    assert _run(capsys, "embed", folder, "--model", tiny_dir, "-o", idx)[0] == 0
    out = tmp_path / "hits.json"
    atomic_write_text(out, "{}")

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xclip.atomic.os, "fsync", no_space)
    _usage_error(
        _run(capsys, "search", "x", "--index", idx, "--format", "json", "-o", out, "--overwrite"),
        "No space left on device",
    )
    assert out.read_text() == "{}" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", [".npy", ".safetensors"])
def test_a_full_disk_keeps_the_earlier_index_whole(capsys, tiny_dir, folder, small_clip, tmp_path,
                                                    monkeypatch, suffix):  # fmt: skip
    idx = tmp_path / f"index{suffix}"
    assert _run(capsys, "embed", small_clip, "--model", tiny_dir, "-o", idx)[0] == 0
    before = {p.name: p.read_bytes() for p in tmp_path.glob("index.*")}
    # the new index (2 videos) fails after its first bytes: no file of the old one may change
    _fill_disk_after(monkeypatch, 200)
    _usage_error(
        _run(capsys, "embed", folder, "--model", tiny_dir, "-o", idx, "--overwrite",
             "--labels", "a,b"),
        "No space left on device", "unchanged",
    )  # fmt: skip
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.glob("index.*")} == before
    assert _leftovers(tmp_path) == []
    assert load_index(idx).paths == [str(small_clip)]


def test_an_index_mixed_from_two_saves_is_refused(clf, clip_factory, small_clip, tmp_path):
    a = embed_videos(clf.model, [small_clip])
    b = embed_videos(clf.model, [clip_factory("fault_other.mp4", 45, size=(48, 64), seed=1)])
    a.save(tmp_path / "a.npy")
    b.save(tmp_path / "b.npy")
    # as if a crash had come between the renames of two saves to one name
    shutil.copy(tmp_path / "b.tokens.npy", tmp_path / "a.tokens.npy")
    with pytest.raises(ValueError, match="a.tokens.npy does not belong to this index"):
        load_index(tmp_path / "a.npy")
    with pytest.raises(FileExistsError):
        b.save(tmp_path / "a.npy", overwrite=False)
    assert (tmp_path / "a.tokens.npy").read_bytes() == (tmp_path / "b.tokens.npy").read_bytes()


def test_unwritable_output_locations_are_one_line(capsys, tiny_dir, small_clip, tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    base = ["classify", small_clip, "--labels", "a,b", "--model", tiny_dir]
    _usage_error(_run(capsys, *base, "-o", not_a_folder / "out.csv"), "is not a folder")
    _usage_error(_run(capsys, *base, "-o", tmp_path), "is a folder")
    if os.geteuid() == 0:
        return  # root writes anywhere: the permission check cannot be shown
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    _usage_error(_run(capsys, *base, "-o", ro / "out.csv"), "no permission")


# ---------------------------------------------------------------------------------------------
# Rule 3 with rule 2's exit codes: bad videos are named and skipped; bugs propagate
# ---------------------------------------------------------------------------------------------

ALWAYS_BAD = ("text", "audio_only", "zero_frames", "truncated_moov_at_end")


def test_bad_videos_are_each_named_and_the_good_ones_written(capsys, tiny_dir, folder, bad_videos,
                                                             tmp_path):  # fmt: skip
    mixed = tmp_path / "mixed"
    shutil.copytree(folder, mixed)
    for key, path in bad_videos.items():
        if key != "missing":
            shutil.copy(path, mixed / f"{key}{path.suffix}")
    out = tmp_path / "out.jsonl"
    rc, _, err = _run(capsys, "classify", mixed, "--labels", "a,b", "--model", tiny_dir,
                      "--format", "jsonl", "-o", out)  # fmt: skip
    assert rc == 1, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    videos = sorted(str(p) for p in mixed.iterdir())
    assert sorted(r["video"] for r in rows) == videos  # every video once: a result or an error
    failed = {Path(r["video"]).stem for r in rows if "error" in r}
    assert set(ALWAYS_BAD) <= failed
    assert {"a", "b"}.isdisjoint(failed)
    for r in rows:
        if "error" in r:
            assert f"skipped {r['video']}: " in err and "\n" not in r["error"]
    assert f"{len(failed)} of {len(videos)} video(s)" in err and "Traceback" not in err

    # embed: the same videos, the same failures
    idx = tmp_path / "i.safetensors"
    rc, _, err = _run(capsys, "embed", mixed, "--model", tiny_dir, "-o", idx)
    assert rc == 1, err
    index = load_index(idx)
    assert {Path(f.source).stem for f in index.failures} == failed
    assert len(index) == len(videos) - len(failed)


def test_a_missing_video_is_a_usage_error(capsys, tiny_dir, folder, bad_videos):
    _usage_error(
        _run(capsys, "classify", folder, bad_videos["missing"], "--labels", "a,b", "--model",
             tiny_dir),
        "no such file",
    )  # fmt: skip


def test_when_no_video_can_be_read_nothing_is_written(capsys, tiny_dir, bad_videos, tmp_path):
    out = tmp_path / "out.jsonl"
    atomic_write_text(out, "an earlier result\n")
    bad = [bad_videos[k] for k in ALWAYS_BAD]
    rc, _, err = _run(capsys, "classify", *bad, "--labels", "a,b", "--model", tiny_dir,
                      "--format", "jsonl", "-o", out, "--overwrite")  # fmt: skip
    assert rc == 2
    assert all(f"skipped {p}: " in err for p in bad)
    assert "none of the 4 videos could be read" in err.strip().splitlines()[-1]
    assert out.read_text() == "an earlier result\n" and _leftovers(tmp_path) == []
    idx = tmp_path / "i.safetensors"
    _usage_error(_run(capsys, "embed", *bad, "--model", tiny_dir, "-o", idx), "no index")
    assert not idx.exists()
    # a single unreadable video: one line, and the earlier output is kept too
    _usage_error(
        _run(capsys, "classify", bad[0], "--labels", "a,b", "--model", tiny_dir, "--format",
             "jsonl", "-o", out, "--overwrite"),
        "not a readable video",
    )  # fmt: skip
    assert out.read_text() == "an earlier result\n" and _leftovers(tmp_path) == []


def _broken_transform(exc):
    def call(self, frames, generator=None):
        raise exc

    return call


@pytest.mark.parametrize(
    "exc",
    [TypeError("unsupported operand"), RuntimeError("CUDA out of memory"), AssertionError("bug")],
)
def test_a_bug_in_the_transform_is_never_a_failed_video(tiny_dir, folder, monkeypatch, exc):
    clf = VideoClassifier(tiny_dir, LABELS)
    monkeypatch.setattr(EvalTransform, "__call__", _broken_transform(exc))
    videos = sorted(folder.iterdir())
    for workers in (0, 1):
        with pytest.raises(type(exc), match=str(exc)):
            list(clf.classify_iter(videos, workers=workers))
    with pytest.raises(type(exc)):
        clf.classify_many(videos)
    with pytest.raises(type(exc)):
        embed_videos(clf.model, videos)


def test_a_bug_in_the_transform_fails_the_command_without_output(capsys, tiny_dir, folder,
                                                                 tmp_path, monkeypatch):  # fmt: skip
    out = tmp_path / "out.jsonl"
    monkeypatch.setattr(EvalTransform, "__call__", _broken_transform(TypeError("a bug")))
    argv = ["classify", folder, "--labels", "a,b", "--model", tiny_dir, "-o", out]
    rc, _, err = _run(capsys, *argv)
    # a bug: 70 with the traceback, never "done", "some videos failed" or "your mistake"
    assert rc == EXIT_BUG, err
    assert "Traceback" in err and "TypeError: a bug" in err and "this is a bug in xclip" in err
    assert "skipped" not in err and "not a readable video" not in err
    assert not out.exists() and _leftovers(tmp_path) == []


def test_out_of_memory_in_the_model_propagates(tiny_dir, folder, monkeypatch):
    clf = VideoClassifier(tiny_dir, LABELS)

    def oom(video):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(clf.model, "encode_video", oom)
    with pytest.raises(RuntimeError, match="out of memory"):
        clf.classify_many(sorted(folder.iterdir()))
    with pytest.raises(RuntimeError, match="out of memory"):
        embed_videos(clf.model, sorted(folder.iterdir()))


def test_only_decoder_and_file_system_errors_are_failed_videos(clf, folder, bad_videos):
    results = list(clf.classify_iter([bad_videos["text"], folder, folder / "a.mp4"], workers=0))
    assert [type(r) for r in results] == [VideoFailure, VideoFailure, type(results[2])]
    assert "not a readable video" in results[0].error
    assert "is a folder" in results[1].error
    with pytest.raises(UnreadableVideoError) as info:  # still a ValueError for callers
        clf(bad_videos["text"])
    assert isinstance(info.value, ValueError) and info.value.path == str(bad_videos["text"])


# ---------------------------------------------------------------------------------------------
# Rule 6: library contracts
# ---------------------------------------------------------------------------------------------


def test_a_path_string_is_never_iterated_character_by_character(clf, folder, small_clip):
    one = embed_videos(clf.model, str(small_clip))
    assert one.paths == [str(small_clip)] and not one.failures
    assert embed_videos(clf.model, folder).paths == [str(folder / "a.mp4"), str(folder / "b.mp4")]
    (r,) = clf.classify_iter(str(small_clip))
    assert r.source == str(small_clip)
    preds, fails = clf.classify_many(str(small_clip))
    assert len(preds) == 1 and not fails
    assert video_list(small_clip.read_bytes()) == [small_clip.read_bytes()]  # bytes: one video
    with pytest.raises(TypeError, match=r"videos\[1\] is a int"):
        video_list([str(small_clip), 3])
    with pytest.raises(TypeError, match="one video"):
        clf([small_clip, small_clip])


def test_labels_and_queries_must_be_strings_in_a_list(clf, tiny_dir, small_clip):
    with pytest.raises(TypeError, match="not one string"):
        check_labels("cooking,dancing")
    with pytest.raises(TypeError, match="not one string"):
        VideoClassifier(tiny_dir, "cooking,dancing")
    with pytest.raises(TypeError, match="position 2"):
        check_labels(["cooking", 3])
    with pytest.raises(TypeError, match="not one string"):
        embed_videos(clf.model, [small_clip], labels="ab")
    index = embed_videos(clf.model, [small_clip])
    with pytest.raises(TypeError, match="one string"):
        search(["dancing", "cooking"], index, clf.model)
    with pytest.raises(TypeError, match="VideoIndex"):
        search("dancing", "index.safetensors", clf.model)
    with pytest.raises(ValueError, match="top_k"):
        search("dancing", index, clf.model, top_k=-1)


def test_nan_and_inf_clips_are_refused(clf):
    clip = torch.zeros(1, 4, 3, 32, 32)
    for value in (float("nan"), float("inf")):
        bad = clip.clone()
        bad[0, 2, 1, 5, 5] = value
        with pytest.raises(ValueError, match="<tensor>: the clip holds 1 NaN or infinite"):
            clf(bad)
        with pytest.raises(ValueError, match="my_clip: the clip holds"):
            clf.prepare(bad, name="my_clip")
    assert sum(clf(clip.double()).probs) == pytest.approx(1.0, abs=1e-5)  # float64 is accepted


def test_nan_weights_raise_instead_of_nan_probabilities(tiny_dir, small_clip):
    model = xclip.load_model(tiny_dir)
    with torch.no_grad():
        model.visual.proj.fill_(float("nan"))
    clf = VideoClassifier(model, LABELS)
    with pytest.raises(FloatingPointError, match="NaN or infinite scores"):
        clf(small_clip)
    with pytest.raises(FloatingPointError, match="NaN or infinite embedding"):
        embed_videos(model, [small_clip])
    nan_index = VideoIndex(["v.mp4"], torch.full((1, 32), float("nan")))
    with pytest.raises(FloatingPointError, match="NaN or infinite scores for v.mp4"):
        search("dancing", nan_index, xclip.load_model(tiny_dir))


def test_wrong_array_inputs_are_clear_errors(clf):
    with pytest.raises(TypeError, match="uint8"):
        clf(np.zeros((8, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\].*\(8, 32, 32, 4\)"):
        clf(np.zeros((8, 32, 32, 4), np.uint8))
    with pytest.raises(ValueError, match="N >= 1"):
        clf(np.zeros((0, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="takes 32x32 frames but got 16x16"):
        clf(torch.zeros(4, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\[T, 3, S, S\]"):
        clf(torch.zeros(3, 32, 32))
    with pytest.raises(TypeError, match="num_clips must be an int"):
        VideoClassifier(clf.model, LABELS, num_clips=1.5)
