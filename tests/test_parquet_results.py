"""Parquet result files without a model: the streamed merge (order, windows, first row wins),
duplicates reported, resume by a video's location, outputs of format version 1."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from xclip.ownership import record_file  # noqa: E402
from xclip_app import parquet_results  # noqa: E402
from xclip_app.collection_inputs import expand_inputs, video_location  # noqa: E402
from xclip_app.parquet_results import ResultTable, read_rows  # noqa: E402

JOB = {"fingerprint": "v2:00000000000000f0", "config": {}, "labels": None, "template": None, "views": {},
       "precision": "fp32", "extra": {}}  # fmt: skip


def _row(path: str, value: float = 0.0, error: str | None = None) -> dict:
    return {"path": path, "duration": 1.0, "num_frames": 8, "model_fingerprint": "f0",
            "num_clips": 1, "num_crops": 1, "view_mode": "uniform",
            "embedding": None if error else [value] * 4, "tokens": None, "error": error}  # fmt: skip


def _table(out: Path, **kw) -> ResultTable:
    return ResultTable(out, "embed", JOB, **kw)


@pytest.mark.parametrize("name", ["out.parquet", "out"])
def test_merge_in_windows_is_the_sorted_rows(tmp_path, monkeypatch, name):
    """Many small windows (run files) give the rows a one-piece sort gives, in both layouts."""
    monkeypatch.setattr(parquet_results, "MERGE_WINDOW_BYTES", 3000)  # a few dozen rows each
    ids = list(range(500))
    random.Random(0).shuffle(ids)
    t = _table(tmp_path / name, part_rows=7)
    assert t.start() == 0
    t.add(_row(f"/v/{i:04d}.mp4", i, "bad" if i % 97 == 0 else None) for i in ids)
    t.finish()
    rows = read_rows(tmp_path / name)
    assert [r["path"] for r in rows] == [f"/v/{i:04d}.mp4" for i in range(500)]
    assert all(r["location"] == r["path"] for r in rows)
    for i, r in enumerate(rows):
        assert (r["error"] is None) == (i % 97 != 0)
        assert r["error"] is not None or r["embedding"] == [float(i)] * 4
    if name == "out":
        assert all(len(pq.read_table(p)) <= 7 for p in (tmp_path / name).glob("part-*"))
    assert not (tmp_path / f".{name}.xclip-work").exists()


def test_merge_reports_duplicates_and_keeps_the_first_row(tmp_path, capsys):
    out = tmp_path / "out.parquet"
    t = _table(out, part_rows=2)
    t.start()
    t.add([_row("/v/a.mp4", 1), _row("/v/b.mp4", 2)])
    t.finish()
    # a bug re-doing a video: its second row is dropped, with a warning that names it
    t = _table(out, part_rows=2)
    t.start()
    t.add([_row("/v/b.mp4", 20), _row("/v/c.mp4", 3)])
    t.finish()
    err = capsys.readouterr().err
    assert "warning: 1 duplicate row(s)" in err and "e.g. /v/b.mp4" in err
    assert t.duplicates == 1
    rows = {r["path"]: r["embedding"][0] for r in read_rows(out)}
    assert rows == {"/v/a.mp4": 1, "/v/b.mp4": 2, "/v/c.mp4": 3}  # the published row stays
    # no duplicate: no warning
    t = _table(out)
    t.start()
    t.add([_row("/v/d.mp4")])
    t.finish()
    assert "duplicate" not in capsys.readouterr().err and t.duplicates == 0


def test_resume_identifies_a_video_by_its_location(tmp_path, monkeypatch):
    tmp_path = Path(os.path.realpath(tmp_path))
    videos = tmp_path / "videos"
    videos.mkdir()
    for n in ("a.mp4", "b.mp4"):
        (videos / n).write_bytes(b"x")
    (tmp_path / "link").symlink_to(videos)
    (videos / "alias.mp4").symlink_to(videos / "b.mp4")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out.parquet"
    t = _table(out)
    t.start()
    t.add([_row("videos/a.mp4"), _row("s3://bucket/x.mp4")])  # relative, as typed
    t.finish()
    rows = read_rows(out)
    assert [r["path"] for r in rows] == ["s3://bucket/x.mp4", "videos/a.mp4"]  # as typed
    assert rows[1]["location"] == os.path.realpath(videos / "a.mp4")
    assert rows[0]["location"] == "s3://bucket/x.mp4"  # a URI as written
    t = _table(out)
    assert t.start() == 2
    same = ["./videos/a.mp4", str(videos / "a.mp4"), "link/a.mp4", f"file://{videos}/a.mp4",
            "videos/../videos/a.mp4", "s3://bucket/x.mp4"]  # fmt: skip
    assert t.pending(same) == []
    # new videos: each location once, the first name kept, in the given order
    assert t.pending(["link/b.mp4", "videos/b.mp4", "videos/alias.mp4", "s3://bucket/y.mp4"]) == [
        "link/b.mp4",
        "s3://bucket/y.mp4",
    ]
    assert video_location("s3://bucket/./x.mp4") == "s3://bucket/./x.mp4"
    # the inputs of a command: one name per location
    assert expand_inputs(["videos/a.mp4", "./videos/a.mp4", str(videos / "a.mp4")]) == [
        str(videos / "a.mp4")
    ]


def test_resume_of_a_version_1_output_resolves_its_paths(tmp_path, monkeypatch, capsys):
    """An output written before the ``location`` column: rows are matched by the resolved path,
    and the merged output has every row once, ``location`` filled in."""
    tmp_path = Path(os.path.realpath(tmp_path))
    (tmp_path / "a.mp4").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "old.parquet"
    schema = parquet_results.result_schema("embed").remove(1)  # no location
    assert "location" not in schema.names
    old = pa.Table.from_pylist([_row("a.mp4", 1), _row("gone.mp4", error="bad")], schema=schema)
    meta = {"format": parquet_results.FORMAT, "format_version": 1, "task": "embed", **JOB}
    pq.write_table(old.replace_schema_metadata({b"xclip": json.dumps(meta)}), out)
    record_file(out)  # as xclip.atomic records what it writes (xclip.ownership)
    t = _table(out)
    assert t.start() == 2 and t.earlier_failures == {"gone.mp4": "bad"}
    assert t.pending([str(tmp_path / "a.mp4"), "./a.mp4", "b.mp4"]) == ["b.mp4"]
    t.add([_row("b.mp4", 2)])
    t.finish()
    assert "duplicate" not in capsys.readouterr().err
    rows = read_rows(out)
    assert [(r["path"], r["location"]) for r in rows] == [
        ("a.mp4", str(tmp_path / "a.mp4")),
        ("b.mp4", str(tmp_path / "b.mp4")),
        ("gone.mp4", str(tmp_path / "gone.mp4")),
    ]
