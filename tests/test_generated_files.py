"""The benchmarks' generated clips go through xclip.atomic: never over a file, nothing left behind."""

from __future__ import annotations

import pytest

from xclip import ownership
from xclip_app.bench.generated_files import generate_once


def test_a_generated_file_is_published_whole_and_made_once(tmp_path):
    calls = []

    def make(f):
        calls.append(f)
        assert f.endswith("/clip.mp4")  # the writer sees the target's extension
        with open(f, "wb") as fh:
            fh.write(b"video")

    path = tmp_path / "clips" / "clip.mp4"
    assert generate_once(path, make) == path
    assert generate_once(path, make) == path
    assert path.read_bytes() == b"video" and len(calls) == 1
    left = {p.name for p in path.parent.iterdir()} - {"clip.mp4", ownership.MANIFEST}
    assert not left  # no temporary file or folder
    assert ownership.is_owned(path)  # provably xclip's: a later --overwrite may replace it


def test_an_interrupted_generation_leaves_nothing(tmp_path):
    def make(f):
        with open(f, "wb") as fh:
            fh.write(b"half a vid")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_once(tmp_path / "clip.mp4", make)
    assert {p.name for p in tmp_path.iterdir()} <= {ownership.MANIFEST}


def test_a_users_file_of_that_name_is_used_never_replaced(tmp_path):
    mine = tmp_path / "clip.mp4"
    mine.write_bytes(b"the user's own video")
    assert generate_once(mine, lambda f: pytest.fail("must not generate")) == mine
    assert mine.read_bytes() == b"the user's own video"


def test_the_data_benchmark_interrupted_mid_clip_leaves_no_partial_file(tmp_path, monkeypatch):
    from xclip_app.bench import data

    def half_then_ctrl_c(path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"half a clip")
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "make_indexed_clip", half_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        data.make_clips(str(tmp_path), ["h264_320x240_gop30"])
    assert {p.name for p in tmp_path.iterdir()} <= {ownership.MANIFEST}
