"""Per-step losses read back once per window (xclip_app.train.step_window) and the trainer with a
window longer than one step: the same losses as step by step, a NaN still named by its own
iteration, no checkpoint holding the weights after it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from xclip_app.train.step_window import StepWindow

pytest.importorskip("av")

from xclip_app.train import checkpointing as C  # noqa: E402
from xclip_app.train.config import load_config  # noqa: E402
from xclip_app.train.toydata import make_toy_dataset  # noqa: E402
from xclip_app.train.trainer import NonFiniteLossError, Trainer  # noqa: E402

TINY = Path(__file__).resolve().parents[1] / "configs/test/tiny.yaml"


def test_window_reads_back_means_in_order():
    w = StepWindow(every=3)
    for i, (s, n) in enumerate([(2.0, 2.0), (3.0, 1.0), (float("nan"), 1.0)]):
        w.add(i, torch.tensor([s, n], dtype=torch.float64), lr=0.1 * i, clips=4)
        assert w.full() == (i == 2)
    rows = w.flush()
    assert [r.iteration for r in rows] == [0, 1, 2]
    assert rows[0].loss == 1.0 and rows[1].loss == 3.0 and math.isnan(rows[2].loss)
    assert rows[1].lr == pytest.approx(0.1) and all(r.clips == 4 for r in rows)
    assert rows[0].clips_per_s > 0 and len(w) == 0 and w.flush() == []
    with pytest.raises(ValueError):
        StepWindow(0)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp("toy"), num_classes=4, train_per_class=6,
                            val_per_class=3)  # fmt: skip


def _cfg(toy, out: Path, *extra: str):
    return load_config(
        TINY,
        [f"data.root={toy['root']}", f"data.train_file={toy['train']}",
         f"data.val_file={toy['val']}", f"data.label_list={toy['labels']}", f"output.dir={out}",
         "test.eval_every=0", "test.final_eval=false", *extra],
    )  # fmt: skip


def _losses(run: Path) -> dict[int, float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if r["kind"] == "train"}


def test_windowed_read_back_gives_the_step_by_step_losses(toy, tmp_path):
    a = Trainer(_cfg(toy, tmp_path / "a", "train.epochs=2"))
    a.fit()
    b = Trainer(_cfg(toy, tmp_path / "b", "train.epochs=2", "output.save_every_steps=2"))
    b.sync_every = 4  # as on a GPU: one read-back per 4 steps (6 per epoch: 4 + 2)
    b.fit()
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b") and len(_losses(tmp_path / "a")) == 12


def test_windowed_nan_is_named_by_its_iteration_and_never_checkpointed(toy, tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(_cfg(toy, run, "train.epochs=3"))
    trainer.sync_every = 4
    calls = {"n": 0}
    base = trainer.loss_fn

    def loss_fn(logits, target):
        calls["n"] += 1
        loss = base(logits, target)
        return loss * float("nan") if calls["n"] == 8 else loss  # epoch 2, iteration 1

    trainer.loss_fn = loss_fn
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 2 iteration 1.*epoch_001"):
        trainer.fit()
    assert [p.name for p in C.list_checkpoints(run)] == ["epoch_001"]
    assert max(_losses(run)) == 6  # the steps before the NaN are logged, the NaN one not
