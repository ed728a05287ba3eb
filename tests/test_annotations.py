"""Annotation formats: parsers and writers (property-based with hypothesis), validation."""

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
    load_annotations,
    parse_labels_csv,
    parse_video_csv,
    parse_video_list,
    scan_class_folders,
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
