"""The demo benchmark, stage by stage, with caching.

Stages (each one what a user runs on real data; see ``docs/demo.md``):

1. ``data``: write the procedural dataset (mp4 files, lists, labels CSVs).
2. ``clip``: pretrain the tiny image CLIP on captioned stills (stand-in for CLIP-400M); written
   in the OpenAI CLIP key layout.
3. ``train/*``: ``xclip-video train`` with the recipes of ``configs/demo/`` (the main X-CLIP run
   and the ablations, several seeds), each starting from the stage-2 CLIP checkpoint through
   ``model.clip_weights``; every trained model is then evaluated by the engine's ``evaluate``.
4. ``zeroshot/*``: the zero-shot protocol (``run_zeroshot``) on the held-out classes, with and
   without video-specific prompts; ``fewshot``: ``xclip-video fewshot`` with K = 2, 4.

A stage is skipped when ``OUT/stages/<stage>.json`` holds the same key: a hash of everything the
stage depends on (see :mod:`~xclip_app.demo.stage_cache`). ``--fresh`` deletes the cached results
first. The report (:mod:`~xclip_app.demo.report`) is written from the numbers collected here.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

import xclip
from xclip.data import VideoDataset, build_dataloader
from xclip.data.annotations import read_labels_csv
from xclip.ownership import clear, mark_dir, seal_dir
from xclip_app import cli
from xclip_app.recipe_files import RECIPES_ROOT
from xclip_app.train import distributed as D
from xclip_app.train.classifier import load_classifier
from xclip_app.train.config import load_config
from xclip_app.train.evaluate import EvalResult, evaluate
from xclip_app.train.protocols import run_zeroshot

from . import arch as demo_arch
from .generate import DataSpec, class_table, generate_dataset
from .metrics import pair_metrics
from .moments import run_moments_study
from .pretrain import PretrainSpec, pretrain_clip
from .report import write_report
from .stage_cache import StageCache
from .study import run_study
from .variants import VARIANTS, run_name, variant_of

__all__ = ["PLANS", "DemoResult", "Plan", "recipes_dir", "run_demo"]


@dataclass(frozen=True)
class Plan:
    """Sizes and budgets of one configuration of the benchmark."""

    name: str
    data: DataSpec
    pretrain: PretrainSpec
    main: tuple[str, ...] = ()  # overrides of the main X-CLIP run (the longer budget)
    ablation: tuple[str, ...] = ()  # overrides of every ablation run (one shorter budget)
    seeds: tuple[int, ...] = (0, 1, 2)  # ablation seeds; the main run uses the first
    fewshot: tuple[str, ...] = ()  # overrides of the few-shot runs
    shots: tuple[int, ...] = (2, 4)
    final_views: tuple[int, int] = (4, 3)  # the main run's multi-view test (paper: 4x3)
    ablations: tuple[str, ...] = ("clip_mean", "cct", "mit", "xclip")
    linear: bool = True
    # --study paired: its seeds (the ablation's seeds first: their runs are reused) and the test
    # videos per held-out class it measures zero-shot on (the dataset has data.test_per_class)
    study_seeds: tuple[int, ...] = (0, 1, 2)
    study_test_per_class: int = 8


PLANS: dict[str, Plan] = {
    "full": Plan(
        name="full",
        data=DataSpec(),
        pretrain=PretrainSpec(),
        main=("train.epochs=20", "train.warmup_epochs=1", "train.batch_size=8"),
        # batch 4: at 4 epochs, +MIT reached 53.8 % with batch 4 and 39.2 % with batch 8 (seed 0)
        # in the same CPU time
        ablation=("train.epochs=4", "train.warmup_epochs=0.5", "train.batch_size=4"),
        # chosen from a power estimate on the measured per-seed differences (docs/demo.md)
        study_seeds=tuple(range(10)),
        study_test_per_class=40,
    ),
    # CI: the same pipeline on less data, fewer steps, one seed, two ablation rows.
    "quick": Plan(
        name="quick",
        data=DataSpec(train_per_class=6, val_per_class=2, pool_per_class=2, test_per_class=3),
        pretrain=PretrainSpec(images=4000, steps=120),
        main=("train.epochs=6", "train.warmup_epochs=1", "train.batch_size=8"),
        ablation=("train.epochs=2", "train.warmup_epochs=0.5", "train.batch_size=8"),
        seeds=(0,),
        fewshot=("train.epochs=8", "train.warmup_epochs=1"),
        shots=(2,),
        final_views=(2, 3),
        ablations=("clip_mean", "xclip"),
        linear=False,
        study_seeds=(0, 1),
        study_test_per_class=4,
    ),
}


def recipes_dir() -> Path:
    """The demo's recipes, shipped inside the package (``configs/demo`` of a clone)."""
    return RECIPES_ROOT / "demo"


class _EngineLogFilter(logging.Filter):
    """Keeps the engine's per-epoch validation lines and warnings; drops the rest (the demo
    prints its own progress; every run folder keeps the full log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return "starts from random weights" not in record.getMessage()
        msg = str(record.msg)
        return msg.startswith("epoch %d") or msg.startswith("final")


@contextlib.contextmanager
def _quiet_engine(verbose: bool) -> Iterator[None]:
    loggers = [logging.getLogger(n) for n in ("xclip_app.train", "xclip_app.train.protocols")]
    f = _EngineLogFilter()
    if not verbose:
        for lg in loggers:
            lg.addFilter(f)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeFilter(f)


def _eval_checkpoint(checkpoint: str, val_file: Path, labels: Path, root: Path, workers: int,
                     views: tuple[int, int] = (1, 1)) -> tuple[EvalResult, list[str]]:  # fmt: skip
    """The engine's ``evaluate`` over a list with a trained checkpoint (single view by default:
    the segment centres, the centre crop), as ``xclip-video eval`` does."""
    clf = load_classifier(checkpoint)
    names = read_labels_csv(labels)
    ds = VideoDataset(str(val_file), str(root), str(labels), preprocess=clf.model.preprocess,
                      mode="test", num_clips=views[0], num_crops=views[1], view_mode="uniform",
                      seed=0)  # fmt: skip
    loader = build_dataloader(
        ds, batch_size=32, workers=workers, train=False, persistent_workers=False
    )
    text = clf.text_features(xclip.tokenize(names))
    with torch.inference_mode():
        res = evaluate(clf, loader, len(names), text_features=text)
    return res, names


# --- the run ----------------------------------------------------------------------------------


@dataclass
class DemoResult:
    """What :func:`run_demo` returns: the output folder, every number of the report, the time."""

    out: Path
    results: dict = field(default_factory=dict)
    seconds: float = 0.0


def run_demo(
    out: str | Path = "runs/demo",
    plan: Plan | str = "full",
    *,
    fresh: bool = False,
    verbose: bool = False,
    log: Callable[[str], None] = print,
    study: str | None = None,
    study_seeds: tuple[int, ...] | None = None,
) -> DemoResult:
    """Run every stage (reusing cached ones), write the report; returns the collected numbers.
    The demo architecture is registered for the duration of the run only. ``study="paired"``
    adds the paired study (:mod:`~xclip_app.demo.study`) after the main stages, under
    ``results["study"]``, over ``study_seeds`` (default: the plan's ``study_seeds``); the main
    stages and their numbers are the same with or without it."""
    if study not in (None, "paired"):
        raise ValueError(f"study must be None or 'paired', got {study!r}")
    with demo_arch.registered():
        return _run_demo(out, plan, fresh=fresh, verbose=verbose, log=log, study=study,
                         study_seeds=study_seeds)  # fmt: skip


def _run_demo(
    out: str | Path,
    plan: Plan | str,
    *,
    fresh: bool,
    verbose: bool,
    log: Callable[[str], None],
    study: str | None = None,
    study_seeds: tuple[int, ...] | None = None,
) -> DemoResult:
    plan = PLANS[plan] if isinstance(plan, str) else plan
    out = Path(out)
    t_start = time.perf_counter()
    if fresh and out.exists():
        aside = clear(out, "demo")
        log(
            f"--fresh: removed {out}"
            + (
                f" (moved to {aside}: not all of it is provably xclip's, delete it yourself)"
                if aside
                else ""
            )
        )
    out.mkdir(parents=True, exist_ok=True)
    mark_dir(out, "demo")
    cache = StageCache(out, log)
    recipes = recipes_dir()
    recipe_text = {p.name: p.read_text(encoding="utf-8") for p in sorted(recipes.glob("*.yaml"))}
    data_dir, clip_file = out / "data", out / "clip" / "clip.safetensors"
    arch = demo_arch.DEMO_ARCH
    arch_cfg = demo_arch.DEMO_CONFIG.to_dict()
    torch_threads = torch.get_num_threads()
    results: dict[str, Any] = {"plan": _plan_dict(plan), "arch": {"name": arch, **arch_cfg}}
    step = {"i": 0}
    n_steps = 6 if study else 5

    def header(title: str) -> None:
        step["i"] += 1
        el = time.perf_counter() - t_start
        log(f"\n[{step['i']}/{n_steps}] {title}   (t={el:.0f}s)")

    # 1. data ---------------------------------------------------------------------------------
    header(f"procedural videos -> {data_dir}")

    def make_data() -> dict:
        clear(data_dir, "demo-stage")
        last = {"t": 0.0}

        def progress(k: int, n: int) -> None:
            if time.perf_counter() - last["t"] > 5 or k == n:
                last["t"] = time.perf_counter()
                log(f"  {2 * k}/{2 * n} clips written")

        made = generate_dataset(data_dir, plan.data, workers=2, progress=progress)
        seal_dir(data_dir, "demo-stage")  # provably ours: a redo may delete it
        return made

    meta = cache.run("data", asdict(plan.data), make_data)
    table = class_table()
    log(f"  {len(meta['train_classes'])} training classes ({meta['counts']['train']} train / "
        f"{meta['counts']['val']} val videos), {len(meta['heldout_classes'])} held-out classes "
        f"({meta['counts']['pool']} few-shot pool / {meta['counts']['test']} test videos)")  # fmt: skip
    results["data"] = {
        k: meta[k] for k in ("spec", "counts", "train_classes", "heldout_classes", "pairs")
    }

    # 2. image CLIP -----------------------------------------------------------------------------
    header("stage 1: language-image pretraining of a tiny CLIP on captioned stills")
    clip_key = [cache.keys["data"], asdict(plan.pretrain), arch_cfg]
    clip_res = cache.run(
        "clip", clip_key, lambda: pretrain_clip(arch, clip_file, plan.pretrain, log=log)
    )
    acc = clip_res["zero_shot_image_accuracy"]
    log(f"  CLIP checkpoint {clip_file} ({clip_res['num_keys']} tensors, OpenAI layout); zero-shot "
        f"on fresh stills: colour {acc['colour']:.0f}%, shape {acc['shape']:.0f}%, position {acc['pos']:.0f}%, "
        f"motion sign {acc['motion']:.0f}%")  # fmt: skip
    results["clip"] = clip_res

    # 3. video training -------------------------------------------------------------------------
    header(
        "stage 2: X-CLIP from the CLIP checkpoint, fully supervised + ablations (xclip-video train)"
    )
    common = [
        f"data.root={data_dir / 'videos'}",
        f"data.train_file={data_dir / 'train.txt'}",
        f"data.val_file={data_dir / 'val.txt'}",
        f"data.label_list={data_dir / 'labels.csv'}",
        f"model.clip_weights={clip_file}",
        "output.progress=false",
    ]
    runs: dict[str, dict] = {}
    trained: dict[str, tuple[str, str]] = {}  # [recipe, overrides] -> (stage key, checkpoint)
    # (run name, variant, seed, is_main)
    jobs = [("main", "xclip", plan.seeds[0], True)]
    jobs += [(run_name(v, seed), v, seed, False) for seed in plan.seeds for v in plan.ablations]
    if plan.linear:
        jobs.append((run_name("linear", plan.seeds[0]), "linear", plan.seeds[0], False))
    train_names = meta["train_classes"]
    for k, (run, variant, seed, is_main) in enumerate(jobs, 1):
        recipe, label = VARIANTS[variant]
        name = f"train/{run}"
        run_dir = out / "runs" / run
        overrides = [*common, f"train.seed={seed}"]
        if is_main:
            c, v3 = plan.final_views
            overrides += [*plan.main, "test.eval_every=1", "test.final_eval=true",
                          f"test.final_num_clips={c}", f"test.final_num_crops={v3}"]  # fmt: skip
        else:
            overrides += [*plan.ablation, "test.eval_every=0", "test.final_eval=false"]
        key = [cache.keys["clip"], recipe_text, recipe, overrides]
        what = "main run" if is_main else f"ablation, seed {seed}"
        log(f"  ({k}/{len(jobs)}) {label} [{what}]")

        def train_and_eval(recipe=recipe, run_dir=run_dir, overrides=overrides) -> dict:
            clear(run_dir, "demo-stage")
            run_dir.mkdir(parents=True)
            argv = ["train", "--config", str(recipes / recipe), *overrides, f"output.dir={run_dir}"]
            t0 = time.perf_counter()
            buf = io.StringIO()
            with _quiet_engine(verbose), contextlib.redirect_stdout(buf):
                rc = cli.main(argv)
            (run_dir / "stdout.txt").write_text(buf.getvalue(), encoding="utf-8")
            seal_dir(run_dir, "demo-stage")  # provably ours: a redo may delete it
            if rc != 0:
                raise RuntimeError(f"xclip-video {' '.join(argv)} failed with exit code {rc}")
            train_seconds = time.perf_counter() - t0
            summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
            ckpt = summary["last_checkpoint"]
            res, names = _eval_checkpoint(ckpt, data_dir / "val.txt", data_dir / "labels.csv",
                                          data_dir / "videos", workers=1)  # fmt: skip
            curve = [
                json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
            ]
            return {
                "argv": ["xclip-video", *argv],
                "variant": recipe.removesuffix(".yaml"),
                "checkpoint": ckpt,
                "train_seconds": round(train_seconds, 2),
                "history": summary["history"],
                "final_eval": summary.get("final_eval"),
                "curve": [
                    {k: r[k] for k in ("step", "loss", "lr")}
                    for r in curve
                    if r.get("kind") == "train"
                ],
                "top1": res.top1,
                "top5": res.top5,
                "mean_class_acc": res.mean_class_acc,
                "confusion": res.confusion.tolist(),
                **pair_metrics(res.probs, res.labels, names, table),
            }

        r = cache.run(name, key, train_and_eval)
        r["seed"] = seed
        trained[json.dumps([recipe, overrides])] = (cache.keys[name], r["checkpoint"])
        extra = ""
        if r.get("final_eval"):
            fe = r["final_eval"]
            extra = f", {fe['views']} views {fe['top1']:.1f}%"
        log(f"      top-1 {r['top1']:.1f}% (1 view{extra}), time-reversal pairs {r['pair_accuracy']:.1f}%"
            f"  [{r['train_seconds']:.0f}s]")  # fmt: skip
        runs[run] = r
    results["runs"] = runs
    results["train_classes"] = train_names

    # 4. zero-shot and few-shot ----------------------------------------------------------------
    header("stage 3: zero-shot (xclip-video zeroshot protocol) and few-shot (xclip-video fewshot)")
    held = data_dir / "heldout"
    zs: dict[str, dict] = {}
    zs_jobs = ["main"] + [run_name(v, seed) for v in ("xclip", "mit") if v in plan.ablations
                          for seed in plan.seeds]  # fmt: skip
    for run in zs_jobs:
        src = runs[run]
        name = f"zeroshot/{run}"
        variant = "xclip" if run == "main" else variant_of(run)
        seed = src["seed"]

        def zeroshot(src: dict = src, run: str = run) -> dict:
            cfg = load_config(recipes / "zeroshot.yaml", [
                f"data.root={data_dir / 'videos'}",
                f"protocol.eval_sets.0.val_file={held / 'test.txt'}",
                f"protocol.eval_sets.0.label_list={held / 'labels.csv'}",
                "output.progress=false", "data.workers=1",
                f"output.dir={out / 'runs' / 'zeroshot' / run}",
            ])  # fmt: skip
            with _quiet_engine(verbose):
                rows, res = run_zeroshot(cfg, src["checkpoint"], D.init("cpu"),
                                         out_dir=Path(cfg.output.dir))  # fmt: skip
            r0 = res[0]
            names = read_labels_csv(held / "labels.csv")
            return {"top1": r0.top1, "top5": r0.top5, "num_samples": r0.num_samples,
                    "num_classes": len(names), "confusion": r0.confusion.tolist(),
                    **pair_metrics(r0.probs, r0.labels, names, table)}  # fmt: skip

        z = cache.run(name, [cache.keys[f"train/{run}"], recipe_text["zeroshot.yaml"]], zeroshot)
        what = "main run" if run == "main" else f"ablation seed {seed}"
        log(f"  zero-shot, {VARIANTS[variant][1]} [{what}]: top-1 {z['top1']:.1f}% "
            f"(chance {100 / z['num_classes']:.0f}%), reversal pairs {z['pair_accuracy']:.1f}%")  # fmt: skip
        zs[run] = z
    results["zeroshot"] = zs

    few_dir = out / "runs" / "fewshot"
    shots = ",".join(str(k) for k in plan.shots)
    few_argv = [
        "fewshot", "--config", str(recipes / "fewshot.yaml"), "--shots", shots, "--seeds",
        str(plan.seeds[0]),
        f"data.root={data_dir / 'videos'}",
        f"data.val_file={held / 'test.txt'}",
        f"data.label_list={held / 'labels.csv'}",
        f"protocol.train_file={held / 'train_pool.txt'}",
        f"model.clip_weights={clip_file}",
        "output.progress=false",
        f"output.dir={few_dir}",
        *plan.fewshot,
    ]  # fmt: skip

    def fewshot() -> dict:
        clear(few_dir, "demo-stage")
        buf = io.StringIO()
        with _quiet_engine(verbose), contextlib.redirect_stdout(buf):
            rc = cli.main(few_argv)
        few_dir.mkdir(parents=True, exist_ok=True)
        (few_dir / "stdout.txt").write_text(buf.getvalue(), encoding="utf-8")
        seal_dir(few_dir, "demo-stage")  # provably ours: a redo may delete it
        if rc != 0:
            raise RuntimeError(f"xclip-video {' '.join(few_argv)} failed with exit code {rc}")
        rows = json.loads((few_dir / "fewshot_results.json").read_text(encoding="utf-8"))
        return {"argv": ["xclip-video", *few_argv], "results": rows}

    log(f"  few-shot K = {shots} from the CLIP checkpoint")
    few = cache.run("fewshot", [cache.keys["clip"], recipe_text, few_argv], fewshot)
    for row in few["results"]:
        log(f"  few-shot K={row['k']}: top-1 {row['top1']:.1f}% on {len(meta['heldout_classes'])} "
            f"held-out classes (chance {100 / len(meta['heldout_classes']):.0f}%)")  # fmt: skip
    results["fewshot"] = few

    # 5. moments: segments of long videos from their class names (xclip_app.demo.moments) -------
    header("moments: segments of long videos found from their class names (embed --window)")
    results["moments"] = run_moments_study(
        out=out, data_dir=data_dir, checkpoint=runs["main"]["checkpoint"], cache=cache,
        train_key=cache.keys["train/main"], fps=plan.data.fps,
        clip_seconds=plan.data.num_frames / plan.data.fps, log=log,
    )  # fmt: skip

    # 6. the paired study (--study paired) ---------------------------------------------------
    if study == "paired":
        seeds = tuple(plan.study_seeds if study_seeds is None else study_seeds)
        header(f"paired study: the ablation and retention options over {len(seeds)} seeds")
        t_study = time.perf_counter()
        results["study"] = run_study(
            out=out, arch=arch, data_dir=data_dir, data_spec=plan.data, clip_file=clip_file,
            recipes=recipes, recipe_text=recipe_text, cache=cache, common=common,
            budget=plan.ablation, seeds=seeds, test_per_class=plan.study_test_per_class,
            trained=trained, quiet=lambda: _quiet_engine(verbose), log=log,
        )  # fmt: skip
        results["study"]["seconds"] = round(time.perf_counter() - t_study, 1)
        # the study's own compute (its stages when computed; the reused ablation runs are not)
        results["study"]["stage_seconds"] = round(
            sum(t["seconds"] for k, t in cache.timings.items() if k.startswith("study/")), 1
        )
    torch.set_num_threads(torch_threads)

    # report ----------------------------------------------------------------------------------
    results["timings"] = cache.timings
    results["seconds"] = round(time.perf_counter() - t_start, 1)
    report = write_report(out / "report", results)
    log(f"\nreport: {report}  (total {results['seconds']:.0f}s)")
    seal_dir(out, "demo")  # a finished demo is provably xclip's whole: --fresh may delete it
    return DemoResult(out=out, results=results, seconds=results["seconds"])


def _plan_dict(plan: Plan) -> dict:
    d = asdict(plan)
    return json.loads(json.dumps(d, default=str))
