"""Keep the model benchmark from rotting: its whole code path on the tiny model, 1 repeat."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")

from xclip_app.bench.model import REFERENCE  # noqa: E402
from xclip_app.cli import main  # noqa: E402


def test_bench_model_smoke(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "model", "--arch", "xclip_test", "--repeats", "3", "--warmup", "1"]
    argv += ["--dtypes", "fp32,bf16", "--peak-seconds", "0.02", "--json", str(out), "--no-onnx"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "ratio" in text and REFERENCE in text
    res = json.loads(out.read_text())
    names = {f"{r['impl']} {r['dtype']} {r['text']}" for r in res["results"]}
    assert REFERENCE in names
    assert {"ours fp32 cached", "ours fp32 uncached", "ours bf16 cached", "hf fp32 cached"} <= names
    for r in res["results"]:
        assert r["median_s"] > 0 and r["min_s"] <= r["median_s"]
        assert r["speedup_vs_ref"] is not None and r["speedup_vs_ref"] > 0
        assert r["model_gmacs"] > 0 and r["frac_of_peak"] is not None
    assert set(res["peak"]) == {"fp32", "bf16"}
    assert res["targets"] and all(v is not None for v in res["targets"].values())
    # ours against transformers at the same precision, in every row, with the spread stated
    for d in ("fp32", "bf16"):
        for kind in ("cached", "uncached"):
            t = res["targets"][f"ours_{d}_{kind}_vs_hf_{d}_{kind} >= 1.0"]
            assert t["p10"] <= t["median"] <= t["p90"] and t["n"] == 3
    assert "10th-90th percentile" in text
    # identical weights in fp32: same top-1 as transformers, logits equal to fp32 rounding
    assert res["top1"]["reference"] == "hf fp32"
    assert res["top1"]["ours_fp32_agree"] is True
    assert res["top1"]["vs_reference"]["ours fp32"]["max_abs_logit_diff"] < 1e-4


def test_paired_ratio_cancels_the_load_of_the_machine():
    """Both configurations slow down together (another job on the machine): the per-repeat
    ratio stays 2.0 where a ratio of medians of independent runs would not."""
    from xclip_app.bench.model import paired_ratio

    ref = [2.0, 4.0, 8.0, 2.2, 6.0]
    fast = [1.0, 2.0, 4.0, 1.1, 3.0]
    r = paired_ratio(ref, fast)
    assert r == {"median": 2.0, "p10": 2.0, "p90": 2.0, "n": 5}
    r = paired_ratio([1.0] * 10, [1.0 / k for k in range(1, 11)])
    assert r["p10"] == 2.0 and r["p90"] == 9.0 and r["median"] == 5.5


def test_bench_data_smoke(tmp_path):
    """The data benchmark's code path on one short clip: exact frames, a table, exit code 0."""
    import json

    from xclip_app.cli import main

    out = tmp_path / "data.json"
    argv = [
        "bench", "data", "--clips", "h264_320x240_gop30", "--frames", "8", "--repeats", "1",
        "--backends", "pyav", "--dataloader-workers", "1", "--clips-dir", str(tmp_path / "clips"),
        "--json", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    res = json.loads(out.read_text())
    assert res["per_clip"] and all(r["wrong_frames"] == 0 for r in res["per_clip"])
    assert {r["stage"] for r in res["dataloader"]} == {"decode", "decode+transforms"}
