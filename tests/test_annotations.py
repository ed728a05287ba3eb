"""Annotation parsers (property-based with hypothesis) and the protocol split tools."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xclip.data.annotations import (
    AnnotationError,
    VideoEntry,
    format_labels_csv,
    format_video_list,
    hmdb51_splits,
    k600_novel_classes,
    k600_zeroshot_subsets,
    kshot_entries,
    load_annotations,
    parse_labels_csv,
    parse_video_csv,
    parse_video_list,
    scan_class_folders,
    ucf101_splits,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

path_chars = string.ascii_letters + string.digits + "_-./()"
paths = st.text(path_chars, min_size=1, max_size=30).filter(lambda p: p.strip() == p)
names = (
    st.text(string.ascii_letters + string.digits + " ,'()-&\"", min_size=1, max_size=25)
    .map(str.strip)
    .filter(bool)
)


@st.composite
def video_lists(draw):
    k = draw(st.integers(1, 20))
    entries = draw(st.lists(st.tuples(paths, st.integers(0, k - 1)), min_size=1, max_size=40))
    return k, [VideoEntry(p, lab) for p, lab in entries]


@SETTINGS
@given(video_lists())
def test_list_round_trip(data):
    k, entries = data
    text = format_video_list(entries)
    parsed = parse_video_list(text, "l.txt", num_classes=k)
    assert parsed == entries
    assert [e.line for e in parsed] == list(range(1, len(entries) + 1))


@SETTINGS
@given(st.lists(names, min_size=1, max_size=30, unique=True))
def test_labels_round_trip(class_names):
    assert parse_labels_csv(format_labels_csv(class_names)) == class_names


CORRUPTIONS = {
    "three_fields": lambda line, k: line + " extra",
    "one_field": lambda line, k: line.split()[0],
    "not_int": lambda line, k: line.split()[0] + " abc",
    "too_big": lambda line, k: f"{line.split()[0]} {k}",
    "negative": lambda line, k: f"{line.split()[0]} -1",
}


@SETTINGS
@given(video_lists(), st.data())
def test_corrupted_lists_report_every_bad_line(data, draw):
    k, entries = data
    lines = format_video_list(entries).splitlines()
    bad = sorted(
        draw.draw(st.sets(st.integers(0, len(lines) - 1), min_size=1, max_size=len(lines)))
    )
    for i in bad:
        kind = draw.draw(st.sampled_from(sorted(CORRUPTIONS)))
        lines[i] = CORRUPTIONS[kind](lines[i], k)
    with pytest.raises(AnnotationError) as ei:
        parse_video_list("\n".join(lines) + "\n", "bad.txt", num_classes=k)
    assert ei.value.lines == [i + 1 for i in bad]
    assert all(p.file == "bad.txt" for p in ei.value.problems)
    assert f"bad.txt:{bad[0] + 1}:" in str(ei.value)


@SETTINGS
@given(st.lists(names, min_size=2, max_size=20, unique=True), st.data())
def test_corrupted_labels_csv(class_names, draw):
    rows = format_labels_csv(class_names).splitlines()
    i = draw.draw(st.integers(2, len(rows)))  # 1-based line of a data row
    kind = draw.draw(st.sampled_from(["dup", "skip", "notint", "fields"]))
    cid = i - 2
    if kind == "dup":
        other = 0 if cid != 0 else 1
        rows[i - 1] = f"{other},zz_{cid}"
    elif kind == "skip":
        rows[i - 1] = f"{len(class_names) + 5},zz"
    elif kind == "notint":
        rows[i - 1] = "x,zz"
    else:
        rows[i - 1] = f"{cid},a,b"
    with pytest.raises(AnnotationError) as ei:
        parse_labels_csv("\n".join(rows) + "\n", "labels.csv")
    assert i in ei.value.lines


def test_empty_and_header_errors():
    with pytest.raises(AnnotationError, match="empty video list"):
        parse_video_list("\n\n", "e.txt")
    with pytest.raises(AnnotationError, match="header"):
        parse_labels_csv("a,b\n0,x\n")
    with pytest.raises(AnnotationError, match="expected id 0"):
        parse_labels_csv("id,name\n1,x\n2,y\n")
    # names with commas must be quoted, and then work
    assert parse_labels_csv('id,name\n0,"a, b"\n') == ["a, b"]


def test_video_csv_ids_and_names():
    text = "path,label\na.mp4,0\nb.mp4,dog\nc.mp4,cow\nd.mp4,5\n"
    with pytest.raises(AnnotationError) as ei:
        parse_video_csv(text, "v.csv", ["cat", "dog"])
    assert ei.value.lines == [4, 5]
    got = parse_video_csv("filename,class\na.mp4,0\nb.mp4,dog\n", "v.csv", ["cat", "dog"])
    assert [(e.path, e.label) for e in got] == [("a.mp4", 0), ("b.mp4", 1)]
    with pytest.raises(AnnotationError, match="no path column"):
        parse_video_csv("x,label\na,0\n")


def test_load_annotations_reports_everything_at_once(tmp_path):
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.mp4").write_bytes(b"x")
    (tmp_path / "labels.csv").write_text("id,name\n0,cat\n1,dog\n")
    (tmp_path / "list.txt").write_text("a.mp4 0\nmissing.mp4 1\nb.mp4 7\nbroken\n")
    with pytest.raises(AnnotationError) as ei:
        load_annotations(
            tmp_path / "list.txt",
            tmp_path / "labels.csv",
            exists=lambda p: (tmp_path / "v" / p).exists(),
        )
    msgs = [str(p) for p in ei.value.problems]
    assert ei.value.lines == [3, 4, 2]
    assert "video not found: missing.mp4" in msgs[2] and "list.txt:2" in msgs[2]


def test_class_folders(tmp_path):
    for c, files in {"b_walk": ["x.mp4", "y.avi"], "a_run": ["z.mkv"]}.items():
        (tmp_path / c).mkdir()
        for f in files:
            (tmp_path / c / f).write_bytes(b"")
    (tmp_path / "a_run" / "notes.txt").write_text("")
    entries, classes = scan_class_folders(tmp_path)
    assert classes == ["a_run", "b_walk"]
    assert [(e.path, e.label) for e in entries] == [
        ("a_run/z.mkv", 0),
        ("b_walk/x.mp4", 1),
        ("b_walk/y.avi", 1),
    ]


# --- protocols ------------------------------------------------------------------------------------


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
