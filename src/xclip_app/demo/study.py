"""The demo's paired study (``xclip-video demo --study paired``): the ablation's questions (does
cross-frame communication help, do the prompts?) and the retention questions (does each "beyond
X-CLIP" option of docs/training.md keep zero-shot accuracy better than plain X-CLIP?) answered
with paired differences over many seeds.

Every option is one ``xclip-video train`` run per seed on the seen classes with the ablation
budget of the plan; all options run on the *same* seeds, so within a seed they share the data
order, the augmentations, the evaluation views and (where the architectures share modules) the
initialisation. Each run is then measured single view on the seen classes' validation videos
(the ablation's measure) and zero-shot on a larger test set of the held-out classes
(:func:`~xclip_app.demo.generate.generate_heldout_test`: the dataset's held-out test clips plus
more from the same generator, so the main demo's data and numbers stay as they are). Runs the
main stages already trained with the same recipe and overrides (the ablation's seeds) are
measured, not trained again. The comparisons (:data:`COMPARISONS`) are paired differences with
t intervals (:mod:`xclip_app.train.paired`); the report's verdicts read from them.
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import xclip
from xclip.interpolation import interpolate_models, source_model
from xclip.ownership import clear, seal_dir
from xclip_app import cli
from xclip_app.train.alpha_search import evaluate_model
from xclip_app.train.paired import paired_difference

from .generate import DataSpec, generate_heldout_test

__all__ = [
    "COMPARISONS",
    "EFFECT",
    "ENSEMBLE",
    "INTERP_ALPHA",
    "LABELS",
    "METRIC_NAMES",
    "OPTIONS",
    "VERDICTS",
    "comparison",
    "find",
    "paired_table",
    "report_lines",
    "run_study",
]

# label-text ensemble of the study: the class name alone, and two sentences around it
ENSEMBLE = ("{}", "a video of {}", "{} in a clip")
# the interpolation weight of the fine-tuned model; fixed in advance: the demo's held-out classes
# are its test set, so choosing alpha on them would report a tuned number
INTERP_ALPHA = 0.5
# the effect size (points of top-1) the study's power is stated for
EFFECT = 5.0

# name: (recipe, extra overrides, templates, label); "interp" is computed from the "xclip" runs
OPTIONS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], str]] = {
    "clip_mean": ("clip_mean.yaml", (), (), "CLIP-Mean"),
    "cct": ("cct.yaml", (), (), "+ cross-frame communication"),
    "mit": ("mit.yaml", (), (), "+ MIT (X-CLIP without prompts)"),
    "xclip": ("xclip.yaml", (), (), "X-CLIP (plain)"),
    "vificlip": ("clip_mean.yaml", ("model.fix_text=false",), (),
                 "ViFi-CLIP: frame averaging, both towers trained"),
    "ema": ("xclip.yaml", ("train.weight_average=ema", "train.ema_decay=0.99"), (),
            "X-CLIP + EMA of the weights (decay 0.99)"),
    "distill": ("xclip.yaml", ("train.distill_weight=1.0",), (),
                "X-CLIP + distillation from the frozen CLIP (weight 1)"),
    "ensemble": ("xclip.yaml", (), ENSEMBLE, f"X-CLIP + label-text ensemble ({len(ENSEMBLE)})"),
}  # fmt: skip
LABELS = {
    **{k: v[3] for k, v in OPTIONS.items()},
    "clip": "tiny CLIP before video fine-tuning",
    "interp": f"X-CLIP interpolated with the CLIP (alpha {INTERP_ALPHA})",
}

# (group, option, baseline, metric): "seen_top1" is top-1 on the seen classes' validation
# videos (the ablation's measure), "top1" zero-shot top-1 on the held-out classes
COMPARISONS: tuple[tuple[str, str, str, str], ...] = (
    ("ablation", "cct", "clip_mean", "seen_top1"),
    ("ablation", "mit", "cct", "seen_top1"),
    ("ablation", "xclip", "mit", "seen_top1"),
    ("ablation", "xclip", "mit", "top1"),
    *(("retention", o, "xclip", "top1")
      for o in ("vificlip", "ema", "distill", "ensemble", "interp")),
)  # fmt: skip
# the report's verdicts: name -> (group, option, baseline, metric) of :data:`COMPARISONS`
VERDICTS: dict[str, tuple[str, str, str, str]] = {
    "+CCT (cross-frame communication over CLIP-Mean, seen classes)":
        ("ablation", "cct", "clip_mean", "seen_top1"),
    "+prompts (X-CLIP over +MIT, seen classes)": ("ablation", "xclip", "mit", "seen_top1"),
    "+prompts (X-CLIP over +MIT, held-out zero-shot)": ("ablation", "xclip", "mit", "top1"),
    "distillation (held-out zero-shot)": ("retention", "distill", "xclip", "top1"),
    "label-text ensembles (held-out zero-shot)": ("retention", "ensemble", "xclip", "top1"),
    "EMA of the weights (held-out zero-shot)": ("retention", "ema", "xclip", "top1"),
    f"interpolation with the CLIP, alpha {INTERP_ALPHA} (held-out zero-shot)":
        ("retention", "interp", "xclip", "top1"),
    "ViFi-CLIP's frame averaging (held-out zero-shot)":
        ("retention", "vificlip", "xclip", "top1"),
}  # fmt: skip


def _fmt(mean: float, std: float, single: bool) -> str:
    return f"{mean:.1f}" if single else f"{mean:.1f} ± {std:.1f}"


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def run_study(
    *,
    out: Path,
    arch: str,
    data_dir: Path,
    data_spec: DataSpec,
    clip_file: Path,
    recipes: Path,
    recipe_text: dict[str, str],
    cache,
    common: list[str],
    budget: tuple[str, ...],
    seeds: tuple[int, ...],
    test_per_class: int,
    trained: dict[str, tuple[str, str]],
    quiet: Callable[[], contextlib.AbstractContextManager],
    log: Callable[[str], None],
    options: tuple[str, ...] = (*OPTIONS, "interp"),
) -> dict[str, Any]:
    """Train and measure each option for each seed (cached stages ``study/<option>_s<seed>``) and
    return ``{"seeds", "test_videos", "options": {name: per-seed values, means}, "paired":
    [comparison dicts]}``. ``trained`` maps ``json.dumps([recipe, overrides])`` of a run the main
    stages made to ``(its stage key, its checkpoint)``: such a run is measured, not retrained.
    ``"clip"`` (before fine-tuning) and ``"interp"`` (the X-CLIP runs interpolated with the CLIP,
    alpha :data:`INTERP_ALPHA`) are options too."""
    test_dir = out / "study" / "heldout_test"

    def make_test() -> dict:
        clear(test_dir, "demo-stage")
        made = generate_heldout_test(test_dir, data_spec, test_per_class)
        seal_dir(test_dir, "demo-stage")  # provably ours: a redo may delete it
        return made

    made = cache.run("study/heldout_test", [cache.keys["data"], test_per_class], make_test)
    log(f"  held-out test set of the study: {made['test_videos']} videos of "
        f"{len(made['heldout_classes'])} classes ({test_dir})")  # fmt: skip

    def measure(model, templates=("{}",)) -> dict[str, float]:
        unseen = evaluate_model(model, test_dir / "heldout" / "test.txt",
                                test_dir / "heldout" / "labels.csv", test_dir / "videos",
                                templates=templates, workers=1)  # fmt: skip
        seen = evaluate_model(model, data_dir / "val.txt", data_dir / "labels.csv",
                              data_dir / "videos", templates=templates, workers=1)  # fmt: skip
        return {"top1": unseen.top1, "seen_top1": seen.top1}

    def before() -> dict:
        model = xclip.create_model(
            arch, clip_weights=clip_file, cross_frame=False, use_mit=False, use_prompts=False
        )
        return measure(model)

    rows: dict[str, dict[str, list[float]]] = {}

    def add(name: str, res: dict) -> None:
        row = rows.setdefault(name, {"top1": [], "seen_top1": []})
        row["top1"].append(res["top1"])
        row["seen_top1"].append(res["seen_top1"])

    log("  the tiny CLIP before video fine-tuning (frame features averaged)")
    add("clip", cache.run("study/clip", [cache.keys["clip"], cache.keys["study/heldout_test"]],
                          before))  # fmt: skip
    want = [o for o in OPTIONS if o in options or (o == "xclip" and "interp" in options)]
    for seed in seeds:
        for name in want:
            recipe, extra, templates, label = OPTIONS[name]
            run_dir = out / "runs" / "study" / f"{name}_s{seed}"
            tpl = [f"data.templates={json.dumps(list(templates))}"] if templates else []
            overrides = [*common, f"train.seed={seed}", *budget, *extra, *tpl,
                         "test.eval_every=0", "test.final_eval=false"]  # fmt: skip
            reuse = trained.get(json.dumps([recipe, overrides]))

            def run(recipe=recipe, run_dir=run_dir, overrides=overrides, templates=templates,
                    reuse=reuse) -> dict:  # fmt: skip
                if reuse is not None:
                    ckpt, argv = reuse[1], None
                else:
                    clear(run_dir, "demo-stage")
                    run_dir.mkdir(parents=True)
                    argv = ["train", "--config", str(recipes / recipe), *overrides,
                            f"output.dir={run_dir}"]  # fmt: skip
                    buf = io.StringIO()
                    with quiet(), contextlib.redirect_stdout(buf):
                        rc = cli.main(argv)
                    (run_dir / "stdout.txt").write_text(buf.getvalue(), encoding="utf-8")
                    seal_dir(run_dir, "demo-stage")  # provably ours: a redo may delete it
                    if rc != 0:
                        raise RuntimeError(
                            f"xclip-video {' '.join(argv)} failed with exit code {rc}"
                        )
                    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
                    ckpt = summary["last_checkpoint"]
                m = measure(xclip.load_model(ckpt), templates or ("{}",))
                return {"argv": ["xclip-video", *argv] if argv else None, "checkpoint": ckpt,
                        "reused": reuse is not None, **m}  # fmt: skip

            source = [reuse[0]] if reuse else [cache.keys["clip"], recipe_text, recipe, overrides]
            key = [*source, cache.keys["study/heldout_test"]]
            res = cache.run(f"study/{name}_s{seed}", key, run)
            log(f"  seed {seed}, {label}: held-out top-1 {res['top1']:.1f}%, seen "
                f"{res['seen_top1']:.1f}%" + (" (the ablation's run)" if res["reused"] else ""))  # fmt: skip
            add(name, res)
            if name == "xclip" and "interp" in options:

                def interp(ckpt=res["checkpoint"]) -> dict:
                    ft = xclip.load_model(ckpt)
                    return measure(
                        interpolate_models(source_model(ft, clip_file), ft, INTERP_ALPHA)
                    )

                ikey = [cache.keys[f"study/xclip_s{seed}"], INTERP_ALPHA]
                add("interp", cache.run(f"study/interp_s{seed}", ikey, interp))
    table = {}
    for name, row in rows.items():
        (m, s), (sm, ss) = _mean_std(row["top1"]), _mean_std(row["seen_top1"])
        table[name] = {"label": LABELS[name], "top1": row["top1"], "seen_top1": row["seen_top1"],
                       "top1_mean": m, "top1_std": s, "seen_mean": sm, "seen_std": ss}  # fmt: skip
    paired = [
        comparison(group, option, baseline, metric, table[option][metric],
                   table[baseline][metric], seeds)
        for group, option, baseline, metric in COMPARISONS
        if option in table and baseline in table
    ]  # fmt: skip
    return {"seeds": list(seeds), "test_videos": made["test_videos"], "budget": list(budget),
            "effect": EFFECT, "options": table, "paired": paired}  # fmt: skip


def comparison(group: str, option: str, baseline: str, metric: str,
               option_values: list[float], baseline_values: list[float],
               seeds: tuple[int, ...] | list[int]) -> dict:  # fmt: skip
    """One comparison as results.json stores it: the paired difference (see
    :class:`~xclip_app.train.paired.PairedDifference`), its group and its verdict text."""
    d = paired_difference(option, baseline, option_values, baseline_values, seeds,
                          metric=metric, effect=EFFECT)  # fmt: skip
    return {"group": group, **d.to_dict(), "verdict_text": d.verdict_text()}


def find(paired: list[dict], group: str, option: str, baseline: str, metric: str) -> dict | None:
    """The comparison of ``paired`` (as :func:`run_study` returns it) with these four fields."""
    return next(
        (p for p in paired if (p["group"], p["option"], p["baseline"], p["metric"])
         == (group, option, baseline, metric)), None,
    )  # fmt: skip


METRIC_NAMES = {"top1": "held-out zero-shot top-1", "seen_top1": "seen-class top-1"}


def paired_table(paired: list[dict], effect: float) -> list[str]:
    """Markdown lines: the paired differences of ``paired`` (comparison dicts) as a table."""
    lines = [
        "Paired differences (option − baseline on the same seeds; 95 % paired t interval, "
        "`scipy.stats.ttest_rel`). Power: of the two-sided paired t test at the measured "
        f"standard deviation of the differences, for a true difference of ±{effect:g} points; "
        "*80 % for*: the difference it detects with 80 % power.\n",
        "| option | baseline | measure | seeds | mean diff | 95 % interval | sd of diffs | "
        f"power for ±{effect:g} | 80 % for | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in paired:
        lines.append(
            f"| {LABELS[p['option']]} | {LABELS[p['baseline']]} | {METRIC_NAMES[p['metric']]} | "
            f"{p['n']} | {p['mean']:+.1f} | [{p['low']:+.1f}, {p['high']:+.1f}] | {p['sd']:.1f} | "
            f"{100 * p['power']:.0f} % | {p['detectable']:.1f} | {p['verdict']} |"
        )
    lines.append("")
    return lines


def report_lines(study: dict[str, Any]) -> list[str]:
    """The report.md section of the study: per-option means, then the paired table."""
    seeds = study["seeds"]
    lines = [
        "## Paired study: the ablation and retention over the same seeds\n",
        f"Each option trained on the seen classes with the ablation budget on seeds "
        f"{', '.join(map(str, seeds))} ({len(seeds)} seeds, the same for every option), then "
        f"measured single view on the seen classes' validation videos and zero-shot on "
        f"{study['test_videos']} test videos of the held-out classes "
        f"(`xclip-video demo --study paired`; its stages took {study.get('stage_seconds', 0) / 60:.0f} "
        "min when computed, besides the ablation runs it reuses). "
        "Means ± sample std over seeds:\n",
        "| option | held-out top-1 % | seen top-1 % |",
        "|---|---|---|",
    ]
    for row in study["options"].values():
        one = len(row["top1"]) == 1  # the CLIP before fine-tuning: one model, no seed
        lines.append(f"| {row['label']} | {_fmt(row['top1_mean'], row['top1_std'], one)} | "
                     f"{_fmt(row['seen_mean'], row['seen_std'], one)} |")  # fmt: skip
    lines.append("")
    return lines + paired_table(study["paired"], study["effect"])
