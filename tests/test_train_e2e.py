"""End to end on CPU: the tiny model on generated videos. Training + evaluation, resume after
SIGKILL, NaN stop, 2-process gloo DDP == 1 process, exact eval counts, protocol commands."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("av")

import xclip  # noqa: E402
from xclip_app.cli import main as cli_main  # noqa: E402
from xclip_app.train import checkpointing as C  # noqa: E402
from xclip_app.train.config import load_config  # noqa: E402
from xclip_app.train.toydata import make_toy_dataset  # noqa: E402
from xclip_app.train.trainer import NonFiniteLossError, Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs/test/tiny.yaml"
PY = sys.executable


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy")
    files = make_toy_dataset(out, num_classes=4, train_per_class=6, val_per_class=3)
    # an odd-sized eval list (13 videos) so 2 ranks get unequal shares
    lines = files["val"].read_text().splitlines() + files["train"].read_text().splitlines()[:1]
    files["val13"] = out / "val13.txt"
    files["val13"].write_text("\n".join(lines) + "\n")
    return files


def _overrides(toy, out: Path, *extra: str) -> list[str]:
    return [
        f"data.root={toy['root']}",
        f"data.train_file={toy['train']}",
        f"data.val_file={toy['val']}",
        f"data.label_list={toy['labels']}",
        f"output.dir={out}",
        *extra,
    ]


def _losses(run: Path) -> dict[int, float]:
    """Loss per global iteration; each iteration is logged once (a resume drops the rows written
    after its checkpoint)."""
    out = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["kind"] == "train":
            assert row["step"] not in out, f"step {row['step']} logged twice"
            out[row["step"]] = row["loss"]
    return out


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    from xclip.checkpoint import read_safetensors

    return read_safetensors(ckpt / "model.safetensors")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def test_train_then_evaluate(toy, tmp_path):
    run = tmp_path / "run"
    cfg = load_config(TINY, _overrides(toy, run, "train.epochs=8", "test.final_num_clips=2"))
    summary = Trainer(cfg).fit()
    # learns the toy task (4 classes, chance 25 %)
    assert summary.best_top1 >= 50.0, summary.table()
    assert summary.final_eval["views"] == "2x3" and summary.final_eval["num_samples"] == 12
    assert len(summary.history) == 8 and "final 2x3 views" in summary.table()
    # files: resolved config, metrics, checkpoints (keep_last=2), best, report
    assert load_config(run / "config.yaml").train.epochs == 8
    assert len(_losses(run)) == 8 * 6
    assert [p.name for p in C.list_checkpoints(run)] == ["epoch_007", "epoch_008"]
    for f in (
        "metrics.json",
        "confusion.npy",
        "confusion.csv",
        "confusion.png",
        "per_class.csv",
        "predictions.csv",
    ):
        assert (run / "final_eval" / f).is_file(), f
    conf = np.load(run / "final_eval" / "confusion.npy")
    assert conf.shape == (4, 4) and conf.sum() == 12
    # a checkpoint is a model directory; its train state loads with weights_only=True
    last = C.find_latest(run)
    model = xclip.load_model(last)
    assert model.cfg.num_frames == 4
    state = torch.load(last / "train_state.pt", weights_only=True)
    assert state["epoch"] == 8 and state["iteration"] == 0 and len(state["rng"]) == 1
    assert xclip.load_model(run / "best").cfg == model.cfg
    # the eval command on the checkpoint reproduces the final multi-view numbers with uniform views
    rc = cli_main(
        ["eval", "--checkpoint", str(last), "--val-file", str(toy["val"]), "--labels",
         str(toy["labels"]), "--root", str(toy["root"]), "--views", "1x1", "--workers", "0",
         "--out", str(tmp_path / "ev")]
    )  # fmt: skip
    assert rc == 0
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["num_samples"] == 12 and m["top1"] == pytest.approx(summary.history[-1]["top1"])


def test_nan_stops_and_keeps_last_good_checkpoint(toy, tmp_path):
    run = tmp_path / "run"
    cfg = load_config(
        TINY, _overrides(toy, run, "train.epochs=3", "test.eval_every=0", "test.final_eval=false")
    )
    trainer = Trainer(cfg)
    calls = {"n": 0}
    base = trainer.loss_fn

    def loss_fn(logits, target):
        calls["n"] += 1
        loss = base(logits, target)
        return loss * float("nan") if calls["n"] == 9 else loss  # iteration 3 of epoch 2

    trainer.loss_fn = loss_fn
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 2 iteration 2.*epoch_001"):
        trainer.fit()
    assert [p.name for p in C.list_checkpoints(run)] == ["epoch_001"]
    xclip.load_model(run / "checkpoints" / "epoch_001")
    assert max(_losses(run)) == 7  # iterations 0..7 logged, the NaN one not


def _train_cmd(toy, out, *extra):
    return [
        PY,
        "-m",
        "xclip_app.cli",
        "train",
        "--config",
        str(TINY),
        *_overrides(toy, out, *extra),
    ]


RESUME_ARGS = (
    "train.epochs=4", "train.batch_size=2", "aug.mixup=0.8", "train.deterministic=true",
    "test.eval_every=0", "test.final_eval=false", "output.save_every_steps=4", "output.keep_last=50",
)  # fmt: skip


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(toy, tmp_path):
    ref = tmp_path / "ref"
    subprocess.run(_train_cmd(toy, ref, *RESUME_ARGS), check=True, env=_env(), capture_output=True)
    run = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(toy, run, *RESUME_ARGS), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    # kill it once a mid-epoch checkpoint of epoch 2 exists (12 iterations per epoch)
    while time.time() < deadline and proc.poll() is None:
        if (run / "checkpoints" / "epoch_001_iter_000004").is_dir():
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    latest = C.find_latest(run)
    pos = C.Position.parse(latest.name)
    assert pos is not None and (pos.epoch, pos.iteration) < (4, 0)
    killed_at = max(_losses(run))
    subprocess.run(_train_cmd(toy, run, *RESUME_ARGS) + ["--resume", "auto"], check=True, env=_env(), capture_output=True)  # fmt: skip
    a, b = _losses(ref), _losses(run)
    assert sorted(a) == sorted(b) == list(range(48))
    resumed_from = pos.epoch * 12 + pos.iteration
    assert resumed_from <= killed_at + 1  # the checkpoint names the next iteration
    for step in range(resumed_from, 48):
        assert b[step] == a[step], step  # bit-identical on CPU with deterministic settings
    wa, wb = _weights(ref / "checkpoints/epoch_004"), _weights(run / "checkpoints/epoch_004")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_equal_one(toy, tmp_path):
    common = (
        "train.epochs=2", "aug.mixup=0", "train.deterministic=true", "test.final_num_clips=2",
        "test.final_num_crops=1", "test.final_view_mode=uniform", f"data.val_file={toy['val13']}",
        "test.batch_size=2",
    )  # fmt: skip
    one = tmp_path / "one"
    subprocess.run(_train_cmd(toy, one, *common, "train.batch_size=4"), check=True, env=_env(), capture_output=True)  # fmt: skip
    two = tmp_path / "two"
    cmd = [PY, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "--master_addr=127.0.0.1", "-m", "xclip_app.cli", "train", "--config", str(TINY),
           *_overrides(toy, two, *common, "train.batch_size=2")]  # fmt: skip
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = _losses(one), _losses(two)
    assert sorted(a) == sorted(b) == list(range(12))
    for s in a:
        assert b[s] == pytest.approx(a[s], rel=1e-5, abs=1e-6), s
    wa, wb = _weights(one / "checkpoints/epoch_002"), _weights(two / "checkpoints/epoch_002")
    # Parameters: float summation order differs (gradient all-reduce), and AdamW turns the
    # rounding noise of (near-)zero gradients into updates of up to ~lr (attention key biases have
    # an exactly zero true gradient: softmax is shift-invariant). So: all parameters within one
    # Adam step of the 10x groups (lr 2e-2; one full run measured 9.8e-4, one under a loaded
    # machine went past 2e-3), and all but a few elements within 1e-5.
    diffs = torch.cat([(wb[k] - wa[k]).abs().view(-1) for k in wa])
    assert diffs.max() < 2e-2
    assert (diffs > 1e-5).float().mean() < 0.01
    # evaluation under 2 processes counts every one of the 13 videos exactly once
    sa = json.loads((one / "summary.json").read_text())
    sb = json.loads((two / "summary.json").read_text())
    assert sa["final_eval"]["num_samples"] == sb["final_eval"]["num_samples"] == 13
    assert sb["final_eval"]["top1"] == pytest.approx(sa["final_eval"]["top1"])
    assert sb["history"][-1]["top1"] == pytest.approx(sa["history"][-1]["top1"])
    preds_a = (one / "final_eval/predictions.csv").read_text().splitlines()
    preds_b = (two / "final_eval/predictions.csv").read_text().splitlines()
    assert len(preds_b) == 14 and [r.split(",")[:4] for r in preds_a] == [
        r.split(",")[:4] for r in preds_b
    ]


def test_zeroshot_and_fewshot_commands_print_tables(toy, tmp_path, capsys):
    # a model to evaluate: the random tiny model, saved as a model directory
    model_dir = xclip.save_model(xclip.create_model("xclip_test"), tmp_path / "model")
    sp = toy["test_split1"].parent
    zs = tmp_path / "zs.yaml"
    zs.write_text(
        f"base: {TINY}\n"
        f"data: {{root: {toy['root']}}}\n"
        "protocol:\n  eval_sets:\n"
        + "".join(
            f"    - {{name: split{k}, val_file: {sp}/test_split{k}.txt, label_list: {toy['labels']}}}\n"
            for k in (1, 2, 3)
        )
    )
    assert (
        cli_main(
            [
                "zeroshot",
                "--config",
                str(zs),
                "--checkpoint",
                str(model_dir),
                "--output",
                str(tmp_path / "zsout"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "split1" in out and "split3" in out and "mean ± std" in out
    assert (tmp_path / "zsout/zeroshot_table.txt").is_file()
    assert (tmp_path / "zsout/split2/confusion.png").is_file()
    # K600-like subsets: each with its own (relabelled) label set
    k6 = tmp_path / "k6.yaml"
    k6.write_text(
        f"base: {TINY}\ndata: {{root: {toy['root']}}}\nprotocol:\n  eval_sets:\n"
        + "".join(
            f"    - {{name: subset{k}, val_file: {sp}/list_subset{k}.txt, label_list: {sp}/labels_subset{k}.csv}}\n"
            for k in (1, 2, 3)
        )
    )
    assert (
        cli_main(
            [
                "zeroshot",
                "--config",
                str(k6),
                "--checkpoint",
                str(model_dir),
                "--output",
                str(tmp_path / "k6out"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "subset3" in out and "mean ± std" in out
    # few-shot: K = 1, 2 videos per class from the split-1 train list, 2 draws each
    rc = cli_main(
        ["fewshot", "--config", str(TINY), "--shots", "1,2", "--seeds", "0,1",
         "--output", str(tmp_path / "fs"), f"data.root={toy['root']}",
         f"protocol.train_file={sp}/train_split1.txt", f"data.val_file={sp}/test_split1.txt",
         f"data.label_list={toy['labels']}", "train.epochs=1", "train.warmup_epochs=0",
         "train.batch_size=2", "test.eval_every=0", "test.final_num_clips=1", "test.final_num_crops=1"]
    )  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "top-1 (mean ± std)" in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["1", "2"] and all(r[1] == "2" for r in rows)
    results = json.loads((tmp_path / "fs/fewshot_results.json").read_text())
    assert len(results) == 4 and all(r["videos"] == 12 for r in results)
    assert len((tmp_path / "fs/k2_seed1/train_2shot_seed1.txt").read_text().splitlines()) == 8


def test_placeholder_paths_fail_cleanly(capsys):
    rc = cli_main(["train", "--config", str(ROOT / "configs/k400/b16_8f.yaml")])
    assert rc == 2
    assert (
        "data.train_file is the placeholder '/PATH/TO/kinetics400/train.txt'"
        in capsys.readouterr().err
    )
