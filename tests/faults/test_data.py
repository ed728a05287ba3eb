"""Rules 3, 4, 6 and 8 for datasets: bugs are never bad data, unreadable videos are found early
(preflight, ``xclip-video scan``) and named in one line, ranks agree on the epoch's order, the
library refuses strings where lists belong, and a horizontal flip on directional classes warns.

Every video is generated (``clip_factory``, ``bad_videos``); nothing here trains a model.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest
import torch

pytest.importorskip("av")

from xclip.atomic import atomic_write_text  # noqa: E402
from xclip.config import PreprocessConfig  # noqa: E402
from xclip.data import VideoDataset, build_dataloader  # noqa: E402
from xclip.data.annotations import write_labels_csv, write_video_list  # noqa: E402
from xclip.data.dataset import TooManyBadVideos, VideoReadError  # noqa: E402
from xclip.data.loader import BadVideosError  # noqa: E402
from xclip.data.sampling import sample_frame_indices  # noqa: E402
from xclip.data.scan import scan_dataset  # noqa: E402
from xclip.data.transforms import EvalTransform, TrainTransform  # noqa: E402
from xclip.errors import InputError  # noqa: E402
from xclip_app.cli import main as cli_main  # noqa: E402
from xclip_app.train.config import load_config  # noqa: E402
from xclip_app.train.preflight import (  # noqa: E402
    check_before_training,
    check_validation_headers,
    directional_classes,
    warn_direction_flip,
)

ROOT = Path(__file__).resolve().parents[2]
PRE = PreprocessConfig(num_frames=4, image_size=32)
# the broken files of tests/conftest.py that no decoder can read (``truncated`` is readable:
# its first ~40 frames are there; ``garbled`` may decode at the sampled frames)
UNREADABLE = ("text", "audio_only", "zero_frames", "truncated_moov_at_end", "missing")


@pytest.fixture(scope="module")
def data(tmp_path_factory, clip_factory, bad_videos):
    """A folder with 6 good clips and the unreadable ones, and lists over them."""
    root = tmp_path_factory.mktemp("faultdata")
    good = [clip_factory(f"fault_good_{i}.mp4", 20 + i, size=(48, 40), gop=10) for i in range(6)]
    for i, p in enumerate(good):
        (root / f"g{i}.mp4").write_bytes(p.read_bytes())
    for kind in UNREADABLE:
        if bad_videos[kind].exists():
            (root / f"bad_{kind}{bad_videos[kind].suffix}").write_bytes(
                bad_videos[kind].read_bytes()
            )
    (root / "bad_empty.mp4").write_bytes(b"")
    bad_names = sorted(p.name for p in root.glob("bad_*"))
    bad_names.append("bad_missing.mp4")  # listed, not on disk
    good_entries = [(f"g{i}.mp4", i % 2) for i in range(6)]
    bad_entries = [(n, 0) for n in bad_names]
    write_labels_csv(root / "labels.csv", ["zero", "one"])
    write_video_list(root / "good.txt", good_entries)
    write_video_list(root / "mixed.txt", good_entries[:3] + bad_entries + good_entries[3:])
    write_video_list(root / "one_bad.txt", good_entries + [("bad_text.mp4", 1)])
    return {"root": root, "bad": bad_names, "n_good": 6}


def _raise(exc: BaseException):
    def transform(frames, generator):
        raise exc

    return transform


# --- rule 3: a transform's bug is never an "unreadable video" -----------------------------------


@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize(
    "exc", [TypeError("bad argument in my transform"), RuntimeError("CUDA out of memory")]
)
def test_transform_errors_propagate_and_are_not_counted(data, mode, exc):
    ds = VideoDataset(
        data["root"] / "good.txt", data["root"], preprocess=PRE, mode=mode, transform=_raise(exc)
    )
    with pytest.raises(type(exc), match=str(exc)):
        ds[0]
    assert ds.num_bad == 0 and ds.bad_files() == []
    loader = build_dataloader(ds, batch_size=2, workers=0, train=mode == "train")
    with pytest.raises(type(exc), match=str(exc)):
        next(iter(loader))
    assert ds.num_bad == 0


def test_transform_error_in_a_worker_process_propagates(data):
    ds = VideoDataset(
        data["root"] / "good.txt",
        data["root"],
        preprocess=PRE,
        mode="test",
        transform=_raise(TypeError("bad argument in my transform")),
    )
    loader = build_dataloader(ds, batch_size=2, workers=1, train=False, persistent_workers=False)
    with pytest.raises(TypeError, match="bad argument in my transform"):
        list(loader)


def test_nan_from_a_transform_is_a_clear_error_not_bad_data(data):
    def nan_transform(frames, generator):
        return torch.full(frames.shape, float("nan"))

    ds = VideoDataset(
        data["root"] / "good.txt",
        data["root"],
        preprocess=PRE,
        mode="train",
        transform=nan_transform,
    )
    with pytest.raises(FloatingPointError, match=r"NaN/Inf.*g\d\.mp4"):
        ds[0]
    assert ds.num_bad == 0


# --- corrupt / empty / fake / truncated videos in training, evaluation and scan -----------------


def test_training_skips_unreadable_videos_when_allowed(data, caplog):
    ds = VideoDataset(
        data["root"] / "mixed.txt", data["root"], preprocess=PRE, mode="train",
        max_bad_fraction=1, check_files=False,
    )  # fmt: skip
    loader = build_dataloader(ds, batch_size=2, workers=0, train=True)
    with caplog.at_level(logging.WARNING, logger="xclip.data.dataset"):
        got = [i for _c, _l, idx in loader for i in idx.tolist()]
    good = {i for i, e in enumerate(ds.entries) if e.path.startswith("g")}
    assert got and set(got) <= good
    assert sorted(ds.bad_files()) == sorted(data["bad"])
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert all(name in warned for name in data["bad"])  # each named once, with its reason


@pytest.mark.parametrize("workers", [0, 2])
def test_training_with_too_many_unreadable_fails_in_one_line(data, workers):
    ds = VideoDataset(
        data["root"] / "mixed.txt", data["root"], preprocess=PRE, mode="train",
        max_bad_fraction=0, check_files=False,
    )  # fmt: skip
    loader = build_dataloader(
        ds, batch_size=2, workers=workers, train=True, persistent_workers=False
    )
    with pytest.raises(TooManyBadVideos) as ei:
        list(loader)
    msg = str(ei.value)
    assert isinstance(ei.value, InputError)
    assert "\n" not in msg and "Traceback" not in msg  # raised in the main process, one line
    assert "data.max_bad_fraction=0" in msg and "xclip-video scan" in msg
    assert "max_bad_fraction=" not in msg.replace("data.max_bad_fraction=", "")


def test_evaluation_names_every_unreadable_video_in_one_line_or_skips(data):
    ds = VideoDataset(
        data["root"] / "mixed.txt", data["root"], preprocess=PRE, mode="test", check_files=False
    )
    with pytest.raises(VideoReadError, match="data.skip_bad=true"):
        ds[3]
    loader = build_dataloader(ds, batch_size=4, workers=2, train=False, persistent_workers=False)
    with pytest.raises(BadVideosError) as ei:
        list(loader)
    msg = str(ei.value)
    assert isinstance(ei.value, InputError) and "\n" not in msg
    assert f"{len(data['bad'])} of {len(ds)} evaluation videos" in msg
    assert all(name in msg for name in data["bad"])
    assert "data.skip_bad=true" in msg and "xclip-video scan" in msg and "skip_bad=True" not in msg
    skipping = build_dataloader(ds, 4, workers=0, train=False, skip_bad=True)
    got = [i for _c, _l, idx in skipping for i in idx.tolist()]
    assert len(got) == data["n_good"]
    assert sorted(b.path.rsplit("/", 1)[-1] for b in skipping.skipped) == sorted(data["bad"])


def test_truncated_video_gives_the_frames_that_are_there(bad_videos):
    ds = VideoDataset(
        [("truncated.mp4", 0)], bad_videos["truncated"].parent, preprocess=PRE, mode="test"
    )
    clip, _, _ = ds[0]
    assert clip.shape == (1, 4, 3, 32, 32) and torch.isfinite(clip).all()
    res = scan_dataset(ds, "sampled", workers=1)
    assert res.ok and len(res.warnings) == 1 and "truncated" in res.warnings[0].error


@pytest.mark.parametrize("depth", ["header", "sampled", "all"])
def test_scan_depths_find_every_unreadable_video(data, depth):
    ds = VideoDataset(data["root"] / "mixed.txt", data["root"], mode="test", check_files=False)
    progress = []
    res = scan_dataset(ds, depth, workers=3, on_progress=progress.append)
    assert sorted(p.path for p in res.bad) == sorted(data["bad"])
    assert sum(progress) == len(ds) == res.total
    assert all(p.where.endswith(f":{p.index + 1}") for p in res.bad)  # list line numbers


def test_scan_command_writes_report_and_clean_list(data, tmp_path, capsys):
    root = data["root"]
    report, clean = tmp_path / "scan.json", tmp_path / "clean.txt"
    rc = cli_main(
        ["scan", str(root / "mixed.txt"), "--root", str(root), "--labels", str(root / "labels.csv"),
         "-o", str(report), "--clean-list", str(clean), "--no-progress", "--workers", "2"]
    )  # fmt: skip
    assert rc == 1
    err = capsys.readouterr().err
    assert all(name in err for name in data["bad"])  # each unreadable video named
    doc = json.loads(report.read_text())
    assert doc["videos"] == data["n_good"] + len(data["bad"])
    assert doc["unreadable"] == len(data["bad"])
    assert sorted(b["path"] for b in doc["bad"]) == sorted(data["bad"])
    assert all(b["error"] and b["where"] for b in doc["bad"])
    assert clean.read_text() == (root / "good.txt").read_text()  # same format, bad lines gone
    # the cleaned list scans clean: exit 0
    rc = cli_main(
        ["scan", str(clean), "--root", str(root), "-o", str(tmp_path / "again.json"),
         "--no-progress", "--decode", "all"]
    )  # fmt: skip
    assert rc == 0
    assert json.loads((tmp_path / "again.json").read_text())["unreadable"] == 0


def test_scan_clean_csv_keeps_its_header_quoting_and_line_endings(data, tmp_path):
    root = data["root"]
    lst = tmp_path / "videos.csv"
    rows = [["path", "label", "note"], ["g0.mp4", "zero", "a,b"], ["bad_text.mp4", "one", "x"]]
    rows += [["g1.mp4", "one", "multi\nline"], ["bad_empty.mp4", "zero", ""]]
    with open(lst, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\r\n").writerows(rows)
    clean = tmp_path / "clean.csv"
    rc = cli_main(
        ["scan", str(lst), "--root", str(root), "--labels", str(root / "labels.csv"),
         "-o", str(tmp_path / "r.json"), "--clean-list", str(clean), "--no-progress"]
    )  # fmt: skip
    assert rc == 1
    assert (
        clean.read_bytes()
        == b'path,label,note\r\ng0.mp4,zero,"a,b"\r\ng1.mp4,one,"multi\nline"\r\n'
    )


def test_scan_refuses_outputs_that_exist_or_are_inputs(data, tmp_path, capsys):
    root = data["root"]
    lst = root / "one_bad.txt"
    before = lst.read_bytes()
    args = ["scan", str(lst), "--root", str(root), "--no-progress"]
    # the list itself, even with --overwrite
    assert cli_main([*args, "-o", str(lst), "--overwrite"]) == 2
    assert "is also an input" in capsys.readouterr().err
    assert cli_main([*args, "-o", str(tmp_path / "r.json"), "--clean-list", str(lst),
                     "--overwrite"]) == 2  # fmt: skip
    assert lst.read_bytes() == before
    # the video folder (it holds the list and the videos)
    assert cli_main([*args, "-o", str(root), "--overwrite"]) == 2
    assert "holds the input" in capsys.readouterr().err
    # an existing report: refused without --overwrite, one line naming it
    old = tmp_path / "old.json"
    atomic_write_text(old, "earlier report\n")  # an earlier output of xclip's
    assert cli_main([*args, "-o", str(old)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0]
    assert old.read_text() == "earlier report\n"
    mine = tmp_path / "mine.json"  # the user's own file: never replaced, --overwrite or not
    mine.write_text("my notes\n")
    assert cli_main([*args, "-o", str(mine), "--overwrite"]) == 2
    assert "not written by xclip" in capsys.readouterr().err and mine.read_text() == "my notes\n"
    assert cli_main([*args, "-o", str(old), "--overwrite"]) == 1
    assert json.loads(old.read_text())["unreadable"] == 1
    # a list that does not exist: one line, exit 2
    assert cli_main(["scan", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "x.json")]) == 2
    assert not (tmp_path / "x.json").exists()


# --- rule 4: the preflight finds a bad validation video before the first epoch ----------------


def _cfg(data, val: str, *extra: str):
    root = data["root"]
    return load_config(
        None,
        [f"data.root={root}", f"data.train_file={root / 'good.txt'}",
         f"data.val_file={root / val}", f"data.label_list={root / 'labels.csv'}",
         "data.workers=2", "data.check_files=false", "output.progress=false", *extra],
        validate=False,
    )  # fmt: skip


def test_preflight_fails_in_one_line_listing_bad_validation_videos(data):
    from xclip_app.train.distributed import DistInfo

    with pytest.raises(BadVideosError) as ei:
        check_validation_headers(_cfg(data, "mixed.txt"), DistInfo())
    msg = str(ei.value)
    assert "\n" not in msg and "validation videos" in msg
    assert all(name in msg for name in data["bad"])
    assert "data.skip_bad=true" in msg and "xclip-video scan" in msg


def test_preflight_with_skip_bad_lists_and_goes_on_and_can_be_turned_off(data, caplog):
    from xclip_app.train.distributed import DistInfo

    with caplog.at_level(logging.WARNING):
        found = check_validation_headers(_cfg(data, "mixed.txt", "data.skip_bad=true"), DistInfo())
    assert sorted(b.path.rsplit("/", 1)[-1] for b in found) == sorted(data["bad"])
    assert sum("will be skipped" in r.getMessage() for r in caplog.records) == len(data["bad"])
    check_before_training(  # off: no check, no error
        _cfg(data, "mixed.txt", "data.preflight=false"), DistInfo(), ["zero", "one"]
    )
    with pytest.raises(BadVideosError):
        check_before_training(_cfg(data, "mixed.txt"), DistInfo(), ["zero", "one"])


def test_training_stops_before_epoch_1_on_a_bad_validation_video(data, tmp_path, capsys):
    from xclip_app.train.trainer import Trainer

    cfg = _cfg(
        data, "one_bad.txt", "model.arch=xclip_test", "model.clip_weights=null",
        f"output.dir={tmp_path / 'run'}", "train.batch_size=2", "train.epochs=1",
        "data.workers=0", "train.precision=fp32",
    )  # fmt: skip
    trainer = Trainer(cfg)
    calls = []
    trainer.loss_fn = lambda *a: calls.append(1)  # a training step would call it
    with pytest.raises(BadVideosError, match="bad_text.mp4"):
        trainer.fit()
    assert calls == [] and not hasattr(trainer, "classifier")  # no step, no model even
    assert not (tmp_path / "run" / "checkpoints").exists()
    # through the command: exit code 2, one line
    rc = cli_main(
        ["train", "--config", str(ROOT / "configs/test/tiny.yaml"), f"data.root={data['root']}",
         f"data.train_file={data['root'] / 'good.txt'}",
         f"data.val_file={data['root'] / 'one_bad.txt'}",
         f"data.label_list={data['root'] / 'labels.csv'}", "train.batch_size=2",
         f"output.dir={tmp_path / 'run2'}"]
    )  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    assert rc == 2 and err[-1].startswith("xclip-video train: error: ")
    assert "bad_text.mp4" in err[-1] and not any("Traceback" in line for line in err)


# --- rule 6: ranks agree on the epoch's order; strings are not lists ----------------------------


def test_two_ranks_without_a_seed_see_every_video_exactly_once_per_epoch():
    entries = [(f"v{i:02d}.mp4", i % 3) for i in range(20)]
    # two "processes": each builds its own dataset without a seed, as every rank does
    loaders = [
        build_dataloader(
            VideoDataset(entries, check_files=False, mode="train"),
            batch_size=2,
            workers=0,
            train=True,
            distributed=True,
            rank=r,
            world_size=2,
        )  # fmt: skip
        for r in range(2)
    ]
    orders = []
    for epoch in range(3):
        seen = []
        for loader in loaders:
            loader.sampler.set_epoch(epoch)
            seen += list(loader.sampler)
        assert sorted(seen) == list(range(20)), f"epoch {epoch}: {sorted(seen)}"
        orders.append(seen)
    assert orders[0] != orders[1]  # still shuffled, differently each epoch


def test_strings_are_never_iterated_as_lists(data, tmp_path):
    with pytest.raises(InputError, match="without a label"):
        VideoDataset(["g0.mp4", "g1.mp4"], data["root"])
    with pytest.raises(InputError, match="annotations\\[1\\]"):
        VideoDataset([("g0.mp4", 0), ("g1.mp4", "one")], data["root"])
    with pytest.raises(InputError, match="class names must be strings"):
        VideoDataset(data["root"] / "good.txt", data["root"], labels=[0, 1])
    with pytest.raises(InputError, match="needs a dataset"):
        build_dataloader(str(data["root"] / "good.txt"), batch_size=2)
    # a string labels argument is one path, never a list of one-letter class names
    ds = VideoDataset(data["root"] / "good.txt", data["root"], str(data["root"] / "labels.csv"))
    assert ds.class_names == ["zero", "one"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"total": float("nan"), "num_frames": 8},
        {"total": "30", "num_frames": 8},
        {"total": 30, "num_frames": True},
        {"total": 30, "num_frames": 8, "num_views": 0},
    ],
)
def test_sampling_refuses_bad_counts(kwargs):
    with pytest.raises(InputError):
        sample_frame_indices(train=False, **kwargs)


@pytest.mark.parametrize(
    "make",
    [
        lambda: EvalTransform(mean="abc"),
        lambda: EvalTransform(std=(0.2, 0.0, 0.2)),
        lambda: EvalTransform(mean=(0.5, float("nan"), 0.5)),
        lambda: TrainTransform(flip_p=1.5),
        lambda: TrainTransform(image_size=0),
    ],
)
def test_transforms_refuse_bad_arguments(make):
    with pytest.raises(InputError):
        make()


def test_dataset_refuses_bad_counts_in_one_line(data):
    for kwargs in ({"num_frames": 0}, {"num_clips": 2.5}, {"seed": "0"}, {"view_mode": "x"}):
        with pytest.raises(InputError):
            VideoDataset(data["root"] / "good.txt", data["root"], mode="test", **kwargs)


# --- rule 8: horizontal flip and classes that name a direction ----------------------------------


def test_direction_words_match_whole_words_in_any_case_and_style():
    names = [
        "Pushing something from left to right", "turn_LEFT", "TurnRight", "rotating clockwise",
        "counter-clockwise spin", "brightness", "copyright", "playing guitar", "Lefty",
    ]  # fmt: skip
    assert directional_classes(names) == names[:5]


def test_hflip_warning_once_when_flip_is_on_and_classes_name_a_direction(caplog):
    directional = ["swiping left", "swiping right", "waving"]
    with caplog.at_level(logging.WARNING):
        assert warn_direction_flip(0.5, directional)
        assert not warn_direction_flip(0.0, directional)
        assert not warn_direction_flip(0.5, ["abseiling", "brightening"])
    warnings = [r.getMessage() for r in caplog.records if "aug.flip" in r.getMessage()]
    assert len(warnings) == 1
    assert "aug.flip=0" in warnings[0] and "'swiping left'" in warnings[0]


@pytest.mark.parametrize("backend", ["torchcodec", "decord"])
def test_optional_decoders_report_only_file_failures_as_unreadable(backend, small_clip, tmp_path):
    # rule 3 for the optional backends: a bad file is a VideoDecodeError, a bug inside the
    # decoder call (TypeError) or running out of memory is not turned into "unreadable"
    from xclip.data.video import VideoDecodeError, backend_problem, open_video

    problem = backend_problem(backend)  # names what to install, so CI fails instead of skipping
    if problem is not None:
        pytest.skip(problem)
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    with pytest.raises(VideoDecodeError):
        open_video(str(fake), backend=backend)
    reader = open_video(str(small_clip), backend=backend)
    inner = "_dec" if backend == "torchcodec" else "_vr"
    method = "get_frames_at" if backend == "torchcodec" else "get_batch"

    class Broken:
        def __init__(self, exc):
            self.exc = exc

        def __getattr__(self, name):
            if name == method:
                raise self.exc
            raise AttributeError(name)

    for exc in (TypeError("a bug"), MemoryError()):
        setattr(reader, inner, Broken(exc))
        with pytest.raises(type(exc)):
            reader.get_frames([0, 1])
    setattr(reader, inner, Broken(RuntimeError("Invalid data found when processing input")))
    with pytest.raises(VideoDecodeError):
        reader.get_frames([0, 1])
