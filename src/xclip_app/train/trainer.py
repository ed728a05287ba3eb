"""The training loop: :class:`Trainer` puts a run together (data, model, optimizer, schedule,
checkpoints, logs) and runs it: epochs of training, validation, the final multi-view evaluation.

The original ``main.py`` run flow (reference section 6.2), with the deliberate differences listed in
``docs/training.md``: build the loaders, build/initialise the model, freeze the text tower, AdamW
groups, per-iteration cosine schedule, DDP, resume, compute the class-text features once, then
for each epoch train (mixup/cutmix + label smoothing, soft-target CE over the K class texts),
save, then validate single-view; finally evaluate the last-epoch model with 4x3 views.

Nothing is lost or mixed (docs/training.md, "Runs that survive"): the run folder is checked before
anything is written (:mod:`.run_folder`: a folder holding a run is refused unless ``--resume`` or
``--overwrite`` says what to do, a resume that would change the results is refused, a finished run
is not touched); an epoch's checkpoint is written *before* its validation, with the epoch's
training row as "pending", so a crash in validation costs only the validation (a resume repeats
it); a mid-epoch checkpoint carries the epoch's running sums, so epoch means cover the whole
epoch across a resume.

Determinism: every sample's sampling/augmentation comes from ``(seed, epoch, index)``, the
shuffling from ``(seed, epoch)``, mixup from ``(seed, rank, epoch, iteration)``, and torch's global
RNG (drop path) is saved in checkpoints. A resumed run therefore continues exactly as an
uninterrupted one (on CPU with ``train.deterministic``), also from a mid-epoch checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import xclip
from xclip.checkpoint import NATIVE_WEIGHTS, load_state_dict_strict, read_safetensors
from xclip.data.mixup import CutmixMixupBlending
from xclip.data.soft_targets import (
    check_label_range,
    smoothed_one_hot,
    soft_target_cross_entropy,
)
from xclip.errors import InputError
from xclip.ownership import lock_output
from xclip.precision import autocast, resolve_precision

from . import checkpointing as C
from . import distributed as D
from .classifier import build_classifier, class_tokens
from .config import RunConfig, check_paths, save_config
from .distillation import FeatureDistillation
from .evaluate import EvalResult, evaluate, format_result, write_report
from .loaders import build_eval_loader, build_train_loader
from .logs import RUN_LOGGER, add_run_log_file
from .metrics import MetricsLog
from .optim import build_optimizer, freeze_text
from .preflight import check_before_training
from .run_folder import SUMMARY, RunFolderError, RunPlan, plan_run, run_identity
from .sampler import ResumableSampler
from .schedule import CosineWarmupSchedule
from .step import TrainStep
from .step_window import StepRow, StepWindow
from .summary import TrainSummary, format_duration
from .weight_averaging import WeightAverage

log = logging.getLogger(RUN_LOGGER)

__all__ = ["NonFiniteLossError", "Trainer"]


class NonFiniteLossError(InputError):
    """The loss became NaN/inf; the run stopped and its last good checkpoint was kept.

    An :class:`~xclip.errors.InputError`: the settings (learning rate, precision) do not train
    on this data; the message names what to change (exit code 2 from ``xclip-video``)."""


class Trainer:
    """``Trainer(cfg, resume="auto").fit()``; works with and without ``torchrun``.

    ``resume``: None (a new run: ``output.dir`` must not hold one), ``"auto"`` (continue the run
    in ``output.dir``, or start one) or a checkpoint / run folder to continue from.
    ``overwrite``: start over in a folder that holds a run; the old run is moved to ``RUN.N``
    (:attr:`moved_to`). After :meth:`fit`, :attr:`already_finished` says the run had finished
    before and nothing was done.
    """

    def __init__(
        self,
        cfg: RunConfig,
        resume: str | None = None,
        *,
        overwrite: bool = False,
        info: D.DistInfo | None = None,
        device: str | None = None,
    ) -> None:
        self.cfg = cfg
        self.info = info or D.init(device)
        self.device = self.info.device
        self.run_dir = Path(cfg.output.dir)
        self.resume = resume
        self.overwrite = overwrite
        self.already_finished = False
        self.moved_to: Path | None = None
        self.precision = resolve_precision(cfg.train.precision, self.device)
        if self.precision == "fp16" and self.device.type != "cuda":
            raise InputError(
                "train.precision=fp16 needs a GPU (its GradScaler); use bf16 or fp32 on CPU"
            )
        self.loss_fn = soft_target_cross_entropy  # replaceable (tests inject faults here)
        # steps between reads of the loss back to the host: every step on the CPU (nothing to
        # overlap), the log interval on a GPU (no host synchronisation per step)
        self.sync_every = 1 if self.device.type == "cpu" else max(1, cfg.output.print_freq)
        self._last_good: Path | None = None
        self._clips_before = 0

    # -- setup ------------------------------------------------------------------------------------
    def _setup_runtime(self) -> None:
        t = self.cfg.train
        if t.threads > 0:
            torch.set_num_threads(t.threads)
        if t.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
            if self.device.type == "cuda":
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        D.seed_all(t.seed + self.info.rank)

    def _plan(self) -> RunPlan:
        """Rank 0 decides what to do with the run folder; every rank gets the same decision (or
        the same refusal) before anything is written, so no rank waits for one that stopped."""
        plan, error = None, None
        if self.info.is_main:
            try:
                lock_output(self.run_dir, flag="output.dir")  # one writer per run folder
                plan = plan_run(
                    self.run_dir, self.cfg, self.info.world_size, self.resume, self.overwrite
                )
            except BaseException as e:
                # the user's mistake or environment for the other ranks too; anything else a bug
                user = isinstance(e, (InputError, OSError))
                D.broadcast_object((None, ("user" if user else "bug", str(e))))
                raise
        plan, error = D.broadcast_object((plan, error))
        if error is not None:
            kind, message = error
            if kind == "user":
                raise RunFolderError(message)
            raise RuntimeError(f"rank 0 failed while checking the run folder: {message}")
        return plan

    def setup(self) -> None:
        cfg, info = self.cfg, self.info
        self._setup_runtime()
        check_paths(cfg, ["data.train_file", "data.label_list"])
        if cfg.data.root:
            check_paths(cfg, ["data.root"])
        if cfg.test.eval_every or cfg.test.final_eval:
            check_paths(cfg, ["data.val_file"])
        plan = self._plan()
        if plan.finished:
            self.already_finished = True
            log.info("%s already finished; nothing to do", self.run_dir)
            return
        self.moved_to = plan.moved_to

        # data
        arch = xclip.get_config(cfg.model.arch)
        pre = xclip.PreprocessConfig.for_config(arch)
        self.train_loader = build_train_loader(cfg, info, pre)
        self.train_ds = self.train_loader.dataset
        self.class_names = list(self.train_ds.class_names or [])
        k = len(self.class_names)
        if cfg.data.num_classes is not None and cfg.data.num_classes != k:
            raise InputError(
                f"data.num_classes={cfg.data.num_classes} but data.label_list "
                f"({cfg.data.label_list}) has {k} classes"
            )
        self.num_classes = k
        self.iters_per_epoch = len(self.train_loader)
        if cfg.train.max_steps_per_epoch:
            self.iters_per_epoch = min(self.iters_per_epoch, cfg.train.max_steps_per_epoch)
        if self.iters_per_epoch < 1:
            raise InputError(
                f"{len(self.train_ds)} training videos give no full batch of "
                f"{cfg.train.batch_size} per process on {info.world_size} process(es); lower "
                "train.batch_size"
            )
        self.preprocess = pre
        self.val_loader = None
        if cfg.test.eval_every:
            self.val_loader = build_eval_loader(
                cfg, info, pre, cfg.data.val_file, cfg.data.label_list,
                num_clips=cfg.test.num_clips, num_crops=cfg.test.num_crops,
                view_mode=cfg.test.view_mode,
            )  # fmt: skip
            vk = self.val_loader.dataset.num_classes
            if vk != k:
                raise InputError(
                    f"data.val_file ({cfg.data.val_file}) has labels of {vk} classes but "
                    f"data.label_list has {k}; use the label list of the validation videos"
                )
        check_before_training(cfg, info, self.class_names)  # unreadable val videos, hflip

        # model
        clf = build_classifier(cfg, k)
        if cfg.model.fix_text:
            frozen = freeze_text(clf)
            log.info("text tower and logit_scale frozen (%d tensors)", len(frozen))
        if cfg.train.grad_checkpointing:
            clf.model.set_grad_checkpointing(True)
        clf.to(self.device)
        self.classifier = clf
        # data.templates: a label-text ensemble (the class names as they are when empty)
        self.num_templates = max(1, len(cfg.data.templates))
        self.tokens = class_tokens(self.class_names, cfg.data.templates).to(self.device)
        # the frozen teacher is taken from the starting weights, before a resume loads others
        self.distiller = None
        if cfg.train.distill_weight > 0:
            self.distiller = FeatureDistillation(clf.model, cfg.train.distill_weight)
        t = cfg.train
        self.optimizer = build_optimizer(
            clf, t.lr, t.weight_decay, tuple(t.betas), t.eps, t.new_module_lr_mult,
            t.prompts_lr_mult,
        )  # fmt: skip
        self.schedule = CosineWarmupSchedule(
            self.optimizer,
            t_initial=int(t.epochs * self.iters_per_epoch),
            lr_min=cfg.min_lr,
            warmup_t=int(t.warmup_epochs * self.iters_per_epoch),
            warmup_lr_init=0.0,
            warmup_prefix=t.warmup_prefix,
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.averager = None
        if t.weight_average != "none":
            self.averager = WeightAverage(
                clf, t.weight_average, t.ema_decay,
                start_step=int(t.average_start * self.iters_per_epoch),
            )  # fmt: skip
        n_train = sum(p.numel() for p in clf.parameters() if p.requires_grad)
        n_all = sum(p.numel() for p in clf.parameters())
        log.info(
            "%s: %.1fM parameters, %.1fM trained; %d train videos, %d classes, %d iterations/epoch "
            "x %d epochs, batch %d x %d process(es) x %d accumulation = %d, precision %s, device %s",
            cfg.model.arch, n_all / 1e6, n_train / 1e6, len(self.train_ds), k,
            self.iters_per_epoch, t.epochs, t.batch_size, info.world_size, t.accumulation_steps,
            t.batch_size * info.world_size * t.accumulation_steps, self.precision, self.device,
        )  # fmt: skip

        # the run folder is written only now: a start that fails (a config, a path, the data)
        # leaves nothing that would refuse the corrected command
        if info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if plan.write_config:
                save_config(cfg, self.run_dir / "config.yaml", overwrite=False)
            add_run_log_file(self.run_dir / f"log_rank{info.rank}.txt")
            if plan.moved_to is not None:
                log.warning("--overwrite: the previous run in %s was moved to %s",
                            self.run_dir, plan.moved_to)  # fmt: skip
            self.identity = run_identity(cfg, info.world_size)
        D.barrier()

        # position / resume
        self.start = C.Position(0, 0)
        self.best_top1, self.best_epoch = -1.0, -1
        self.history: list[dict[str, Any]] = []
        self._pending: dict[str, Any] | None = None  # the checkpointed epoch's row, not validated
        self._resume_acc: dict[str, float] | None = None  # running sums of a mid-epoch resume
        ckpt = plan.checkpoint
        if self.resume == "auto" and ckpt is None:
            log.info("--resume auto: no checkpoint in %s, starting from scratch", self.run_dir)
        if ckpt is not None:
            self._load(ckpt)

        # DDP
        self.module = clf
        if info.distributed:
            self.module = torch.nn.parallel.DistributedDataParallel(
                clf,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                broadcast_buffers=False,
                find_unused_parameters=False,
            )
        # Class-text features: computed once per label set while the text tower is frozen; with
        # a trained text tower the tokens go through the forward pass at every step instead.
        self.text_features = (
            clf.text_features(self.tokens, self.num_templates) if cfg.model.fix_text else None
        )
        self.train_step = TrainStep(
            self.module, self.optimizer, precision=self.precision, device=self.device,
            text_features=self.text_features, tokens=self.tokens,
            num_templates=self.num_templates, distiller=self.distiller,
            clip_grad_norm=cfg.train.clip_grad_norm, loss_fn=self.loss_fn, scaler=self.scaler,
        )  # fmt: skip
        step = self.start.epoch * self.iters_per_epoch + self.start.iteration
        self.metrics = MetricsLog(
            self.run_dir, info.is_main, cfg.output.tensorboard, keep_rows=plan.keep_rows,
            purge_step=step if plan.resumed else None,
        )  # fmt: skip
        if plan.resumed:
            self.metrics.write(
                {"kind": "resume", "from": str(ckpt) if ckpt else None, "epoch": self.start.epoch,
                 "iter": self.start.iteration, "step": step, "world_size": info.world_size,
                 "time": time.time()},
            )  # fmt: skip

    def _load(self, ckpt: Path) -> None:
        state = C.load_train_state(ckpt)
        sd = read_safetensors(ckpt / NATIVE_WEIGHTS)
        load_state_dict_strict(self.classifier.model, sd, str(ckpt))
        if self.classifier.head is not None:
            self.classifier.head.load_state_dict(read_safetensors(ckpt / C.HEAD_WEIGHTS))
        if state.get("classes") != self.class_names:
            raise InputError(
                f"{ckpt} was trained on other classes than data.label_list "
                f"({self.cfg.data.label_list}) names; resume with the run's data.label_list"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.averager is not None and state.get("weight_average"):
            self.averager.load_state_dict(state["weight_average"])
        rngs = state.get("rng") or []
        if len(rngs) == self.info.world_size:
            C.restore_rng(rngs[self.info.rank])
        else:
            log.warning("%s was written by %d process(es), this run has %d: RNG states not restored",
                        ckpt, len(rngs), self.info.world_size)  # fmt: skip
        self.start = C.Position(int(state["epoch"]), int(state["iteration"]))
        self.best_top1 = float(state.get("best_top1", -1.0))
        self.best_epoch = int(state.get("best_epoch", -1))
        self.history = list(state.get("history", []))
        self._pending = state.get("pending") or None
        self._resume_acc = state.get("epoch_sums") or None
        self._last_good = ckpt
        log.info(
            "resumed from %s: epoch %d, iteration %d", ckpt, self.start.epoch, self.start.iteration
        )

    # -- checkpoints ------------------------------------------------------------------------------
    def _save(
        self,
        pos: C.Position,
        extra_meta: dict[str, Any] | None = None,
        *,
        pending: dict[str, Any] | None = None,
        epoch_sums: dict[str, float] | None = None,
    ) -> None:
        """Write the checkpoint of ``pos``. ``pending``: the row of the epoch just trained,
        whose validation runs after this save (a resume repeats it); ``epoch_sums``: the running
        sums of a mid-epoch position."""
        rngs = D.all_gather_objects(C.capture_rng())
        if self.info.is_main:
            state = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.schedule.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
                "rng": rngs,
                "epoch": pos.epoch,
                "iteration": pos.iteration,
                "best_top1": self.best_top1,
                "best_epoch": self.best_epoch,
                "classes": self.class_names,
                "history": self.history,
                "world_size": self.info.world_size,
                "pending": pending or {},
                "epoch_sums": epoch_sums or {},
            }
            if self.averager is not None:
                state["weight_average"] = self.averager.state_dict()
            meta = {
                "arch": self.cfg.model.arch,
                "world_size": self.info.world_size,
                **(extra_meta or {}),
                "metrics_rows": self.metrics.rows,
                "run": self.identity,
            }
            path = C.write_checkpoint(
                self.run_dir, self.classifier, pos, state, meta, self.cfg.output.keep_last
            )
            log.info("saved %s", path)
            self._last_good = path
        D.barrier()
        self._last_good = D.broadcast_object(self._last_good)

    # -- one epoch --------------------------------------------------------------------------------
    def train_epoch(self, epoch: int, start_iter: int = 0) -> dict[str, Any]:
        cfg, info = self.cfg, self.info
        accum = cfg.train.accumulation_steps
        n_iters = self.iters_per_epoch
        a = cfg.aug
        sampler: ResumableSampler = self.train_loader.sampler
        sampler.start = start_iter * cfg.train.batch_size
        self.train_loader.set_epoch(epoch)
        self.classifier.train()
        self.optimizer.zero_grad(set_to_none=True)
        step = self.train_step
        step.loss_fn = self.loss_fn  # replaceable after setup (tests inject faults there)
        bar = None
        it = iter(self.train_loader)
        if info.is_main and cfg.output.progress:
            bar = tqdm(
                total=n_iters, initial=start_iter, desc=f"epoch {epoch + 1}/{cfg.train.epochs}",
                dynamic_ncols=True, file=sys.stderr, leave=True,
            )  # fmt: skip
        t_epoch = time.perf_counter()
        # the epoch's running sums; a mid-epoch resume continues those its checkpoint saved
        acc = {"loss_sum": 0.0, "iters": 0, "clips": 0, "seconds": 0.0, "last_loss": math.nan}
        if start_iter and self._resume_acc:
            acc.update(self._resume_acc)
        self._resume_acc = None
        window = StepWindow(self.sync_every)
        self._clips_before = acc["clips"]  # for the speed of this process's run of the epoch
        try:
            for i in range(start_iter, n_iters):
                clips, labels, _ = next(it)
                clips = clips[:, 0].to(self.device, non_blocking=True)  # [B, T, 3, H, W]
                check_label_range(labels, self.num_classes)  # on the host: no device sync
                labels = labels.to(self.device, non_blocking=True)
                if a.mixup > 0:
                    # one generator per (seed, rank, epoch, iteration): resumable at any step
                    blend = CutmixMixupBlending(
                        self.num_classes, smoothing=a.label_smooth, mixup_alpha=a.mixup,
                        cutmix_alpha=a.cutmix, switch_prob=a.mixup_switch_prob,
                        seed=np.random.default_rng([cfg.train.seed, info.rank, epoch, i]),
                    )  # fmt: skip
                    clips, target = blend(clips, labels)
                else:
                    target = smoothed_one_hot(labels, self.num_classes, a.label_smooth)
                step_now = (i + 1) % accum == 0
                sync = step_now or not info.distributed
                ctx = contextlib.nullcontext() if sync else self.module.no_sync()
                with ctx:
                    loss = step.loss(clips, target.float())
                    step.backward(loss, accum)
                # the loss all ranks agree on: the mean over the global batch; kept on the device
                # and read back once per window (no host synchronisation per step on a GPU)
                stat = torch.stack([loss.detach().double(), loss.new_ones((), dtype=torch.float64)])
                if info.distributed:
                    stat = D.all_reduce_sum(stat if info.backend == "nccl" else stat.cpu())
                lr_used = self.optimizer.param_groups[0]["lr"]
                window.add(i, stat, lr_used, clips.shape[0] * info.world_size)
                every = cfg.output.save_every_steps
                saves = bool(every and step_now and (i + 1) % every == 0 and i + 1 < n_iters)
                if window.full() or saves or i == n_iters - 1:
                    # before the optimizer step: a non-finite loss never reaches a checkpoint
                    for row in window.flush():
                        self._record_step(row, epoch, start_iter, acc, bar, t_epoch)
                if step_now:
                    step.update()
                    if self.averager is not None:
                        self.averager.update(epoch * n_iters + i)
                    self.schedule.step_update(epoch * n_iters + i)
                if bar is not None:
                    bar.update(1)
                if saves:
                    sums = {**acc, "seconds": acc["seconds"] + time.perf_counter() - t_epoch}
                    self._save(C.Position(epoch, i + 1), epoch_sums=sums)
                    window.restart_clock()
        finally:
            if bar is not None:
                bar.close()
        seconds = acc["seconds"] + time.perf_counter() - t_epoch
        return {
            "epoch": epoch + 1,
            "loss": acc["loss_sum"] / max(acc["iters"], 1),
            "last_loss": acc["last_loss"],
            "lr": self.optimizer.param_groups[0]["lr"],
            "clips_per_s": acc["clips"] / max(seconds, 1e-9),
            "seconds": seconds,
        }

    def _record_step(
        self, row: StepRow, epoch: int, start_iter: int, acc: dict[str, Any], bar: Any, t0: float
    ) -> None:
        """A step read back from the device: check its loss, add it to the epoch's sums, the
        metrics log, the progress bar and the log."""
        cfg, n_iters, i = self.cfg, self.iters_per_epoch, row.iteration
        if not math.isfinite(row.loss):
            last = self._last_good
            raise NonFiniteLossError(
                f"loss is {row.loss} at epoch {epoch + 1} iteration {i} (global iteration "
                f"{epoch * n_iters + i}); training stopped. Last good checkpoint: "
                f"{last if last else 'none (no checkpoint was written yet)'}. Lower "
                "train.lr, try train.precision=fp32 or set train.clip_grad_norm, and "
                "start over with --overwrite or another --output (a resume repeats the "
                "same steps exactly, so it would meet the same loss)"
            )
        acc["loss_sum"] += row.loss
        acc["iters"] += 1
        acc["clips"] += row.clips
        acc["last_loss"] = row.loss
        gstep = epoch * n_iters + i
        self.metrics.write(
            {"kind": "train", "epoch": epoch, "iter": i, "step": gstep, "loss": row.loss,
             "lr": row.lr, "clips_per_s": row.clips_per_s, "time": time.time()},
            step=gstep,
        )  # fmt: skip
        elapsed = time.perf_counter() - t0
        # the speed shown while the epoch runs: this process's run of it
        speed = (acc["clips"] - self._clips_before) / max(elapsed, 1e-9)
        if bar is not None:
            bar.set_postfix(
                loss=f"{row.loss:.4f}", lr=f"{row.lr:.2e}", clips_s=f"{speed:.1f}"
            )  # fmt: skip
        elif self.info.is_main and (i % cfg.output.print_freq == 0 or i == n_iters - 1):
            eta = elapsed / (i - start_iter + 1) * (n_iters - i - 1)
            log.info(
                "Train: [%d/%d][%d/%d] eta %s lr %.3e loss %.4f clips/s %.1f",
                epoch + 1, cfg.train.epochs, i, n_iters, format_duration(eta), row.lr,
                row.loss, speed,
            )  # fmt: skip

    # -- evaluation -------------------------------------------------------------------------------
    def evaluate(self, loader, desc: str = "eval") -> EvalResult:
        return evaluate(
            self.classifier,
            loader,
            self.num_classes,
            text_features=self.classifier.text_features(self.tokens, self.num_templates),
            device=self.device,
            autocast=autocast(self.precision, self.device),
            progress=self.info.is_main and self.cfg.output.progress,
            desc=desc,
        )

    # -- the run ----------------------------------------------------------------------------------
    def _validates(self, epoch: int) -> bool:
        every = self.cfg.test.eval_every
        return self.val_loader is not None and (
            (epoch + 1) % every == 0 or epoch + 1 == self.cfg.train.epochs
        )

    def _finish_epoch(self, epoch: int, row: dict[str, Any]) -> None:
        """Validate the epoch just trained (and checkpointed) if it is due, keep ``best/``, add
        the epoch's row to the history and the metrics log."""
        row = dict(row)
        if self._validates(epoch):
            res = self.evaluate(self.val_loader, desc=f"val {epoch + 1}")
            row.update(top1=res.top1, top5=res.top5, mean_class_acc=res.mean_class_acc)
            log.info("epoch %d: %s", epoch + 1, format_result(res))
            if res.top1 > self.best_top1:
                self.best_top1, self.best_epoch = res.top1, epoch + 1
                if self.info.is_main:
                    C.write_weights(
                        self.classifier, self.run_dir / "best",
                        {"epoch": epoch + 1, "top1": res.top1, "top5": res.top5, "views": res.views},
                    )  # fmt: skip
            log.info("max accuracy: %.2f%% (epoch %d)", self.best_top1, self.best_epoch)
        self.history.append(row)
        self.metrics.write({"kind": "epoch", **row}, step=(epoch + 1) * self.iters_per_epoch)

    def fit(self) -> TrainSummary:
        t_run = time.perf_counter()
        self.setup()
        if self.already_finished:
            return TrainSummary.read_json(self.run_dir / SUMMARY)
        cfg = self.cfg
        epochs = cfg.train.epochs
        try:
            if self._pending:  # resumed after an epoch whose validation had not finished
                self._finish_epoch(self.start.epoch - 1, self._pending)
                self._pending = None
            for epoch in range(self.start.epoch, epochs):
                start_iter = self.start.iteration if epoch == self.start.epoch else 0
                row = self.train_epoch(epoch, start_iter)
                last = epoch + 1 == epochs
                if last and self.averager is not None and self.averager.apply_to():
                    log.info("final weights: the %s of %d weight states (train.weight_average)",
                             "EMA" if self.averager.mode == "ema" else "uniform average",
                             self.averager.count)  # fmt: skip
                # an epoch that is validated is checkpointed first: a crash (or an unreadable
                # video) in validation never costs the epoch's training
                if self._validates(epoch) or (epoch + 1) % cfg.output.save_freq == 0 or last:
                    self._save(C.Position(epoch + 1, 0), {"loss": row["loss"]}, pending=row)
                self._finish_epoch(epoch, row)
            final = None
            if cfg.test.final_eval:
                final = self.final_evaluation()
        finally:
            self.metrics.close()
        summary = TrainSummary(
            run_dir=self.run_dir,
            epochs=epochs,
            steps=epochs * self.iters_per_epoch,
            final_loss=self.history[-1]["loss"] if self.history else float("nan"),
            best_top1=self.best_top1,
            best_epoch=self.best_epoch,
            history=self.history,
            final_eval=final,
            last_checkpoint=self._last_good,
            seconds=time.perf_counter() - t_run,
        )
        if self.info.is_main:
            # written last: its presence marks the run finished (a later command leaves it be)
            summary.write_json(self.run_dir / SUMMARY, overwrite=False)
        return summary

    def final_evaluation(self) -> dict[str, Any]:
        """The paper's final step: the last-epoch model with ``test.final_num_clips`` x
        ``final_num_crops`` views (4x3), reported and written to ``RUN/final_eval/``."""
        t = self.cfg.test
        loader = build_eval_loader(
            self.cfg, self.info, self.preprocess, self.cfg.data.val_file, self.cfg.data.label_list,
            num_clips=t.final_num_clips, num_crops=t.final_num_crops, view_mode=t.final_view_mode,
        )  # fmt: skip
        res = self.evaluate(loader, desc=f"final {t.final_num_clips}x{t.final_num_crops}")
        log.info("final (last epoch): %s", format_result(res))
        if self.info.is_main:
            paths = [e.path for e in loader.dataset.entries]
            write_report(res, self.run_dir / "final_eval", self.class_names, paths)
            self.metrics.write({"kind": "final_eval", **res.summary()})
        return res.summary()
