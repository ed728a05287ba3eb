"""The Parquet job at scale without a model: peak memory of resume and merge, and the time of a
rerun, for N generated rows (default 1,000,000).

    python benchmarks/parquet_scale.py --rows 1000000

Three steps, each in a fresh process (so that one step's memory does not hide the next's):

1. ``generate``: N ``embed`` rows (an ``embedding`` of ``--embed-dim`` floats, no tokens, every
   1000th row a failed video) written straight into the work folder of ``OUT.parquet`` as part
   files of ``--part-rows`` rows - what a job leaves when it is killed before publishing.
2. ``finish``: the rerun of that killed job with nothing left to do: ``start()`` (resume: reads
   the parts' ``path``/``location``/``error``), ``pending()`` over the N inputs, ``finish()`` (the
   merge of N rows into ``OUT.parquet``).
3. ``rerun``: a rerun of the finished job with one new video: ``start()`` + ``pending()`` over the
   N + 1 inputs, ``finish()`` (the merge of the N published rows and the new one).

Peak memory is the process's peak RSS (``VmHWM``, reset through ``/proc/self/clear_refs`` before
each phase) minus its RSS just before the phase; the input list (N Python strings, the caller's)
is built before, and the modules (torch included, as every job has loaded the model by then)
are imported before. Linux only. ``--json FILE`` writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MB = 1 << 20
JOB = {"fingerprint": "v2:0123456789abcdef", "config": {"embed_dim": 8}, "labels": None,
       "template": None, "views": {"num_clips": 1, "num_crops": 1, "view_mode": "uniform"},
       "precision": "fp32", "extra": {"tokens": False}}  # fmt: skip


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status")


class Peak:
    """Peak RSS above the RSS at entry, in MiB (``VmHWM`` reset on entry)."""

    def __enter__(self) -> Peak:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        self.start = _status_kb("VmRSS")
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.mb = (_status_kb("VmHWM") - self.start) / 1024


def video_paths(n: int) -> list[str]:
    return video_paths_of(range(n))


def generate(out: Path, rows: int, part_rows: int, embed_dim: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from xclip.ownership import mark_dir, record_file
    from xclip_app.parquet_results import FORMAT, FORMAT_VERSION, META_FILE, result_schema

    schema = result_schema("embed")
    work = out.parent / f".{out.name}.xclip-work"
    work.mkdir(parents=True)
    mark_dir(work, "parquet-work")  # as a killed job leaves it: xclip's own (xclip.ownership)
    job = {"format": FORMAT, "format_version": FORMAT_VERSION, "task": "embed", **JOB}
    job["config"] = {"embed_dim": embed_dim}
    (work / META_FILE).write_text(json.dumps(job, indent=1))
    record_file(work / META_FILE)
    rng = np.random.default_rng(0)
    order = rng.permutation(rows)  # rows finish in no order (the ray engine)
    for k, start in enumerate(range(0, rows, part_rows)):
        ids = order[start : start + part_rows]
        n = len(ids)
        paths = pa.array(video_paths_of(ids.tolist()), pa.string())
        failed = ids % 1000 == 999
        emb = rng.standard_normal((n, embed_dim), dtype=np.float32)
        embedding = pa.ListArray.from_arrays(
            pa.array(np.arange(0, (n + 1) * embed_dim, embed_dim, dtype=np.int32)),
            pa.array(emb.reshape(-1)),
            mask=pa.array(failed),
        )
        table = pa.table(
            {
                "path": paths,
                "location": paths,
                "duration": pa.array(rng.uniform(5, 20, n)),
                "num_frames": pa.array(rng.integers(150, 600, n)),
                "model_fingerprint": pa.array(["v2:0123456789abcdef"] * n),
                "num_clips": pa.array(np.ones(n, np.int32)),
                "num_crops": pa.array(np.ones(n, np.int32)),
                "view_mode": pa.array(["uniform"] * n),
                "embedding": embedding,
                "tokens": pa.nulls(n, schema.field("tokens").type),
                "error": pa.array(
                    np.where(failed, "VideoDecodeError: no video stream", None), pa.string()
                ),
            },
            schema=schema,
        )
        pq.write_table(table, work / f"part-20260101T000000-1-{k:06d}.parquet")
        record_file(work / f"part-20260101T000000-1-{k:06d}.parquet")


def video_paths_of(ids) -> list[str]:
    # a thousand videos a folder, as a large collection is laid out
    return [f"/data/videos/{i // 1000:04d}/clip_{i:07d}.mp4" for i in ids]


def run_phase(out: Path, rows: int, part_rows: int, embed_dim: int, new: int) -> dict:
    import xclip.atomic  # noqa: F401  (imports torch: loaded by every job before resume)
    from xclip_app.collection_inputs import video_locations  # noqa: F401
    from xclip_app.parquet_results import ResultTable

    videos = video_paths(rows + new)
    job = {**JOB, "config": {"embed_dim": embed_dim}}
    t0 = time.perf_counter()
    table = ResultTable(out, "embed", job, part_rows=part_rows)
    with Peak() as resume:
        done = table.start()
        todo = table.pending(videos)
    assert done == rows and len(todo) == new, (done, len(todo))
    table.add(
        {"path": p, "embedding": [0.0] * embed_dim, "error": None, "model_fingerprint": "x"}
        for p in todo
    )
    with Peak() as merge:
        table.finish()
    total = time.perf_counter() - t0
    assert table.n_rows == rows + new and table.duplicates == 0
    return {
        "resume_peak_mb": round(resume.mb, 1),
        "resume_s": round(resume.seconds, 2),
        "merge_peak_mb": round(merge.mb, 1),
        "merge_s": round(merge.seconds, 2),
        "rerun_s": round(total, 2),
    }


def _child(phase: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase, "--rows", str(args.rows),
           "--part-rows", str(args.part_rows), "--embed-dim", str(args.embed_dim),
           "--dir", str(args.dir)]  # fmt: skip
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{phase} failed:\n{r.stderr}")
    res = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
    return {**res, "wall_s": round(time.perf_counter() - t0, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--part-rows", type=int, default=256, help="the job's --part-rows (256)")
    p.add_argument("--embed-dim", type=int, default=8, help="floats per embedding (8)")
    p.add_argument("--dir", type=Path, default=None, help="where to write (a temporary folder)")
    p.add_argument("--json", type=Path, default=None, help="write the numbers here")
    p.add_argument("--phase", choices=["generate", "finish", "rerun"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.phase:
        out = args.dir / "out.parquet"
        if args.phase == "generate":
            generate(out, args.rows, args.part_rows, args.embed_dim)
            print("{}")
        else:
            new = 1 if args.phase == "rerun" else 0
            print(json.dumps(run_phase(out, args.rows, args.part_rows, args.embed_dim, new)))
        return 0
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        args.dir = Path(tmp)
        gen = _child("generate", args)
        first = _child("finish", args)
        size = (args.dir / "out.parquet").stat().st_size
        rerun = _child("rerun", args)
    result = {"rows": args.rows, "part_rows": args.part_rows, "embed_dim": args.embed_dim,
              "output_mb": round(size / MB, 1), "generate_s": gen["wall_s"],
              "killed_job_rerun": first, "finished_job_rerun": rerun}  # fmt: skip
    print(f"{args.rows:,} rows ({args.part_rows} a part, embedding of {args.embed_dim} floats); "
          f"output {size / MB:.1f} MiB; generated in {gen['wall_s']:.1f}s")  # fmt: skip
    print(f"{'':34}{'resume MB':>10}{'merge MB':>10}{'resume s':>10}{'merge s':>9}{'rerun s':>9}")
    for name, r in (("rerun of a killed job (parts)", first), ("rerun + 1 new (published)", rerun)):
        print(f"{name:34}{r['resume_peak_mb']:>10.1f}{r['merge_peak_mb']:>10.1f}"
              f"{r['resume_s']:>10.2f}{r['merge_s']:>9.2f}{r['rerun_s']:>9.2f}")  # fmt: skip
    print("(peak RSS above the RSS before each step, MiB; times in seconds, this process only)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
