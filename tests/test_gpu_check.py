"""benchmarks/gpu_check.py: the refusals (fast) and the --quick dry run end to end on the CPU (slow):
every section is there and every row carries ``mfu`` and ``ratio_vs_transformers``."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_refuses_an_existing_output_and_a_full_run_without_cuda(tmp_path, capsys):
    gc = _load()
    out = tmp_path / "g.json"
    out.write_text("{}")
    assert gc.main(["--quick", "--device", "cpu", "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_text() == "{}"
    if not torch.cuda.is_available():
        assert gc.main(["-o", str(tmp_path / "x.json")]) == 2
        assert "--quick" in capsys.readouterr().err
        assert not (tmp_path / "x.json").exists()


@pytest.mark.slow
def test_quick_dry_run_writes_every_section(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("av")
    gc = _load()
    out = tmp_path / "g.json"
    assert gc.main(["--quick", "--device", "cpu", "-o", str(out)]) == 0
    res = json.loads(out.read_text())
    rows = res["rows"]
    assert (
        res["quick"]
        and res["complete"]
        and all("mfu" in r and "ratio_vs_transformers" in r for r in rows)
    )
    by = {}
    for r in rows:
        by.setdefault(r["section"], []).append(r)
    assert set(by) == {"peak", "parity", "inference", "train", "data"}
    assert by["parity"][0]["top1_agreement"] == 1.0
    ours, hf = by["inference"]
    assert ours["impl"] == "xclip" and hf["impl"] == "transformers"
    assert ours["top1_agreement_with_transformers"] == 1.0  # same weights, same answers
    assert ours["ratio_vs_transformers"] == pytest.approx(ours["views_per_s"] / hf["views_per_s"])
    assert ours["mfu"] > 0 and math.isfinite(ours["mfu"])
    whats = [r["what"] for r in by["train"]]
    assert whats[0] == "train" and "largest_batch" in whats and whats[-1] == "paper_table7"
    assert all(r["loss_finite"] and r["clips_per_s"] > 0 and r["mfu"] > 0 for r in by["train"])
    kinds = [r["clips"] for r in by["data"] if "workers" in r]
    assert kinds == ["raw", "prepared"]
    assert all(r["feeds_training"] > 0 for r in by["data"] if "workers" in r)
    assert by["data"][-1]["decoder"] == "torchcodec-cuda"
    # a second run is refused unless --overwrite
    assert gc.main(["--quick", "--device", "cpu", "-o", str(out)]) == 2


def test_training_rows_time_the_trainers_own_step(monkeypatch):
    """Issue 20: gpu_check's training rows ran a loop of their own (hard-label cross-entropy on
    the bare model), so they timed another step than the trainer's. They now time TrainStep,
    the object the trainer's epoch calls."""
    from xclip_app.train import trainer
    from xclip_app.train.step import TrainStep

    assert trainer.TrainStep is TrainStep  # the trainer's epoch runs this class
    gc = _load()
    seen = []
    loss = TrainStep.loss

    def counting(self, clips, target):
        seen.append((tuple(clips.shape), tuple(target.shape), target.dtype))
        return loss(self, clips, target)

    monkeypatch.setattr(TrainStep, "loss", counting)
    row = gc.train("xclip_test", 2, torch.device("cpu"), 1e12, True, "fp32")
    assert row["loss_finite"] and row["clips_per_s"] > 0
    assert len(seen) == 3  # 1 warm-up + 2 timed steps, all through the trainer's step
    (clips, target, dtype) = seen[0]
    assert clips[0] == 2 and target[0] == 2 and dtype.is_floating_point  # soft targets
