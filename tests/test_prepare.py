"""``xclip-video prepare``: the short side, the keyframe interval, the layout kept, each output
verified, annotation lists rewritten, resume, a broken video named, both engines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xclip.data.video import open_video
from xclip_app.cli import main
from xclip_app.parquet_results import read_rows
from xclip_app.transcode import output_size

av = pytest.importorskip("av")
pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def tree(clip_factory, tmp_path_factory):
    src = tmp_path_factory.mktemp("raw")
    (src / "cls_a").mkdir()
    (src / "cls_b").mkdir()
    a = clip_factory("prep_a.mp4", 50, size=(160, 96), gop=250)
    b = clip_factory("prep_b.mkv", 40, size=(96, 160), gop=250, seed=2)
    (src / "cls_a" / "one.mp4").write_bytes(a.read_bytes())
    (src / "cls_b" / "two.mkv").write_bytes(b.read_bytes())
    (src / "cls_b" / "bad.mp4").write_text("not a video\n")
    ann = src.parent / f"{src.name}-train.txt"
    ann.write_text("cls_a/one.mp4 0\ncls_b/two.mkv 1\ncls_b/bad.mp4 1\n")
    return src, ann


def _keyframes(path: Path) -> list[int]:
    with av.open(str(path)) as c:
        return [i for i, p in enumerate(c.demux(video=0)) if p.size and p.is_keyframe]


def test_output_size_short_side_even_never_upscaled():
    assert output_size(1280, 720, 256) == (454, 256)
    assert output_size(720, 1280, 256) == (256, 454)
    assert output_size(200, 100, 256) == (200, 100)
    assert output_size(101, 51, 256) == (100, 50)


def test_prepare_tree(tree, tmp_path, capsys):
    src, ann = tree
    dst = tmp_path / "prepared"
    argv = ["prepare", src, dst, "--short-side", "48", "--keyframe-interval", "8",
            "--annotations", ann, "--no-progress", "--workers", "2"]  # fmt: skip
    assert main([str(a) for a in argv]) == 1  # bad.mp4, named
    err = capsys.readouterr().err
    assert "bad.mp4" in err and "1 left out" in err
    one, two = dst / "cls_a" / "one.mp4", dst / "cls_b" / "two.mp4"
    with open_video(str(one)) as r:
        assert r.num_frames == 50 and r.get_frames([0]).shape[1:3] == (48, 80)
    with open_video(str(two)) as r:
        assert r.num_frames == 40 and r.get_frames([0]).shape[1:3] == (80, 48)
    assert _keyframes(one) == [0, 8, 16, 24, 32, 40, 48]
    assert not (dst / "cls_b" / "bad.mp4").exists()
    assert (dst / ann.name).read_text() == "cls_a/one.mp4 0\ncls_b/two.mp4 1\n"
    rows = {Path(r["path"]).name: r for r in read_rows(dst / "_prepare.parquet")}
    assert rows["one.mp4"]["status"] == "transcoded" and rows["one.mp4"]["num_frames"] == 50
    assert rows["bad.mp4"]["error"].startswith("cannot transcode")
    # resume: nothing is transcoded again
    mtime = one.stat().st_mtime_ns
    assert main([str(a) for a in argv]) == 1
    assert "3 of 3 already prepared" in capsys.readouterr().err
    assert one.stat().st_mtime_ns == mtime
    # other settings: refused; --overwrite redoes
    assert main([str(a) for a in [*argv[:4], "64", *argv[5:]]]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_prepare_refuses_dst_inside_src(tree, capsys):
    src, _ = tree
    assert main(["prepare", str(src), str(src / "out")]) == 2
    assert "overlap" in capsys.readouterr().err


@pytest.mark.slow
def test_prepare_on_ray_matches_local(tree, tmp_path):
    pytest.importorskip("ray")
    src, _ = tree
    common = ["--short-side", "48", "--no-progress"]
    assert main(["prepare", str(src), str(tmp_path / "l"), *common]) == 1
    assert main(["prepare", str(src), str(tmp_path / "r"), *common, "--engine", "ray"]) == 1
    for name in ("cls_a/one.mp4", "cls_b/two.mp4"):
        with (
            open_video(str(tmp_path / "l" / name)) as x,
            open_video(str(tmp_path / "r" / name)) as y,
        ):
            assert x.num_frames == y.num_frames
            a = x.get_frames([0, 5]).astype(np.int16)
            b = y.get_frames([0, 5]).astype(np.int16)
            # the same encoder settings; x264's bits depend on its thread count (a Ray worker
            # gets fewer threads), so frames agree within the encoder's rounding, not bit for bit
            assert np.abs(a - b).mean() < 2.0
