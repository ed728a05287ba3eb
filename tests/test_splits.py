"""The evaluation protocols' split tools (xclip_app.splits) and ``xclip-video splits``."""

from __future__ import annotations

import pytest

from xclip.data.annotations import AnnotationError, VideoEntry
from xclip_app.splits.kinetics600 import k600_novel_classes, k600_zeroshot_subsets
from xclip_app.splits.kshot import kshot_entries
from xclip_app.splits.ucf_hmdb import hmdb51_splits, ucf101_splits


def write_ucf(d):
    classes = ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
    (d / "classInd.txt").write_text("".join(f"{i + 1} {c}\r\n" for i, c in enumerate(classes)))
    for k in (1, 2, 3):
        tr, te = [], []
        for i, c in enumerate(classes):
            stem = "HandStandPushups" if c == "HandstandPushups" else c
            for g in range(1, 5):
                line = f"{c}/v_{stem}_g{g:02d}_c01.avi"
                (te if g == k else tr).append(line)
                if g != k:
                    tr[-1] += f" {i + 1}"
        (d / f"trainlist0{k}.txt").write_text("\r\n".join(tr) + "\r\n")
        (d / f"testlist0{k}.txt").write_text("\r\n".join(te) + "\r\n")


def test_ucf101_splits(tmp_path):
    write_ucf(tmp_path)
    s = ucf101_splits(tmp_path)
    assert s.class_names == ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
    train, test = s.splits[2]
    assert len(train) == 9 and len(test) == 3
    assert test[1] == VideoEntry("HandstandPushups/v_HandStandPushups_g02_c01.avi", 1)
    assert {e.label for e in train} == {0, 1, 2}
    files = s.write(tmp_path / "out", "ucf_101_labels.csv")
    assert (
        (tmp_path / "out" / "train_split3.txt")
        .read_text()
        .startswith("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 0\n")
    )
    assert len(files) == 7
    # a wrong 1-based label is reported with its line
    (tmp_path / "trainlist01.txt").write_text(
        "YoYo/v_YoYo_g01_c01.avi 3\nYoYo/v_YoYo_g02_c01.avi 1\n"
    )
    with pytest.raises(AnnotationError) as ei:
        ucf101_splits(tmp_path)
    assert ei.value.lines == [2]


def test_hmdb51_splits(tmp_path):
    for cls in ("kick", "kick_ball", "brush_hair"):
        for k in (1, 2, 3):
            lines = [f"{cls}_v{i}.avi {(i + k) % 3} " for i in range(6)]
            (tmp_path / f"{cls}_test_split{k}.txt").write_text("\n".join(lines) + "\n")
    s = hmdb51_splits(tmp_path)
    # the original's order: sorted split-file names put kick_ball before kick
    assert s.class_names == ["brush hair", "kick ball", "kick"]
    train, test = s.splits[1]
    assert len(train) == 6 and len(test) == 6
    assert train[0] == VideoEntry("brush_hair/brush_hair_v0.avi", 0)  # (0+1)%3 == 1 -> train


def test_kshot(tmp_path):
    entries = [VideoEntry(f"c{c}/v{i}.mp4", c) for c in range(4) for i in range(5 + c)]
    a = kshot_entries(entries, 2, seed=0)
    assert len(a) == 8 and all(sum(e.label == c for e in a) == 2 for c in range(4))
    assert a == kshot_entries(entries, 2, seed=0)
    assert a != kshot_entries(entries, 2, seed=1)
    assert a == sorted(a, key=entries.index)
    with pytest.raises(ValueError, match="fewer than k=6"):
        kshot_entries(entries, 6)
    assert len(kshot_entries(entries, 6, allow_fewer=True)) == 5 + 6 + 6 + 6


def test_k600_novel_and_subsets():
    k400 = ["abseiling", "dying hair", "Making Bed", "vault", "tying tie"]
    k600 = ["abseiling", "dyeing hair", "making bed", "new one", "new_two", "tying necktie", "x y"]
    n = k600_novel_classes(k400, k600)
    # "making bed" matches after normalisation; dyeing hair / tying necktie are known renames
    assert n.novel == ["new one", "new_two", "x y"] and n.novel_ids == [3, 4, 6]
    assert ("dying hair", "dyeing hair") in n.renamed
    assert n.dropped_k400 == ["vault"]
    assert "220" in n.report()  # explains the mismatch with the paper's count
    plain = k600_novel_classes(k400, k600, renames={})
    assert plain.novel_ids == [1, 3, 4, 5, 6]
    assert k600_novel_classes(k400, k600, exclude=["x y"]).novel_ids == [3, 4]
    entries = [VideoEntry(f"v{i}.mp4", i % 7) for i in range(14)]
    subs = k600_zeroshot_subsets(n, k600, entries, num_subsets=3, size=2, seed=0)
    assert len(subs) == 3
    for s in subs:
        assert len(s.k600_ids) == 2 and s.k600_ids == sorted(s.k600_ids)
        assert {e.label for e in s.entries} == {0, 1}
        for e in s.entries:
            assert entries[int(e.path[1:-4])].label == s.k600_ids[e.label]
    again = k600_zeroshot_subsets(n, k600, entries, num_subsets=3, size=2, seed=0)
    assert [s.k600_ids for s in again] == [s.k600_ids for s in subs]
    with pytest.raises(ValueError):
        k600_zeroshot_subsets(n, k600, entries, size=4)


def test_splits_cli(tmp_path, capsys):
    from xclip_app.cli import main

    write_ucf(tmp_path)
    out = tmp_path / "lists"
    assert main(["splits", "ucf101", "--official-dir", str(tmp_path), "--out", str(out)]) == 0
    assert (out / "test_split3.txt").is_file() and (out / "ucf_101_labels.csv").is_file()
    args = ["splits", "kshot", "--list", str(out / "train_split1.txt"), "--k", "2"]
    assert main([*args, "--out", str(out / "k2.txt")]) == 0
    assert len((out / "k2.txt").read_text().splitlines()) == 6
    assert main([*args[:3], str(tmp_path / "missing.txt"), "--k", "2", "--out", "x"]) == 2
    assert "not found" in capsys.readouterr().err
