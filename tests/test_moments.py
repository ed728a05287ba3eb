"""Moments: window embeddings, the vector index, moment search (library and CLI), library
updates (add, delete, change), kill -9 during embed and during the index update, the ray engine
equal to the local one, and bad inputs (one line, exit 2)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import xclip
from xclip.errors import InputError
from xclip.inference import (
    MomentIndex,
    embed_windows,
    load_inference_model,
    load_moments,
    search_moments,
)
from xclip.inference.loading import model_info
from xclip.inference.moments import query_vector
from xclip.inference.pipeline import VideoPipeline
from xclip.inference.windows import iter_window_embeddings
from xclip_app.cli import main

faiss = pytest.importorskip("faiss")
pytest.importorskip("pyarrow")

from xclip.inference.vector_index import (  # noqa: E402
    VectorIndex,
    exact_top,
    plan_index,
    recall_at,
)
from xclip_app.bench.search import clustered_vectors  # noqa: E402
from xclip_app.parquet_results import read_rows  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    model = xclip.create_model("xclip_test")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return xclip.save_model(model, tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def model(tiny):
    return load_inference_model(tiny)


@pytest.fixture(scope="module")
def videos(clip_factory, tmp_path_factory):
    """Three clips of 2-3 s at 30 fps (windows of 1 s every 0.5 s: 3 to 5 each)."""
    d = tmp_path_factory.mktemp("moment_videos")
    for i, n in enumerate((60, 75, 90)):
        src = clip_factory(f"mom_{i}.mp4", n, size=(64, 48), seed=10 + i)
        (d / f"v{i}.mp4").write_bytes(src.read_bytes())
    return d


def _cli(*argv) -> int:
    return main([str(a) for a in argv])


def _embed(tiny, src, lib, *extra) -> int:
    return _cli("embed", src, "--model", tiny, "--device", "cpu", "--no-progress",
                "--window", "1", "--stride", "0.5", "-o", lib, *extra)  # fmt: skip


def _one_line_error(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    return err[0]


# -- the vector index --------------------------------------------------------------------------


def test_plan_follows_rows_and_memory_budget():
    assert plan_index(10_000, 512).kind == "flat"
    big = plan_index(1_000_000, 512)
    assert big.spec == "IVF1024,SQ8"  # 512 MB of codes: within the 1 GB default
    tight = plan_index(1_000_000, 512, memory_budget=200 << 20)
    assert tight.spec.startswith("IVF1024,PQ") and tight.bytes_per_vector <= 200
    assert plan_index(20_000, 512, memory_budget=1 << 20).kind == "ivf"  # flat would not fit


def test_ivf_index_recall_filter_and_round_trip():
    x = clustered_vectors(20_000, 64, seed=3)
    q = clustered_vectors(50, 64, centres=141, seed=3, draw=1)
    index = VectorIndex.build(x, plan=plan_index(len(x), 64, exact_max_rows=0))
    assert index.plan.kind == "ivf" and 1 <= index.nprobe <= index.plan.nlist
    truth = exact_top(x, q, 10)
    _, ids = index.search(q, 10)
    assert recall_at(ids, truth) >= 0.9
    allowed = np.zeros(len(x), bool)
    allowed[::7] = True
    _, ids = index.search(q, 10, allowed=allowed)
    assert (ids >= 0).all() and allowed[ids].all()
    again = VectorIndex.from_bytes(index.to_bytes(), index.info())
    np.testing.assert_array_equal(again.search(q, 10)[1], index.search(q, 10)[1])
    with pytest.raises(InputError, match="damaged"):
        VectorIndex.from_bytes(index.to_bytes()[:1000], index.info(), source="x.faiss")


def test_update_reuses_trained_lists():
    x = clustered_vectors(12_000, 32, seed=1)
    plan = plan_index(len(x), 32, exact_max_rows=0)
    first = VectorIndex.build(x[:10_000], plan=plan)
    second = VectorIndex.build(x, plan=plan, like=first)
    a = faiss.extract_index_ivf(first.index).quantizer.reconstruct_n(0, plan.nlist)
    b = faiss.extract_index_ivf(second.index).quantizer.reconstruct_n(0, plan.nlist)
    np.testing.assert_array_equal(a, b)  # the same lists, not trained again
    assert len(second) == 12_000


# -- windows and moments in the library --------------------------------------------------------


def test_window_embeddings_equal_whole_clips_of_the_same_frames(tiny, videos):
    """A window is embedded as a whole video of its frames: the window 0.5-1.5 s of a video
    equals that video's frames 15..45 given as raw frames."""
    pipe = VideoPipeline(tiny, device="cpu", batch_size=3, compile=False)
    batches = list(iter_window_embeddings(pipe, videos / "v2.mp4", 1.0, 0.5))
    starts = np.concatenate([b.starts for b in batches])
    assert starts.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0] and batches[0].num_windows == 5
    assert [b.first for b in batches] == [0, 3]  # batch_size 3, one view: 3 windows a call
    with pipe.open_reader(videos / "v2.mp4") as r:
        frames = r.get_frames(np.arange(15, 45))
    whole = pipe.encode(pipe.prepare(frames).clips).embeds.mean(dim=0)
    torch.testing.assert_close(batches[0].embeds[1], whole, rtol=1e-4, atol=1e-5)


def test_search_merges_adjacent_windows_and_filters(model):
    """Windows 2-5 s of one video point at the query: one merged moment; filters apply."""
    q = query_vector(model, "a dog catching a frisbee")
    rng = np.random.default_rng(0)
    starts = np.arange(0, 10, 1.0)
    rows, embeds = [], []
    for v in ("cats/a.mp4", "dogs/b.mp4"):
        for s in starts:
            hit = v == "dogs/b.mp4" and 2 <= s <= 4
            e = q * (3.0 if hit else 0.0) + rng.standard_normal(len(q)) * 0.3
            rows.append((v, s, s + 1.0))
            embeds.append(e)
    info = model_info(model, "tiny")
    index = MomentIndex.build([r[0] for r in rows], np.array([r[1] for r in rows]),
                              np.array([r[2] for r in rows]), np.array(embeds, np.float32),
                              model=info, settings={"window": 1.0, "stride": 1.0})  # fmt: skip
    best = search_moments("a dog catching a frisbee", index, model, top_k=3)
    assert (best[0].path, best[0].start, best[0].end, best[0].windows) == ("dogs/b.mp4", 2, 5, 3)
    assert [m.rank for m in best] == [1, 2, 3] and best[0].score > best[1].score
    cats = search_moments("a dog catching a frisbee", index, model, top_k=5, path_glob="cats/*")
    assert cats and all(m.path == "cats/a.mp4" for m in cats)
    assert search_moments("x", index, model, path_glob="none/*") == []
    long = search_moments("a dog catching a frisbee", index, model, top_k=5, min_duration=2.5)
    assert all(m.duration >= 2.5 for m in long) and long[0].start == 2
    short = search_moments("a dog catching a frisbee", index, model, top_k=5, max_duration=1)
    assert all(m.duration <= 1 for m in short)
    for bad in (0, 10_001, True):
        with pytest.raises(InputError, match="top_k"):
            search_moments("x", index, model, top_k=bad)
    with pytest.raises(InputError, match="min_duration"):
        search_moments("x", index, model, min_duration=3, max_duration=2)


def test_embed_windows_api_save_load_search_like(tiny, model, videos, tmp_path):
    index, fails = embed_windows(tiny, [videos / "v0.mp4", videos / "v2.mp4",
                                        tmp_path / "missing.mp4"], 1.0, 0.5, device="cpu")  # fmt: skip
    assert len(index) == 3 + 5 and [f.source for f in fails] == [str(tmp_path / "missing.mp4")]
    index.save(tmp_path / "lib")
    lib = load_moments(tmp_path / "lib")
    assert lib.videos == index.videos and np.array_equal(lib.start, index.start)
    found = search_moments(None, lib, model, like=videos / "v2.mp4", top_k=2)
    assert found[0].path == str(videos / "v2.mp4")


# -- the command line --------------------------------------------------------------------------


def test_cli_library_search_formats_like_and_filters(tiny, videos, tmp_path, capsys):
    lib = tmp_path / "lib"
    assert _embed(tiny, videos, lib) == 0
    err = capsys.readouterr().err
    assert "3 new video(s) (0 failed)" in err and "12 windows of 3 video(s)" in err
    rows = read_rows(lib)
    assert len(rows) == 3 + 4 + 5 and {"start", "end", "embedding"} <= set(rows[0])
    assert all(r["model_fingerprint"] == rows[0]["model_fingerprint"] for r in rows)
    out = tmp_path / "hits.json"
    assert _cli("search", "a red square", "--index", lib, "--format", "json", "-o", out) == 0
    doc = json.loads(out.read_text())
    assert doc["window"] == 1.0 and doc["results"][0]["moments"][0]["rank"] == 1
    top = doc["results"][0]["moments"][0]
    assert top["location"] == str((videos / Path(top["video"]).name).resolve())
    assert _cli("search", "x", "--index", lib, "--format", "csv", "--top-k", "2") == 0
    csv_lines = capsys.readouterr().out.strip().splitlines()
    assert csv_lines[0] == "query,rank,video,start,end,score,windows" and len(csv_lines) == 3
    assert _cli("search", "--like", videos / "v1.mp4", "--index", lib, "--format", "jsonl",
                "--path", "*v1.mp4", "--min-duration", "1") == 0  # fmt: skip
    hits = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert hits and all(h["video"].endswith("v1.mp4") and h["end"] - h["start"] >= 1 for h in hits)
    assert _cli("search", "x", "--index", lib, "--top-k", "10000") == 0


def test_library_add_delete_change(tiny, videos, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for n in ("v0", "v1"):
        (src / f"{n}.mp4").write_bytes((videos / f"{n}.mp4").read_bytes())
    lib = tmp_path / "lib"
    assert _embed(tiny, src, lib) == 0
    before = {(r["path"], r["window"]): r["embedding"] for r in read_rows(lib)}
    # add: v2 is embedded, v0 and v1 are not embedded again
    (src / "v2.mp4").write_bytes((videos / "v2.mp4").read_bytes())
    capsys.readouterr()
    assert _embed(tiny, src, lib) == 0
    err = capsys.readouterr().err
    assert "already holds 2 of 3 video(s); 1 to do" in err and "1 new video(s)" in err
    rows = read_rows(lib)
    assert len(rows) == 3 + 4 + 5
    assert all(before[(r["path"], r["window"])] == r["embedding"] for r in rows
               if (r["path"], r["window"]) in before)  # fmt: skip
    assert len(load_moments(lib)) == 12
    # delete v1, change v0 (another video under its name): v1's rows go, v0's are redone
    (src / "v1.mp4").unlink()
    (src / "v0.mp4").write_bytes((videos / "v2.mp4").read_bytes())
    assert _embed(tiny, src, lib) == 0
    err = capsys.readouterr().err
    assert "1 new video(s)" in err and "row(s) of changed or deleted videos dropped" in err
    rows = read_rows(lib)
    by_path: dict[str, int] = {}
    for r in rows:
        by_path[r["path"]] = by_path.get(r["path"], 0) + 1
    assert by_path == {str(src / "v0.mp4"): 5, str(src / "v2.mp4"): 5}
    index = load_moments(lib)
    assert len(index) == 10 and sorted(index.videos) == sorted(by_path)


def test_bad_inputs_one_line_exit_2(tiny, videos, tmp_path, capsys):
    lib = tmp_path / "lib"
    assert _embed(tiny, videos / "v0.mp4", lib) == 0
    capsys.readouterr()
    # a query of 100,000 characters
    assert _cli("search", "a" * 100_000, "--index", lib) == 2
    assert "tokens" in _one_line_error(capsys)
    # an example clip that is not there
    assert _cli("search", "--like", tmp_path / "nope.mp4", "--index", lib) == 2
    assert "nope.mp4" in _one_line_error(capsys)
    # --top-k out of range
    assert _cli("search", "x", "--index", lib, "--top-k", "20000") == 2
    assert "--top-k" in _one_line_error(capsys)
    # an empty library: its only video cannot be read
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.mp4").write_text("not a video\n")
    empty = tmp_path / "empty"
    assert _embed(tiny, bad, empty) == 2
    capsys.readouterr()
    assert _cli("search", "x", "--index", empty) == 2
    assert "empty" in _one_line_error(capsys)
    # corrupt index files
    (lib / "moments.faiss").write_bytes(b"garbage" * 10)
    assert _cli("search", "x", "--index", lib) == 2
    assert "damaged" in _one_line_error(capsys)
    (lib / "moments.json").write_text("{not json")
    assert _cli("search", "x", "--index", lib) == 2
    assert "damaged" in _one_line_error(capsys)
    # --window with a file output, --stride alone
    assert _embed(tiny, videos, tmp_path / "x.parquet") == 2
    assert "library folder" in _one_line_error(capsys)
    assert _cli("embed", videos, "--model", tiny, "--stride", "1", "-o", tmp_path / "i.npy") == 2
    assert "--stride needs --window" in _one_line_error(capsys)


# -- kill -9 -----------------------------------------------------------------------------------


def _spawn(argv: list[str], prelude: str = "") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    code = prelude + "import sys; from xclip_app.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip


def _argv(tiny, src, lib) -> list[str]:
    return ["embed", str(src), "--model", str(tiny), "--device", "cpu", "--no-progress",
            "--window", "1", "--stride", "0.5", "-o", str(lib), "--part-rows", "2"]  # fmt: skip


def test_kill_9_during_embed_then_rerun_completes(tiny, videos, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(8):
        (src / f"m{i}.mp4").write_bytes((videos / f"v{i % 3}.mp4").read_bytes())
    lib = tmp_path / "lib"
    work = tmp_path / ".lib.xclip-work"
    proc = _spawn(_argv(tiny, src, lib))
    t0 = time.monotonic()
    while not list(work.glob("part-*.parquet")):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() - t0 < 240, "no part written in time"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    assert not lib.exists()
    parts = [r for p in work.glob("part-*.parquet") for r in read_rows(p)]
    counts: dict[str, int] = {}
    for r in parts:
        counts[r["path"]] = counts.get(r["path"], 0) + 1
    assert all(n == r["num_windows"] for r in parts for p, n in counts.items() if p == r["path"])
    rerun = _spawn(_argv(tiny, src, lib))
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err.decode()
    assert f"already holds {len(counts)} of 8" in err.decode()
    rows = read_rows(lib)
    keys = [(r["path"], r["window"]) for r in rows]
    assert len(keys) == len(set(keys)) == sum({0: 3, 1: 4, 2: 5}[i % 3] for i in range(8))
    assert len(load_moments(lib)) == len(rows)


def test_kill_9_during_index_update_leaves_previous_library(tiny, model, videos, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "v0.mp4").write_bytes((videos / "v0.mp4").read_bytes())
    lib = tmp_path / "lib"
    assert _embed(tiny, src, lib) == 0
    before = load_moments(lib)
    (src / "v1.mp4").write_bytes((videos / "v1.mp4").read_bytes())
    # the update dies by SIGKILL in the middle of writing the new index files
    prelude = (
        "import os, signal; from xclip.inference import moments as M\n"
        "def dying(self, folder):\n"
        "    (folder / 'moments.npz').write_bytes(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "M.MomentIndex.write_files = dying\n"
    )
    proc = _spawn(_argv(tiny, src, lib), prelude)
    proc.communicate(timeout=600)
    assert proc.returncode == -signal.SIGKILL
    after = load_moments(lib)  # the previous library, whole
    assert after.videos == before.videos and len(after) == len(before) == 3
    assert search_moments("x", after, model, top_k=1)[0].path == str(src / "v0.mp4")
    rerun = _spawn(_argv(tiny, src, lib))
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err.decode()
    assert len(load_moments(lib)) == 3 + 4


# -- the ray engine ----------------------------------------------------------------------------


@pytest.mark.slow
def test_ray_engine_window_rows_equal_local(tiny, videos, tmp_path):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        assert _embed(tiny, videos, tmp_path / "local") == 0
        assert _embed(tiny, videos, tmp_path / "ray", "--engine", "ray") == 0
    finally:
        ray.shutdown()
    local, remote = read_rows(tmp_path / "local"), read_rows(tmp_path / "ray")
    assert [(r["path"], r["window"], r["start"], r["end"]) for r in local] == [
        (r["path"], r["window"], r["start"], r["end"]) for r in remote
    ]
    for a, b in zip(local, remote, strict=True):
        np.testing.assert_allclose(a["embedding"], b["embedding"], rtol=1e-4, atol=1e-5)
    assert load_moments(tmp_path / "ray").videos == load_moments(tmp_path / "local").videos


# -- the demo's study metrics and the benchmark ------------------------------------------------


def test_moments_study_metrics():
    from xclip_app.demo.moments import score_moments, temporal_iou

    assert temporal_iou((0, 2), (1, 3)) == pytest.approx(1 / 3)
    assert temporal_iou((0, 1), (2, 3)) == 0
    truth = {"a": [("v", 0, 2), ("w", 4, 6)], "b": [("v", 2, 4)]}
    found = {
        "a": [("v", 2, 4), ("v", 0.2, 2), ("v", 0, 1.9), ("w", 4, 5.5)],  # miss, hit, dup, hit
        "b": [("v", 2.5, 4)],  # tIoU 0.75
    }
    r = score_moments(found, truth)
    ap_a = (1 / 2 + 2 / 4) / 2  # hits at ranks 2 and 4 (the third matches a used segment)
    assert r == pytest.approx({"r1": 50.0, "r5": 100.0, "map": 100 * (ap_a + 1.0) / 2})


def test_bench_search_smoke():
    from xclip_app.bench.search import bench_search, format_search_result

    pytest.importorskip("lancedb")
    r = bench_search(3000, dim=32, queries=5, lancedb=True, log=lambda msg: None)
    names = [row["index"] for row in r["rows"]]
    assert names == ["exact", "xclip (FAISS)", "LanceDB IVF_SQ"]
    assert r["rows"][0]["recall_at_10"] == 1.0 and r["rows"][1]["spec"] == "Flat"
    for row in r["rows"]:
        assert row["k10_p50_ms"] > 0 and row["memory_mb"] > 0
    assert "vs exact" in format_search_result(r)


@pytest.mark.slow
def test_demo_reports_moments(tmp_path):
    """Every demo run finds the segments of its long videos: the numbers are in results.json
    under `moments` and in report.md, beside chance."""
    from xclip_app.demo.generate import DataSpec
    from xclip_app.demo.pipeline import Plan, run_demo
    from xclip_app.demo.pretrain import PretrainSpec

    plan = Plan(
        name="tiny",
        data=DataSpec(train_per_class=2, val_per_class=1, pool_per_class=2, test_per_class=1),
        pretrain=PretrainSpec(images=300, steps=5, batch_size=64),
        main=("train.epochs=1", "train.warmup_epochs=0", "train.batch_size=8"),
        ablation=("train.epochs=1", "train.warmup_epochs=0", "train.batch_size=8"),
        seeds=(0,), fewshot=("train.epochs=1", "train.warmup_epochs=0"), shots=(2,),
        final_views=(1, 1), ablations=(), linear=False,
    )  # fmt: skip
    out = tmp_path / "demo"
    m = run_demo(out, plan, log=lambda s: None).results["moments"]
    assert m["videos"] == 8 and m["segments"] == 48 and m["windows"] > 48
    for r in (m, m["chance"]):
        assert 0 <= r["r1"] <= r["r5"] <= 100 and 0 <= r["map"] <= 100
    saved = json.loads((out / "report" / "results.json").read_text())["moments"]
    assert saved["r1"] == pytest.approx(m["r1"]) and saved["map"] == pytest.approx(m["map"])
    assert "## Moments" in (out / "report" / "report.md").read_text()
