"""VideoDataset / build_dataloader end to end on tiny generated videos."""

from __future__ import annotations

import logging
import shutil
import tarfile

import numpy as np
import pytest
import torch

from xclip.config import PreprocessConfig
from xclip.data.annotations import AnnotationError, write_labels_csv, write_video_list
from xclip.data.dataset import TooManyBadVideos, VideoDataset, VideoReadError
from xclip.data.loader import BadVideosError, EvalDistributedSampler, build_dataloader
from xclip.data.sampling import sample_test_indices
from xclip.data.synthetic import make_indexed_clip, read_frame_index

pytest.importorskip("av")

PRE = PreprocessConfig(num_frames=4, image_size=32)
N_GOOD = 6
LENGTHS = [30, 45, 12, 3, 60, 25]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    entries = []
    for i, n in enumerate(LENGTHS):
        cls = i % 2
        (root / f"c{cls}").mkdir(exist_ok=True)
        rel = f"c{cls}/v{i}.mp4"
        make_indexed_clip(root / rel, num_frames=n, size=(64, 48), gop=10, preset="ultrafast")
        entries.append((rel, cls))
    (root / "c0" / "bad_text.mp4").write_text("this is not a video\n")
    (root / "c1" / "empty.mp4").write_bytes(b"")
    good_list = root / "good.txt"
    write_video_list(good_list, entries)
    mixed = entries[:3] + [("c0/bad_text.mp4", 0)] + entries[3:] + [("c1/empty.mp4", 1)]
    write_video_list(root / "mixed.txt", mixed)
    write_labels_csv(root / "labels.csv", ["zero", "one"])
    return root


def identity(frames, generator):  # uint8 [V, T, 3, H, W] -> same, as float
    return frames.float()


def test_frames_are_the_sampled_ones(data):
    ds = VideoDataset(
        data / "good.txt",
        data,
        data / "labels.csv",
        preprocess=PRE,
        mode="test",
        transform=identity,
    )
    assert len(ds) == N_GOOD and ds.class_names == ["zero", "one"]
    for i in range(N_GOOD):
        clip, label, idx = ds[i]
        assert clip.shape == (1, 4, 3, 48, 64) and idx == i and label == i % 2
        got = [read_frame_index(f.permute(1, 2, 0).to(torch.uint8)) for f in clip[0]]
        assert got == sample_test_indices(LENGTHS[i], 4).tolist()


def test_train_and_eval_shapes(data):
    tr = VideoDataset(data / "good.txt", data, preprocess=PRE, mode="train", seed=0)
    clip, label, idx = tr[1]
    assert clip.shape == (1, 4, 3, 32, 32) and clip.dtype == torch.float32
    # reproducible per (seed, epoch, index); a new epoch gives new draws
    torch.testing.assert_close(tr[1][0], clip)
    tr.set_epoch(1)
    assert not torch.equal(tr[1][0], clip)
    ev = VideoDataset(
        data / "good.txt", data, preprocess=PRE, mode="test", num_clips=2, num_crops=3
    )
    assert ev[0][0].shape == (6, 4, 3, 32, 32)


def test_annotation_problems_reported_at_construction(data, tmp_path):
    lst = tmp_path / "l.txt"
    lst.write_text("c0/v0.mp4 0\nc0/nope.mp4 1\nc1/v1.mp4 5\n")
    with pytest.raises(AnnotationError) as ei:
        VideoDataset(lst, data, data / "labels.csv", preprocess=PRE)
    assert ei.value.lines == [3, 2]
    assert "nope.mp4" in str(ei.value)


def test_train_skips_bad_videos_logs_once_and_counts(data, caplog):
    ds = VideoDataset(
        data / "mixed.txt", data, preprocess=PRE, mode="train", seed=1, max_bad_fraction=0.3
    )
    bad_idx = [3, 7]
    with caplog.at_level(logging.WARNING, logger="xclip.data.dataset"):
        for epoch in range(2):
            ds.set_epoch(epoch)
            for i in range(len(ds)):
                clip, label, idx = ds[i]
                assert clip.shape == (1, 4, 3, 32, 32)
                assert idx not in bad_idx
                if i not in bad_idx:
                    assert idx == i
    assert ds.num_bad == 2
    assert sorted(ds.bad_files()) == ["c0/bad_text.mp4", "c1/empty.mp4"]
    warnings = [r.getMessage() for r in caplog.records if "unreadable video" in r.getMessage()]
    assert len(warnings) == 2 and any("bad_text.mp4" in w for w in warnings)
    # the replacement is deterministic
    ds2 = VideoDataset(
        data / "mixed.txt", data, preprocess=PRE, mode="train", seed=1, max_bad_fraction=0.3
    )
    ds2.set_epoch(1)
    assert ds2[3][2] == ds[3][2]


def test_train_fails_when_too_many_bad(data):
    ds = VideoDataset(
        data / "mixed.txt", data, preprocess=PRE, mode="train", seed=0, max_bad_fraction=0.1
    )
    with pytest.raises(TooManyBadVideos, match="max_bad_fraction=0.1"):
        for i in range(len(ds)):
            ds[i]


def test_eval_never_drops_silently(data, caplog):
    ds = VideoDataset(data / "mixed.txt", data, preprocess=PRE, mode="test")
    with pytest.raises(VideoReadError, match="bad_text.mp4"):
        ds[3]
    loader = build_dataloader(ds, batch_size=3, workers=0, train=False)
    seen = []
    with pytest.raises(BadVideosError) as ei:
        for _clips, _labels, idx in loader:
            seen += idx.tolist()
    assert seen == [0, 1, 2, 4, 5, 6]
    msg = str(ei.value)
    assert "2 of 8" in msg and "bad_text.mp4" in msg and "empty.mp4" in msg
    skipping = build_dataloader(ds, batch_size=3, workers=0, train=False, skip_bad=True)
    with caplog.at_level(logging.WARNING):
        got = [i for _c, _l, idx in skipping for i in idx.tolist()]
    assert got == [0, 1, 2, 4, 5, 6]
    assert [b.index for b in skipping.skipped] == [3, 7]
    assert any("skipped 2 of 8" in r.getMessage() for r in caplog.records)


def test_tar_storage_by_path_and_basename(data, tmp_path):
    nested = tmp_path / "nested.tar"
    with tarfile.open(nested, "w") as tf:
        for c in ("c0", "c1"):
            tf.add(data / c, arcname=c)
    flat = tmp_path / "flat.tar"
    with tarfile.open(flat, "w") as tf:
        for i, _n in enumerate(LENGTHS):
            tf.add(data / f"c{i % 2}" / f"v{i}.mp4", arcname=f"v{i}.mp4")
    kw = dict(preprocess=PRE, mode="test", transform=identity)
    ref = VideoDataset(data / "good.txt", data, **kw)
    for tar in (nested, flat):
        ds = VideoDataset(data / "good.txt", tar, **kw)
        for i in (0, 4):
            torch.testing.assert_close(ds[i][0], ref[i][0])
    gz = tmp_path / "c.tar.gz"
    shutil.make_archive(str(tmp_path / "c"), "gztar", data / "c0")
    with pytest.raises(ValueError, match="uncompressed"):
        VideoDataset(data / "good.txt", shutil.copy(gz, tmp_path / "z.tar"), **kw)
    with pytest.raises(AnnotationError, match="video not found"):
        VideoDataset([("v99.mp4", 0)], flat, **kw)


def test_dataloader_two_workers_every_sample_once(data):
    ds = VideoDataset(data / "good.txt", data, preprocess=PRE, mode="test")
    loader = build_dataloader(ds, batch_size=4, workers=2, train=False)
    for _ in range(2):  # persistent workers, two passes
        got = sorted(i for _c, _l, idx in loader for i in idx.tolist())
        assert got == list(range(N_GOOD))
    # distributed eval: ranks partition the set, no padding duplicates
    parts = [list(EvalDistributedSampler(7, 3, r)) for r in range(3)]
    assert sorted(sum(parts, [])) == list(range(7)) and parts[0] == [0, 3, 6]
    dl = build_dataloader(ds, 2, workers=0, train=False, distributed=True, rank=1, world_size=4)
    assert [i for _c, _l, idx in dl for i in idx.tolist()] == [1, 5]


def test_train_loader_with_workers_skips_and_counts(data):
    ds = VideoDataset(
        data / "mixed.txt", data, preprocess=PRE, mode="train", seed=3, max_bad_fraction=0.3
    )
    loader = build_dataloader(ds, batch_size=2, workers=2, train=True)
    batches = list(loader)
    assert len(batches) == 4 and all(c.shape == (2, 1, 4, 3, 32, 32) for c, _l, _i in batches)
    assert ds.num_bad == 2  # counted across worker processes (shared memory)
    assert all(i not in (3, 7) for _c, _l, idx in batches for i in idx.tolist())
    assert np.isfinite(torch.cat([c for c, _l, _i in batches]).numpy()).all()
