"""Collections on engines: inputs at scale, Parquet outputs (rows, resume, refusal), the local
and ray engines giving the same rows as the one-process path, and the kill tests (driver
SIGKILL mid-run, a Ray worker process killed mid-run)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import xclip
from xclip.inference import VideoClassifier, embed_videos
from xclip_app.cli import main
from xclip_app.collection_inputs import expand_inputs
from xclip_app.exit_codes import UsageError
from xclip_app.parquet_results import ResultTable, load_parquet_index, read_rows

pa = pytest.importorskip("pyarrow")

LABELS = ["cooking", "dancing", "riding a bike"]
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
def collection(clip_factory, tmp_path_factory):
    """Six good clips (one in a sub-folder) and a broken one."""
    d = tmp_path_factory.mktemp("collection")
    (d / "sub").mkdir()
    for i in range(6):
        src = clip_factory(f"eng_{i}.mp4", 30 + 5 * i, size=(64, 48), seed=i)
        dst = d / ("sub" if i == 5 else ".") / f"v{i}.mp4"
        dst.write_bytes(src.read_bytes())
    (d / "broken.mp4").write_text("not a video\n" * 10)
    return d


def _videos(d: Path) -> list[str]:
    return sorted(str(p) for p in d.rglob("*.mp4"))


def _cli(*argv) -> int:
    return main([str(a) for a in argv])


def _common(tiny):
    return ["--model", tiny, "--device", "cpu", "--no-progress"]


@pytest.fixture
def rows_before_merge(monkeypatch):
    """The paths of the rows each :meth:`ResultTable.finish` is about to merge (the earlier
    output's and the work folder's parts), read before the merge that keeps one row a video."""
    merged: list[list[str]] = []
    finish = ResultTable.finish

    def counting_finish(self):
        self.flush()
        earlier = [] if self.overwrite or not self.path.exists() else read_rows(self.path)
        merged.append([r["path"] for r in earlier + read_rows(self.work)])
        return finish(self)

    monkeypatch.setattr(ResultTable, "finish", counting_finish)
    return merged


def _each_once(paths: list[str], videos: list[str]) -> None:
    assert sorted(paths) == videos, f"{len(paths)} rows for {len(videos)} videos"


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------


def test_inputs_folders_lists_globs_uris(collection, tmp_path):
    every = _videos(collection)
    assert expand_inputs([collection]) == every
    assert expand_inputs([collection], recursive=False) == [v for v in every if "/sub/" not in v]
    lst = tmp_path / "videos.txt"
    lst.write_text(f"# a comment\n\n{every[0]}\n{collection / 'sub'}\n")
    assert expand_inputs([lst]) == sorted([every[0], str(collection / "sub" / "v5.mp4")])
    assert expand_inputs([f"@{lst}"]) == expand_inputs([lst])
    # relative lines are relative to the list file
    rel = collection / "rel.list"
    rel.write_text("v1.mp4\nsub/v5.mp4\n")
    assert expand_inputs([rel]) == [str(collection / "sub/v5.mp4"), str(collection / "v1.mp4")]
    assert expand_inputs([str(collection / "v[12].mp4")]) == [
        str(collection / "v1.mp4"),
        str(collection / "v2.mp4"),
    ]
    assert expand_inputs([str(collection / "**" / "v5.mp4")]) == [str(collection / "sub/v5.mp4")]
    # a URI through pyarrow's file systems (file:// here; s3://, gs:// the same way)
    uris = expand_inputs([f"file://{collection}"])
    assert uris == [f"file://{v}" for v in every]
    # duplicates once
    assert expand_inputs([collection, every[0]]) == every


@pytest.mark.parametrize(
    "bad, words",
    [("missing.mp4", "not found"), ("nothing-*.mp4", "no videos match"), ("@nolist.txt", "list")],
)
def test_inputs_mistakes_are_one_line(tmp_path, bad, words):
    with pytest.raises(UsageError, match=words):
        expand_inputs([str(tmp_path / bad) if not bad.startswith("@") else f"@{tmp_path}/x.txt"])


@pytest.fixture()
def silent_endpoint():
    """A storage endpoint on 127.0.0.1 that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list = []

    def accept():
        with contextlib.suppress(OSError):
            while True:
                held.append(srv.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{srv.getsockname()[1]}"
    srv.close()
    for c in held:
        c.close()


def test_an_unreachable_bucket_fails_fast_in_one_line(silent_endpoint, monkeypatch, capsys):
    """Issue 20: an S3 endpoint that does not answer held `classify s3://...` for about two
    minutes (the SDK's retries) and then ended in a traceback; now one line and exit 2 within
    the storage timeout (XCLIP_STORAGE_TIMEOUT, here 1 s a request)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("XCLIP_STORAGE_TIMEOUT", "1")
    uri = f"s3://bucket/videos?endpoint_override={silent_endpoint}&scheme=http&region=us-east-1"
    t0 = time.monotonic()
    with pytest.raises(
        UsageError, match=r"cannot list s3://bucket/videos.*XCLIP_STORAGE_TIMEOUT=1"
    ):
        expand_inputs([uri])
    assert time.monotonic() - t0 < 25
    from xclip_app.collection_inputs import remote_filesystem

    monkeypatch.delenv("XCLIP_STORAGE_TIMEOUT")
    fs, _ = remote_filesystem(uri)
    opts = fs.__reduce__()[1][0]
    assert opts["connect_timeout"] == opts["request_timeout"] == 5.0
    assert opts["endpoint_override"] == silent_endpoint  # the URI's own options are kept
    monkeypatch.setenv("XCLIP_STORAGE_TIMEOUT", "soon")
    with pytest.raises(UsageError, match="XCLIP_STORAGE_TIMEOUT must be"):
        expand_inputs([uri])


# ---------------------------------------------------------------------------------------------
# local engine, Parquet rows = the one-process path
# ---------------------------------------------------------------------------------------------


def test_local_parquet_classify_equals_classifier(tiny, collection, tmp_path):
    out = tmp_path / "labels.parquet"
    rc = _cli("classify", collection, "--labels", ",".join(LABELS), *_common(tiny), "-o", out)
    assert rc == 1  # the broken video is a named failure, not the end of the job
    rows = {r["path"]: r for r in read_rows(out)}
    assert sorted(rows) == _videos(collection)
    clf = VideoClassifier(tiny, LABELS, device="cpu")
    for r in clf.classify_iter(_videos(collection)):
        row = rows[r.source]
        if hasattr(r, "probs"):
            assert row["error"] is None and row["labels"] == list(r.labels)
            np.testing.assert_allclose(row["probs"], r.probs, atol=1e-6)
            assert row["model_fingerprint"] == clf_fingerprint(tiny)
            assert (row["num_clips"], row["num_crops"], row["view_mode"]) == (1, 1, "uniform")
            assert row["duration"] > 0 and row["num_frames"] >= 30
        else:
            assert row["labels"] is None and r.error == row["error"]
    assert "not a readable video" in rows[str(collection / "broken.mp4")]["error"]


def clf_fingerprint(tiny) -> str:
    from xclip.inference import load_inference_model, model_fingerprint

    return model_fingerprint(load_inference_model(tiny))


def test_local_parquet_embed_equals_embed_videos_and_search_reads_it(
    tiny, collection, tmp_path, capsys
):
    out = tmp_path / "index.parquet"
    assert _cli("embed", collection, *_common(tiny), "--num-clips", "2", "-o", out) == 1
    index = load_parquet_index(out)
    ref = embed_videos(tiny, _videos(collection), num_clips=2, device="cpu")
    assert index.paths == ref.paths
    torch.testing.assert_close(index.embeds, ref.embeds, atol=1e-6, rtol=0)
    torch.testing.assert_close(index.tokens, ref.tokens, atol=1e-6, rtol=0)
    assert [f.source for f in index.failures] == [str(collection / "broken.mp4")]
    capsys.readouterr()
    assert _cli("search", "a dog", "--index", out, "--device", "cpu", "--format", "jsonl") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(ref.paths)


def test_resume_skips_done_videos_and_refuses_other_settings(
    tiny, collection, tmp_path, capsys, rows_before_merge
):
    out = tmp_path / "parts"  # a folder of parts
    first = [collection / "v0.mp4", collection / "v1.mp4"]
    args = ["--labels", ",".join(LABELS), *_common(tiny), "--part-rows", "1"]
    assert _cli("classify", *first, *args, "-o", f"{out}/", "--engine", "local") == 0
    assert (out / "_xclip.json").is_file() and len(list(out.glob("part-*.parquet"))) == 2
    before = {r["path"]: r for r in read_rows(out)}
    # the same output again with more inputs: only the new ones run
    capsys.readouterr()
    assert _cli("classify", collection, *args, "-o", out) == 1  # broken.mp4, named
    err = capsys.readouterr().err
    assert "already holds 2 of 7" in err
    _each_once(rows_before_merge[-1], _videos(collection))  # before the merge: not re-done
    assert "duplicate" not in err
    rows = read_rows(out)
    assert sorted(r["path"] for r in rows) == _videos(collection)  # each once
    assert {r["path"]: r for r in rows}[str(first[0])] == before[str(first[0])]
    # other labels: refused with the fix; --overwrite starts over
    other = ["--labels", "a,b", *_common(tiny)]
    capsys.readouterr()
    assert _cli("classify", collection, *other, "-o", out) == 2
    assert "other settings (labels differ); rerun with --overwrite" in capsys.readouterr().err
    assert _cli("classify", first[0], *other, "-o", out, "--overwrite") == 0
    assert [r["path"] for r in read_rows(out)] == [str(first[0])]
    assert not any(p.name.endswith("xclip-work") for p in tmp_path.iterdir())


def test_engine_ray_without_ray_says_how_to_install(
    tiny, collection, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "ray", None)
    out = tmp_path / "x.parquet"
    assert _cli("embed", collection, *_common(tiny), "-o", out, "--engine", "ray") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'xclip[ray]'" in err[0]
    assert not out.exists()
    assert _cli("classify", collection, "--labels", "a,b", "--engine", "ray") == 2
    assert "give -o OUT.parquet" in capsys.readouterr().err
    assert _cli("embed", collection, "-o", tmp_path / "i.safetensors", "--engine", "ray") == 2
    assert "not " in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# kill tests
# ---------------------------------------------------------------------------------------------


def _spawn(argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    code = "import sys; from xclip_app.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _many(collection: Path, n: int) -> Path:
    d = collection.parent / f"{collection.name}-many{n}"
    if not d.exists():
        d.mkdir()
        good = _videos(collection)[1:]  # without broken.mp4 (first in sort order)
        for i in range(n):
            (d / f"m{i:03d}.mp4").write_bytes(Path(good[i % len(good)]).read_bytes())
        (d / "broken.mp4").write_text("not a video\n")
    return d


def _kill_after_first_part(proc: subprocess.Popen, work: Path, timeout: float = 240) -> None:
    t0 = time.monotonic()
    while not list(work.glob("part-*.parquet")):
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be killed: {proc.stderr.read().decode()}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail("no part written in time")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # the driver only
    proc.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # what it left in its session (test hygiene)


def _driver_kill_then_rerun(tiny, folder: Path, out: Path, engine_args: list[str]) -> None:
    argv = ["embed", str(folder), "--model", str(tiny), "--device", "cpu", "--no-progress",
            "-o", str(out), "--part-rows", "2", "--no-tokens", *engine_args]  # fmt: skip
    work = out.parent / f".{out.name}.xclip-work"
    proc = _spawn(argv)
    _kill_after_first_part(proc, work)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and work.is_dir()  # nothing published, the parts kept
    done_before = sum(len(read_rows(p)) for p in work.glob("part-*.parquet"))
    assert done_before >= 2
    rerun = _spawn(argv)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 1, err.decode()  # the broken video, named
    err = err.decode()
    assert f"already holds {done_before} of" in err
    # exactly once, counted before the merge: the parts of the killed run and the rerun's rows
    # (the merge would drop a second row of a video, and say so)
    new_rows = int(err.split(f"wrote {out}: ", 1)[1].split(" new row(s)")[0])
    assert done_before + new_rows == len(_videos(folder)), err
    assert "duplicate" not in err
    paths = [r["path"] for r in read_rows(out)]
    assert sorted(paths) == _videos(folder)
    assert not work.exists()


def test_driver_sigkill_then_rerun_completes_exactly_once_local(tiny, collection, tmp_path):
    _driver_kill_then_rerun(tiny, _many(collection, 16), tmp_path / "emb.parquet", [])


# ---------------------------------------------------------------------------------------------
# ray engine (a local Ray on 2 CPUs)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_engine_equals_local(tiny, collection, tmp_path, local_ray):
    lab = ["--labels", ",".join(LABELS), *_common(tiny)]
    assert _cli("classify", collection, *lab, "-o", tmp_path / "local.parquet") == 1
    assert _cli("classify", collection, *lab, "-o", tmp_path / "ray", "--engine", "ray",
                "--num-workers", "2", "--cpus-per-worker", "0.5") == 1  # fmt: skip
    local, ray_rows = read_rows(tmp_path / "local.parquet"), read_rows(tmp_path / "ray")
    assert [r["path"] for r in local] == [r["path"] for r in ray_rows] == _videos(collection)
    for a, b in zip(local, ray_rows, strict=True):
        assert a["labels"] == b["labels"] and a["error"] == b["error"]  # identical rankings
        if a["probs"]:
            np.testing.assert_allclose(a["probs"], b["probs"], atol=1e-6)
    emb = [*_common(tiny), "--num-crops", "3"]
    assert _cli("embed", collection, *emb, "-o", tmp_path / "e_local.parquet") == 1
    assert _cli("embed", collection, *emb, "-o", tmp_path / "e_ray.parquet", "--engine",
                "ray") == 1  # fmt: skip
    x, y = (
        load_parquet_index(tmp_path / "e_local.parquet"),
        load_parquet_index(tmp_path / "e_ray.parquet"),
    )
    assert x.paths == y.paths
    torch.testing.assert_close(x.embeds, y.embeds, atol=1e-6, rtol=0)
    torch.testing.assert_close(x.tokens, y.tokens, atol=1e-6, rtol=0)


def _ray_worker_pids(kind: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if cmd.startswith("ray::") and kind in cmd:
                pids.append(int(d.name))
    return pids


@pytest.mark.slow
def test_ray_worker_killed_mid_run_no_row_lost_or_duplicated(
    tiny, collection, tmp_path, local_ray, rows_before_merge, capsys
):
    folder = _many(collection, 24)
    out = tmp_path / "emb.parquet"
    killed: list[int] = []

    def killer():
        t0 = time.monotonic()
        while not killed and time.monotonic() - t0 < 300:
            work = out.parent / f".{out.name}.xclip-work"
            pids = _ray_worker_pids("_ModelActor")
            if pids and list(work.glob("part-*.parquet")):  # mid-run: rows already written
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    rc = _cli("embed", folder, *_common(tiny), "-o", out, "--engine", "ray", "--part-rows", "1",
              "--no-tokens")  # fmt: skip
    t.join(timeout=5)
    assert killed, "no model worker was running while rows were written"
    assert rc == 1
    _each_once(rows_before_merge[-1], _videos(folder))  # before the merge
    assert "duplicate" not in capsys.readouterr().err
    _each_once([r["path"] for r in read_rows(out)], _videos(folder))


@pytest.mark.slow
def test_driver_sigkill_then_rerun_completes_exactly_once_ray(tiny, collection, tmp_path):
    pytest.importorskip("ray")
    _driver_kill_then_rerun(
        tiny, _many(collection, 16), tmp_path / "emb.parquet", ["--engine", "ray"]
    )


def test_bench_engines_smoke(tmp_path, capsys):
    from xclip_app.bench.engines import bench_engines

    r = bench_engines(tmp_path, arch="xclip_test", videos=2, frames=8, ray_engine=False)
    assert set(r["decode_videos_per_s"]) == {"raw 720p", "prepared (256, keyint 16)"}
    assert r["engine_videos_per_s"]["local"] > 0 and r["prepared_speedup"] > 0
    out = capsys.readouterr().out
    assert "prepared / raw" in out and "local" in out
    with xclip.data.video.open_video(str(tmp_path / "prepared" / "clip001-8f.mp4")) as v:
        assert v.get_frames([0]).shape[1:3] == (256, 454)  # the short side 256


def test_model_worker_honours_compile():
    """Issue 20: Parquet and Ray jobs ignored --compile (the worker built its pipeline with the
    default); the worker now passes it on."""
    from xclip_app.engines.work import ModelWorker

    model = xclip.create_model("xclip_test")
    assert ModelWorker(model, "embed", device="cpu", compile=False).pipe._encoder is None
    assert ModelWorker(model, "embed", device="cpu", compile=True).pipe._encoder is not None


def test_video_uris_of_a_list_file_are_not_requested_one_by_one(tmp_path, monkeypatch):
    """A list of a million video URIs made a request per line before the job started (one HEAD,
    up to the storage timeout each); a URI naming a video file is now taken as written, and
    checked when read (a failed video)."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.2)
    endpoint = f"127.0.0.1:{srv.getsockname()[1]}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("XCLIP_STORAGE_TIMEOUT", "1")
    q = f"?endpoint_override={endpoint}&scheme=http&region=us-east-1"
    uris = [f"s3://bucket/videos/v{i}.mp4{q}" for i in range(3)]
    (tmp_path / "list.txt").write_text("\n".join(uris) + "\n")
    try:
        assert expand_inputs([str(tmp_path / "list.txt")]) == sorted(uris)
        with pytest.raises(TimeoutError):
            srv.accept()[0].close()  # nobody connected
    finally:
        srv.close()
