"""``xclip-video bench search``: the moments library's vector index against exact search.

Vectors of the model's width, drawn clustered like real embeddings (windows of one scene are
near each other): ``sqrt(N)`` unit centres, each vector a centre plus Gaussian noise of norm about
0.6 (cosine to its centre about 0.86), normalised. Queries are fresh draws around the same
centres, never indexed vectors. Per index: build seconds (for ours: training, adding and tuning
``nprobe``), memory (the serialised index), query latency p50/p99 one query at a time for k = 10
and k = 2,000, and recall@10 against the exact top 10. The baseline is exact search (FAISS
``IndexFlatIP``, searched with the same one thread a query as ours) over the same vectors in the
same run; ``--lancedb`` adds LanceDB's IVF_SQ index (the same kind as ours) over the same vectors.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from xclip.inference.vector_index import (
    IndexPlan,
    VectorIndex,
    exact_top,
    import_faiss,
    normalized,
    plan_index,
    recall_at,
)

__all__ = ["bench_search", "clustered_vectors", "format_search_result"]

KS = (10, 2000)


def clustered_vectors(
    n: int, dim: int, *, centres: int | None = None, seed: int = 0, draw: int = 0
) -> np.ndarray:
    """float32 ``[n, dim]`` unit vectors around ``centres`` unit centres (default ``sqrt(n)``,
    fixed by ``seed``); ``draw`` picks which vectors (0: the indexed ones, 1: queries)."""
    k = centres or max(16, int(math.sqrt(n)))
    c = np.random.default_rng(seed).standard_normal((k, dim), dtype=np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    rng = np.random.default_rng([seed, draw + 1])
    out = np.empty((n, dim), np.float32)
    for lo in range(0, n, 65536):  # bounded temporaries at a million rows
        m = min(65536, n - lo)
        noise = rng.standard_normal((m, dim), dtype=np.float32) * np.float32(0.6 / math.sqrt(dim))
        out[lo : lo + m] = c[rng.integers(0, k, m)] + noise
    return normalized(out)


def _latencies(search: Callable[[np.ndarray, int], np.ndarray], q: np.ndarray, k: int) -> dict:
    times, found = [], []
    search(q[:1], k)  # warm up
    for row in q:
        t0 = time.perf_counter()
        found.append(search(row[None], k)[0])
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "ids": np.stack(found)}  # fmt: skip


def _measure(name: str, build: Callable[[], tuple[Any, int, dict]], q: np.ndarray,
             truth: np.ndarray, log: Callable[[str], None]) -> dict:  # fmt: skip
    log(f"  {name}: building ...")
    t0 = time.perf_counter()
    search, memory, info = build()
    out: dict[str, Any] = {"index": name, **info, "build_s": time.perf_counter() - t0,
                           "memory_mb": memory / 2**20}  # fmt: skip
    for k in KS:
        r = _latencies(search, q, k)
        out[f"k{k}_p50_ms"], out[f"k{k}_p99_ms"] = r["p50_ms"], r["p99_ms"]
        if k == 10:
            out["recall_at_10"] = recall_at(r["ids"], truth)
    log(
        f"  {name}: built in {out['build_s']:.1f}s, {out['memory_mb']:.0f} MB; k=10 p50/p99 "
        f"{out['k10_p50_ms']:.2f}/{out['k10_p99_ms']:.2f} ms, k=2000 p50/p99 "
        f"{out['k2000_p50_ms']:.2f}/{out['k2000_p99_ms']:.2f} ms, recall@10 {out['recall_at_10']:.3f}"
    )
    return out


def bench_search(
    vectors: int,
    *,
    dim: int = 512,
    queries: int = 200,
    memory_budget: int = 1 << 30,
    lancedb: bool = False,
    threads: int | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every number of the benchmark for ``vectors`` rows of width ``dim``."""
    faiss = import_faiss()
    if threads:
        faiss.omp_set_num_threads(threads)
    log(f"bench search: {vectors} clustered vectors of width {dim}, {queries} queries")
    t0 = time.perf_counter()
    x = clustered_vectors(vectors, dim, seed=seed, draw=0)
    q = clustered_vectors(queries, dim, centres=max(16, int(math.sqrt(vectors))), seed=seed,
                          draw=1)  # fmt: skip
    log(f"  vectors drawn in {time.perf_counter() - t0:.1f}s; exact top 10 of every query ...")
    truth = exact_top(x, q, 10)
    rows = []

    def exact():  # FAISS's IndexFlatIP, searched as ours are (one thread for one query)
        index = VectorIndex.build(x, plan=IndexPlan("flat", "Flat", 0, dim * 4))
        return (lambda v, k: index.search(v, k)[1]), x.nbytes, {"spec": "Flat (exact)"}

    rows.append(_measure("exact", exact, q, truth, log))
    plan = plan_index(vectors, dim, memory_budget=memory_budget)

    def ours():
        index = VectorIndex.build(x, plan=plan)
        info = {"spec": plan.spec, "nprobe": index.nprobe}
        return (lambda v, k: index.search(v, k)[1]), index.memory_bytes(), info

    rows.append(_measure("xclip (FAISS)", ours, q, truth, log))
    if lancedb:
        with tempfile.TemporaryDirectory(prefix="xclip-bench-lancedb-") as folder:
            build = lambda: _lancedb(x, plan, Path(folder))  # noqa: E731
            rows.append(_measure("LanceDB IVF_SQ", build, q, truth, log))
    return {
        "vectors": vectors, "dim": dim, "queries": queries, "memory_budget": memory_budget,
        "plan": plan.spec, "threads": faiss.omp_get_max_threads(), "rows": rows,
    }  # fmt: skip


def _lancedb(x: np.ndarray, plan: IndexPlan, folder: Path) -> tuple[Any, int, dict]:
    """LanceDB's IVF_SQ over ``x`` with our plan's list count, stored in ``folder``; its size
    is the table and index on disk (LanceDB maps them into memory)."""
    import lancedb  # lazy: optional dependency
    import pyarrow as pa  # lazy: optional dependency
    from lancedb.index import IvfSq  # lazy: optional dependency

    db = lancedb.connect(str(folder))
    vec = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
    table = db.create_table("v", data=pa.table({"id": np.arange(len(x)), "vector": vec}))
    nlist = plan.nlist or plan_index(len(x), x.shape[1], exact_max_rows=0).nlist
    table.create_index("vector", config=IvfSq(distance_type="dot", num_partitions=nlist))
    nprobes = max(1, nlist // 32)  # about our tuned share of lists (1/32 to 1/128 at 100k-1M)

    def search(v: np.ndarray, k: int) -> np.ndarray:
        t = (
            table.search(v[0])
            .metric("dot")
            .nprobes(nprobes)
            .limit(k)
            .select(["id", "_distance"])
            .to_arrow()
        )
        ids = t.column("id").to_numpy()
        return np.pad(ids, (0, k - len(ids)), constant_values=-1)[None]

    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return search, size, {"spec": f"IVF_SQ ({nlist} lists)", "nprobe": nprobes}


def format_search_result(r: dict[str, Any]) -> str:
    """The table of one run: every index beside the exact baseline."""
    head = (f"bench search: {r['vectors']:,} vectors of width {r['dim']}, {r['queries']} queries "
            f"one at a time, {r['threads']} threads; memory budget {r['memory_budget'] / 2**30:g} GiB")  # fmt: skip
    lines = [head, "index            | spec                 | build s | memory MB | k=10 p50/p99 ms "
                   "| k=2000 p50/p99 ms | recall@10"]  # fmt: skip
    base = r["rows"][0]
    for row in r["rows"]:
        lines.append(
            f"{row['index']:<16} | {row['spec'][:20]:<20} | {row['build_s']:7.1f} | "
            f"{row['memory_mb']:9.0f} | {row['k10_p50_ms']:6.2f} / {row['k10_p99_ms']:6.2f} | "
            f"{row['k2000_p50_ms']:7.2f} / {row['k2000_p99_ms']:7.2f} | {row['recall_at_10']:.3f}"
        )
    for row in r["rows"][1:]:
        lines.append(
            f"{row['index']} vs exact: k=10 p50 {base['k10_p50_ms'] / row['k10_p50_ms']:.1f}x the "
            f"speed, k=2000 p50 {base['k2000_p50_ms'] / row['k2000_p50_ms']:.1f}x, memory "
            f"{row['memory_mb'] / base['memory_mb']:.2f}x"
        )
    return "\n".join(lines)
