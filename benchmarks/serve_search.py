"""The Search view of ``xclip-video serve --index`` through its HTTP API, against the library's
own search of the same vectors in the same run.

    python benchmarks/serve_search.py --windows 100000 --queries 40

Builds a moments library of ``--windows`` rows (vectors of the model's width drawn to be
clustered like real embeddings, as ``xclip-video bench search`` does; ``--videos`` videos, each
a link to one real clip so that thumbnails decode a real file), serves it with a random-weight
``--arch`` model on a free port, and times, over distinct queries:

- ``api``: ``GET /api/search?q=...&top_k=K`` end to end (the text encoded on the model thread,
  FAISS, the merge of windows into moments, JSON), a new text each time (no cached vector);
- ``api, cached text``: the same texts again (their vectors are cached: FAISS, merge and JSON);
- ``reference``: :func:`xclip.inference.moments.search_moments` in this process (encode, FAISS,
  merge) for the same texts: what the API adds is the ratio;
- thumbnails: the first ask of a moment's frame (decode, JPEG) and a second ask (the cache).

``--json FILE`` writes the numbers.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np
import torch

import xclip
from xclip.atomic import atomic_write_text
from xclip.data.synthetic import make_indexed_clip
from xclip.inference import MomentIndex, VideoClassifier, load_inference_model, search_moments
from xclip.inference.loading import model_info
from xclip_app.bench.search import clustered_vectors
from xclip_app.serve import ServeConfig, make_server
from xclip_app.serve.search_view import SearchView

WORDS = ("a dog", "a person", "a car", "two children", "an old man", "a red ball", "the sea",
         "a kitchen", "a bicycle", "snow")  # fmt: skip
ACTS = ("jumps", "runs away", "falls over", "catches a frisbee", "is dancing", "opens a door",
        "rides past", "is cooking")  # fmt: skip


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q))


def _get(host: str, port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=120)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="xclip_b32_8f")
    p.add_argument("--windows", type=int, default=100_000)
    p.add_argument("--videos", type=int, default=100)
    p.add_argument("--queries", type=int, default=40)
    p.add_argument("--top-k", type=int, nargs="+", default=[10, 100, 2000])
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: as set)")
    p.add_argument("--json", help="write the numbers here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    texts = [f"{w} {a}" for w in WORDS for a in ACTS][: args.queries]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        torch.manual_seed(0)
        folder = xclip.save_model(xclip.create_model(args.arch), root / "model")
        model = load_inference_model(folder)
        clip = root / "clip.mp4"
        make_indexed_clip(clip, 900, size=(640, 360), gop=60)  # 30 s at 30 fps
        vids = root / "videos"
        vids.mkdir()
        per = -(-args.windows // args.videos)
        paths, starts = [], []
        for v in range(args.videos):
            link = vids / f"v{v:04d}.mp4"
            os.symlink(clip, link)
            n = min(per, args.windows - len(paths))
            paths += [str(link)] * n
            starts.append(0.5 * np.arange(n))
        start = np.concatenate(starts)
        vectors = clustered_vectors(len(paths), model.cfg.embed_dim, seed=0)
        t0 = time.perf_counter()
        index = MomentIndex.build(paths, start, start + 1.0, vectors,
                                  model=model_info(model, str(folder)),
                                  settings={"window": 1.0, "stride": 0.5})  # fmt: skip
        build = time.perf_counter() - t0
        index.save(root / "lib")
        clf = VideoClassifier(model, ["a", "b"])
        srv = make_server(clf, ServeConfig(model_name=args.arch, labels=["a", "b"]),
                          "127.0.0.1", 0, views=(SearchView(root / "lib", clf),))  # fmt: skip
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        host, port = srv.server_address[:2]
        out: dict = {"arch": args.arch, "windows": len(paths), "videos": args.videos,
                     "index": index.vectors.plan.spec, "build_s": round(build, 2),
                     "queries": len(texts), "torch_threads": torch.get_num_threads(), "k": {}}  # fmt: skip
        try:
            _get(host, port, "/api/search?q=warm+up")
            for k in args.top_k:
                api, cached, ref = [], [], []
                first = None
                for text in texts:
                    q = urllib.parse.urlencode({"q": f"{text} ({k})", "top_k": k})
                    t0 = time.perf_counter()
                    status, body = _get(host, port, f"/api/search?{q}")
                    api.append(time.perf_counter() - t0)
                    assert status == 200, body[:300]
                    first = first or json.loads(body)
                    t0 = time.perf_counter()
                    assert _get(host, port, f"/api/search?{q}")[0] == 200
                    cached.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    search_moments(f"{text} ({k})", index, model, top_k=k)
                    ref.append(time.perf_counter() - t0)
                row = {
                    name: {"p50_ms": round(_pct(xs, 50), 2), "p95_ms": round(_pct(xs, 95), 2)}
                    for name, xs in (("api", api), ("api_cached_text", cached), ("reference", ref))
                }
                row["api_over_reference_p50"] = round(
                    statistics.median(api) / statistics.median(ref), 2
                )
                row["moments"] = len(first["moments"])
                out["k"][str(k)] = row
                print(f"k={k:>5}: api p50 {row['api']['p50_ms']:.1f} ms, p95 "
                      f"{row['api']['p95_ms']:.1f} | cached text p50 "
                      f"{row['api_cached_text']['p50_ms']:.1f}, p95 "
                      f"{row['api_cached_text']['p95_ms']:.1f} | reference (search_moments, "
                      f"same process) p50 {row['reference']['p50_ms']:.1f}, p95 "
                      f"{row['reference']['p95_ms']:.1f} | api/reference p50 "
                      f"{row['api_over_reference_p50']:.2f}", flush=True)  # fmt: skip
            cold, warm = [], []
            for i in range(20):
                path = f"/api/search/thumbnails/{i}?t={1 + i}"  # 20 videos, 20 frames
                t0 = time.perf_counter()
                status, body = _get(host, port, path)
                cold.append(time.perf_counter() - t0)
                assert status == 200 and body[:3] == b"\xff\xd8\xff"
                t0 = time.perf_counter()
                _get(host, port, path)
                warm.append(time.perf_counter() - t0)
            out["thumbnail_ms"] = {
                "cold_p50": round(_pct(cold, 50), 2), "cold_p95": round(_pct(cold, 95), 2),
                "warm_p50": round(_pct(warm, 50), 2), "warm_p95": round(_pct(warm, 95), 2),
                "source": "640x360 H.264, 30 s, keyframe every 2 s",
            }  # fmt: skip
            print(f"thumbnails (640x360 H.264, a keyframe every 2 s): cold p50 "
                  f"{out['thumbnail_ms']['cold_p50']:.1f} ms, p95 "
                  f"{out['thumbnail_ms']['cold_p95']:.1f} | cached p50 "
                  f"{out['thumbnail_ms']['warm_p50']:.2f} ms, p95 "
                  f"{out['thumbnail_ms']['warm_p95']:.2f}", flush=True)  # fmt: skip
        finally:
            srv.shutdown()
            srv.server_close()
    print(f"{out['windows']} windows of {args.videos} videos, index {out['index']} (built in "
          f"{out['build_s']:.1f} s), {args.arch} random weights, {out['torch_threads']} torch "
          f"thread(s)")  # fmt: skip
    if args.json:
        atomic_write_text(args.json, json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
