"""A Parquet job at a million rows, without a model (``benchmarks/parquet_scale.py``): peak memory
of resume and of merge stays under 300 MB above the process's RSS before each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pyarrow")
ROOT = Path(__file__).resolve().parents[1]
LIMIT_MB = 300


def _run(tmp_path: Path, rows: int) -> dict:
    out = tmp_path / "scale.json"
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    cmd = [sys.executable, str(ROOT / "benchmarks" / "parquet_scale.py"), "--rows", str(rows),
           "--dir", str(tmp_path), "--json", str(out)]  # fmt: skip
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text())


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux /proc needed")
def test_parquet_scale_smoke(tmp_path):
    res = _run(tmp_path, 3000)
    assert res["finished_job_rerun"]["rerun_s"] > 0


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux /proc needed")
def test_a_million_rows_resume_and_merge_stay_under_300_mb(tmp_path):
    res = _run(tmp_path, 1_000_000)
    for step in ("killed_job_rerun", "finished_job_rerun"):
        r = res[step]
        assert r["resume_peak_mb"] < LIMIT_MB, (step, r)
        assert r["merge_peak_mb"] < LIMIT_MB, (step, r)
