"""Rules 1 and 4 for training runs: a run folder is never silently replaced or mixed, a resume
never changes the run, a crash (kill -9, an error in validation) never loses a checkpointed epoch,
and a finished run is never rewritten.

The tiny recipe on the generated toy dataset; most runs are 1-3 epochs of 6 iterations in this
process, the kill -9 and torchrun ones are subprocesses with bounded waits.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("av")

import xclip  # noqa: E402
from xclip.ownership import kept_name
from xclip_app.cli import main as cli_main  # noqa: E402
from xclip_app.train import checkpointing as C  # noqa: E402
from xclip_app.train.config import load_config  # noqa: E402
from xclip_app.train.run_folder import RunFolderError  # noqa: E402
from xclip_app.train.trainer import NonFiniteLossError, Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs/test/tiny.yaml"
ITERS = 6  # 24 training videos / batch 4
FAST = ("test.eval_every=0", "test.final_eval=false", "output.tensorboard=false")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from xclip_app.train.toydata import make_toy_dataset

    return make_toy_dataset(tmp_path_factory.mktemp("toy"), num_classes=4, train_per_class=6)


def _args(toy, run: Path, *extra: str, train_file: Path | None = None) -> list[str]:
    return [
        f"data.root={toy['root']}",
        f"data.train_file={train_file or toy['train']}",
        f"data.val_file={toy['val']}",
        f"data.label_list={toy['labels']}",
        f"output.dir={run}",
        "train.epochs=2",
        *extra,
    ]


def _cfg(toy, run: Path, *extra: str, **kw):
    return load_config(TINY, _args(toy, run, *extra, **kw))


def _cli(toy, run: Path, *extra: str, flags: tuple[str, ...] = (), **kw) -> int:
    return cli_main(["train", "--config", str(TINY), *_args(toy, run, *extra, **kw), *flags])


def _snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file and folder under ``folder``: its mode and content hash."""
    out = {}
    for p in sorted(folder.rglob("*")):
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        out[str(p.relative_to(folder))] = (stat.S_IMODE(p.stat().st_mode), digest)
    return out


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _assert_log_is_one_run(run: Path, epochs: int, resumes: int) -> list[dict]:
    """Every training step exactly once, every epoch row exactly once, ``resumes`` resume rows."""
    rows = _rows(run)
    steps = [r["step"] for r in rows if r["kind"] == "train"]
    assert steps == list(range(epochs * ITERS)), steps
    assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == list(range(1, epochs + 1))
    assert sum(r["kind"] == "resume" for r in rows) == resumes
    return rows


@pytest.fixture(scope="module")
def finished_run(toy, tmp_path_factory):
    run = tmp_path_factory.mktemp("finished") / "run"
    Trainer(_cfg(toy, run, *FAST)).fit()
    return run


def _copy(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst


def test_second_run_into_a_run_folder_is_refused_and_touches_nothing(
    toy, finished_run, tmp_path, capsys
):
    run = _copy(finished_run, tmp_path)
    before = _snapshot(run)
    assert _cli(toy, run, *FAST) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "already holds a training run" in err and "--resume auto" in err
    assert "--overwrite" in err and "run.1" in err
    assert _snapshot(run) == before


def test_overwrite_moves_the_old_run_aside_whole(toy, finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path)
    before = _snapshot(run)
    assert _cli(toy, run, *FAST, "train.epochs=1", flags=("--overwrite",)) == 0
    assert f"the previous run is now {tmp_path / 'run.1'}" in capsys.readouterr().out
    assert _snapshot(tmp_path / "run.1") == before  # the old run, complete and unchanged
    assert sorted(p.name for p in tmp_path.iterdir() if not kept_name(p.name)) == ["run", "run.1"]
    _assert_log_is_one_run(run, epochs=1, resumes=0)  # the new run's log holds no old rows
    assert [p.name for p in C.list_checkpoints(run)] == ["epoch_001"]
    # a second --overwrite keeps both earlier runs
    assert _cli(toy, run, *FAST, "train.epochs=1", flags=("--overwrite",)) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if not kept_name(p.name)) == [
        "run",
        "run.1",
        "run.2",
    ]
    assert _snapshot(tmp_path / "run.1") == before


def test_overwrite_refuses_to_move_an_input_away(toy, finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path)
    inside = run / "train.txt"
    shutil.copy(toy["train"], inside)
    before = _snapshot(run)
    assert _cli(toy, run, *FAST, train_file=inside, flags=("--overwrite",)) == 2
    assert "--overwrite would move data.train_file=" in capsys.readouterr().err
    assert _snapshot(run) == before and not (tmp_path / "run.1").exists()


def _stop_with_nan(cfg, at_call: int) -> None:
    """Train until the loss of the ``at_call``-th iteration is NaN (the run stops there)."""
    trainer = Trainer(cfg)
    calls = {"n": 0}
    base = trainer.loss_fn

    def loss_fn(logits, target):
        calls["n"] += 1
        loss = base(logits, target)
        return loss * float("nan") if calls["n"] == at_call else loss

    trainer.loss_fn = loss_fn
    with pytest.raises(NonFiniteLossError):
        trainer.fit()


@pytest.fixture(scope="module")
def stopped_run(toy, tmp_path_factory):
    """A run stopped by a NaN loss in epoch 2: checkpoint epoch_001, plus log rows after it."""
    run = tmp_path_factory.mktemp("stopped") / "run"
    _stop_with_nan(_cfg(toy, run, *FAST), ITERS + 4)
    assert [p.name for p in C.list_checkpoints(run)] == ["epoch_001"]
    assert max(r["step"] for r in _rows(run) if r["kind"] == "train") == ITERS + 2
    return run


@pytest.mark.parametrize(
    "change, expected",
    [
        ("train.lr=1e-3", "train.lr: 0.002 -> 0.001"),
        ("train.batch_size=2", "train.batch_size: 4 -> 2"),
        ("train.accumulation_steps=2", "train.accumulation_steps: 1 -> 2"),
        ("train.epochs=3", "train.epochs: 2 -> 3"),
        ("aug.flip=0", "aug.flip: 0.5 -> 0.0"),
        ("train.seed=1", "train.seed: 0 -> 1"),
    ],
)
def test_resume_with_a_changed_setting_is_refused_listing_it(
    toy, stopped_run, tmp_path, change, expected, capsys
):
    run = _copy(stopped_run, tmp_path)
    before = _snapshot(run)
    assert _cli(toy, run, *FAST, change, flags=("--resume", "auto")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert "--overwrite" in err
    assert _snapshot(run) == before


def test_resume_with_changed_list_content_of_the_same_length_is_refused(toy, tmp_path):
    train = tmp_path / "train.txt"
    shutil.copy(toy["train"], train)
    run = tmp_path / "run"
    _stop_with_nan(_cfg(toy, run, *FAST, "train.epochs=3", train_file=train), 2 * ITERS + 1)
    lines = train.read_text().splitlines()
    path, label = lines[0].split()
    lines[0] = f"{path} {(int(label) + 1) % 4}"  # one label changed, as many lines as before
    train.write_text("\n".join(lines) + "\n")
    with pytest.raises(RunFolderError, match=r"data\.train_file content: sha256 [0-9a-f]{8} -> "):
        Trainer(_cfg(toy, run, *FAST, "train.epochs=3", train_file=train), resume="auto").fit()
    # the list at another path with the same content is the same run
    moved = tmp_path / "elsewhere.txt"
    shutil.copy(toy["train"], moved)
    Trainer(_cfg(toy, run, *FAST, "train.epochs=3", train_file=moved), resume="auto").fit()
    _assert_log_is_one_run(run, epochs=3, resumes=1)


def test_resume_accepts_changes_that_cannot_change_results(toy, stopped_run, tmp_path):
    run = _copy(stopped_run, tmp_path)
    config_before = (run / "config.yaml").read_bytes()
    neutral = ("output.print_freq=1", "data.workers=1", "output.keep_last=5", "train.threads=2")
    summary = Trainer(_cfg(toy, run, *FAST, *neutral), resume="auto").fit()
    assert len(summary.history) == 2
    rows = _assert_log_is_one_run(run, epochs=2, resumes=1)
    resume = next(r for r in rows if r["kind"] == "resume")
    assert resume["from"].endswith("epoch_001") and resume["step"] == ITERS
    # the rows of the stopped attempt after its checkpoint are gone, the resume row follows
    assert [r["kind"] for r in rows[ITERS : ITERS + 2]] == ["resume", "epoch"]
    assert (run / "config.yaml").read_bytes() == config_before  # the run's start, as written


def test_kill_9_while_a_checkpoint_is_written_then_resume(toy, tmp_path):
    """SIGKILL in the middle of writing checkpoints/epoch_002 (a writer slowed down in the
    subprocess): epoch_001 stays complete, --resume auto finishes the run, and the metrics log
    holds every step once and a resume row."""
    run, marker = tmp_path / "run", tmp_path / "writing"
    script = (
        "import pathlib, sys, time\n"
        "import xclip\n"
        "real = xclip.save_model\n"
        "def slow(model, out, *a, **k):\n"
        "    real(model, out, *a, **k)\n"
        "    if pathlib.Path(out).name.startswith('.xclip-tmp-epoch_002-'):\n"
        "        pathlib.Path(sys.argv[1]).write_text(str(out))\n"
        "        time.sleep(300)\n"
        "    return pathlib.Path(out)\n"
        "xclip.save_model = slow\n"
        "from xclip_app.cli import main\n"
        "sys.exit(main(sys.argv[2:]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    argv = ["train", "--config", str(TINY), *_args(toy, run, *FAST, "train.epochs=3")]
    proc = subprocess.Popen([sys.executable, "-c", script, str(marker), *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), f"the writer never started (exit code {proc.poll()})"
        partial = Path(marker.read_text())
        assert partial.is_dir() and (partial / "model.safetensors").is_file()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert [p.name for p in C.list_checkpoints(run)] == ["epoch_001"]  # no partial epoch_002
    ckpt = run / "checkpoints" / "epoch_001"
    assert C.load_train_state(ckpt)["epoch"] == 1 and xclip.load_model(ckpt) is not None
    assert not (run / "summary.json").exists()

    summary = Trainer(_cfg(toy, run, *FAST, "train.epochs=3"), resume="auto").fit()
    assert [h["epoch"] for h in summary.history] == [1, 2, 3]
    _assert_log_is_one_run(run, epochs=3, resumes=1)
    assert [p.name for p in C.list_checkpoints(run)] == ["epoch_002", "epoch_003"]
    assert not partial.exists()  # the dead writer's temporary folder was cleaned up
    assert not [
        p.name
        for p in (run / "checkpoints").iterdir()
        if p.name.startswith(".") and not kept_name(p.name)
    ]


def test_checkpoint_is_written_before_validation(toy, tmp_path):
    run = tmp_path / "run"
    cfg = _cfg(toy, run, "test.final_eval=false", "output.tensorboard=false")
    trainer = Trainer(cfg)
    real = trainer.evaluate

    def evaluate(loader, desc="eval"):
        if desc == "val 2":
            raise OSError("disk gone while validating")
        return real(loader, desc)

    trainer.evaluate = evaluate
    with pytest.raises(OSError, match="disk gone"):
        trainer.fit()
    ckpt = run / "checkpoints" / "epoch_002"
    assert C.load_train_state(ckpt)["epoch"] == 2  # the epoch's training is kept
    summary = Trainer(cfg, resume="auto").fit()  # repeats only epoch 2's validation
    assert [h["epoch"] for h in summary.history] == [1, 2]
    assert all("top1" in h for h in summary.history)
    _assert_log_is_one_run(run, epochs=2, resumes=1)
    assert (run / "best" / "meta.json").is_file()


def test_epoch_mean_covers_the_whole_epoch_across_a_mid_epoch_resume(toy, tmp_path):
    run = tmp_path / "run"
    extra = (*FAST, "output.save_every_steps=2", "output.keep_last=50")
    _stop_with_nan(_cfg(toy, run, *extra), ITERS + 5)  # after epoch_001_iter_000004
    assert C.find_latest(run).name == "epoch_001_iter_000004"
    Trainer(_cfg(toy, run, *extra), resume="auto").fit()
    rows = _assert_log_is_one_run(run, epochs=2, resumes=1)
    epoch2 = [r["loss"] for r in rows if r["kind"] == "train" and r["epoch"] == 1]
    row = next(r for r in rows if r["kind"] == "epoch" and r["epoch"] == 2)
    assert len(epoch2) == ITERS and row["loss"] == pytest.approx(sum(epoch2) / ITERS, rel=1e-12)


def test_files_follow_the_umask(toy, tmp_path):
    run = tmp_path / "run"
    old = os.umask(0o027)
    try:
        Trainer(_cfg(toy, run, "train.epochs=1", "output.tensorboard=false",
                     "test.final_num_clips=1", "test.final_num_crops=1")).fit()  # fmt: skip
    finally:
        os.umask(old)
    modes = {k: m for k, (m, _) in _snapshot(run).items()}
    assert "best/model.safetensors" in modes and "checkpoints/epoch_001/train_state.pt" in modes
    wrong = {k: oct(m) for k, m in modes.items() if m != (0o750 if (run / k).is_dir() else 0o640)}
    assert not wrong


def test_a_finished_run_is_never_rewritten(toy, finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path)
    before = _snapshot(run)
    assert _cli(toy, run, *FAST, flags=("--resume", "auto")) == 0
    out = capsys.readouterr().out
    assert "already finished; nothing to do and nothing written" in out
    assert "run folder" in out  # its summary again
    assert _snapshot(run) == before
    assert _cli(toy, run, *FAST, flags=("--resume", str(run / "checkpoints" / "epoch_001"))) == 2
    assert "newer checkpoints (epoch_002)" in capsys.readouterr().err
    assert _snapshot(run) == before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_ranks_agree_on_a_refusal(toy, finished_run, tmp_path):
    """Under torchrun rank 0 decides; rank 1 gets the same refusal instead of waiting forever."""
    run = _copy(finished_run, tmp_path)
    before = _snapshot(run)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={_free_port()}", "--master_addr=127.0.0.1", "-m", "xclip_app.cli",
           "train", "--config", str(TINY), "--device", "cpu", *_args(toy, run, *FAST)]  # fmt: skip
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert r.stderr.count("already holds a training run") == 2, r.stderr[-3000:]
    assert "internal error" not in r.stderr
    assert _snapshot(run) == before


def test_a_start_that_fails_writes_nothing(toy, tmp_path, capsys):
    """Issue 19: a run whose setup fails before the first step (here: a batch larger than the
    training set) leaves no run folder that would refuse the corrected command."""
    run = tmp_path / "runs" / "r1"
    assert _cli(toy, run, *FAST, "train.batch_size=1000") == 2
    assert "lower train.batch_size" in capsys.readouterr().err
    assert not run.exists() and not (tmp_path / "runs").exists()
    assert _cli(toy, run, *FAST, "train.epochs=1") == 0  # the corrected command just runs
