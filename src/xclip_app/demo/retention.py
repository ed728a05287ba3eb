"""The demo's retention study (``xclip-video demo --study retention``): does fine-tuning on the
seen classes keep open-vocabulary recognition of the held-out ones, with each "beyond X-CLIP"
option of the engine (docs/training.md, "Beyond X-CLIP")?

Every option is one ``xclip-video train`` run per seed on the video-training (seen) classes with
the ablation budget of the plan, then the zero-shot top-1 on the held-out classes (novel
colour-motion combinations), single view, and the top-1 on the seen classes' validation videos.
Two references: plain X-CLIP (the same budget) and the tiny image CLIP before any video
fine-tuning (frame features averaged; one number, no seed). Mean +- std over the seeds.
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

__all__ = ["ENSEMBLE", "INTERP_ALPHA", "OPTIONS", "report_lines", "run_retention"]

# label-text ensemble of the study: the class name alone, and two sentences around it
ENSEMBLE = ("{}", "a video of {}", "{} in a clip")
# the interpolation weight of the fine-tuned model; fixed in advance: the demo's held-out classes
# are its test set, so choosing alpha on them would report a tuned number
INTERP_ALPHA = 0.5

# name: (recipe, extra overrides, templates, label); "interp" is computed from the "xclip" runs
OPTIONS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], str]] = {
    "xclip": ("xclip.yaml", (), (), "X-CLIP (plain)"),
    "vificlip": ("clip_mean.yaml", ("model.fix_text=false",), (),
                 "ViFi-CLIP: frame averaging, both towers trained"),
    "ema": ("xclip.yaml", ("train.weight_average=ema", "train.ema_decay=0.99"), (),
            "X-CLIP + EMA of the weights (decay 0.99)"),
    "uniform": ("xclip.yaml", ("train.weight_average=uniform", "train.average_start=1"), (),
                "X-CLIP + uniform weight average from epoch 1"),
    "distill": ("xclip.yaml", ("train.distill_weight=1.0",), (),
                "X-CLIP + distillation from the frozen CLIP (weight 1)"),
    "ensemble": ("xclip.yaml", (), ENSEMBLE, f"X-CLIP + label-text ensemble ({len(ENSEMBLE)})"),
    "froster": ("xclip.yaml", ("train.distill_weight=1.0", "train.weight_average=ema",
                               "train.ema_decay=0.99"), (),
                "X-CLIP + distillation + EMA (FROSTER's two moves)"),
}  # fmt: skip


def _mean_std(values: list[float]) -> dict[str, Any]:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "values": values}


def run_retention(
    *,
    out: Path,
    arch: str,
    data_dir: Path,
    clip_file: Path,
    recipes: Path,
    recipe_text: dict[str, str],
    cache,
    common: list[str],
    budget: tuple[str, ...],
    seeds: tuple[int, ...],
    quiet: Callable[[], contextlib.AbstractContextManager],
    log: Callable[[str], None],
    options: tuple[str, ...] = (*OPTIONS, "interp"),
) -> dict[str, Any]:
    """Train each option for each seed (cached stages ``retention/<option>_s<seed>``), measure,
    and return ``{option: {"label", "mean", "std", "values", "seen_mean", "seen_std"}}`` with
    ``"clip"`` (before fine-tuning) and ``"interp"`` (the X-CLIP runs interpolated with the CLIP,
    alpha :data:`INTERP_ALPHA`) as entries too."""
    held = data_dir / "heldout"
    root = data_dir / "videos"

    def measure(model, templates=("{}",)) -> dict[str, float]:
        unseen = evaluate_model(model, held / "test.txt", held / "labels.csv", root,
                                templates=templates, workers=1)  # fmt: skip
        seen = evaluate_model(model, data_dir / "val.txt", data_dir / "labels.csv", root,
                              templates=templates, workers=1)  # fmt: skip
        return {"top1": unseen.top1, "seen_top1": seen.top1}

    def before() -> dict:
        model = xclip.create_model(
            arch, clip_weights=clip_file, cross_frame=False, use_mit=False, use_prompts=False
        )
        return measure(model)

    rows: dict[str, dict[str, list[float]]] = {}
    log("  the tiny CLIP before video fine-tuning (frame features averaged)")
    r = cache.run("retention/clip", [cache.keys["clip"]], before)
    rows["clip"] = {"top1": [r["top1"]], "seen_top1": [r["seen_top1"]]}
    want = [o for o in options if o in OPTIONS]
    if "interp" in options and "xclip" not in want:
        want.insert(0, "xclip")
    checkpoints: dict[int, str] = {}
    for name in want:
        recipe, extra, templates, label = OPTIONS[name]
        for seed in seeds:
            run_dir = out / "runs" / "retention" / f"{name}_s{seed}"
            tpl = [f"data.templates={json.dumps(list(templates))}"] if templates else []
            overrides = [*common, f"train.seed={seed}", *budget, *extra, *tpl,
                         "test.eval_every=0", "test.final_eval=false"]  # fmt: skip

            def train(recipe=recipe, run_dir=run_dir, overrides=overrides, templates=templates):
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
                    raise RuntimeError(f"xclip-video {' '.join(argv)} failed with exit code {rc}")
                summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
                ckpt = summary["last_checkpoint"]
                m = measure(xclip.load_model(ckpt), templates or ("{}",))
                return {"argv": ["xclip-video", *argv], "checkpoint": ckpt, **m}

            key = [cache.keys["clip"], recipe_text, recipe, overrides]
            res = cache.run(f"retention/{name}_s{seed}", key, train)
            log(f"  {label}, seed {seed}: held-out top-1 {res['top1']:.1f}%, seen "
                f"{res['seen_top1']:.1f}%")  # fmt: skip
            row = rows.setdefault(name, {"top1": [], "seen_top1": []})
            row["top1"].append(res["top1"])
            row["seen_top1"].append(res["seen_top1"])
            if name == "xclip":
                checkpoints[seed] = res["checkpoint"]
    if "interp" in options:
        for seed in seeds:
            ckpt = checkpoints[seed]

            def interp(ckpt=ckpt) -> dict:
                ft = xclip.load_model(ckpt)
                return measure(interpolate_models(source_model(ft, clip_file), ft, INTERP_ALPHA))

            key = [cache.keys[f"retention/xclip_s{seed}"], INTERP_ALPHA]
            res = cache.run(f"retention/interp_s{seed}", key, interp)
            row = rows.setdefault("interp", {"top1": [], "seen_top1": []})
            row["top1"].append(res["top1"])
            row["seen_top1"].append(res["seen_top1"])
    labels = {k: v[3] for k, v in OPTIONS.items()}
    labels["clip"] = "tiny CLIP before video fine-tuning"
    labels["interp"] = f"X-CLIP interpolated with the CLIP (alpha {INTERP_ALPHA})"
    out_rows = {}
    for name, row in rows.items():
        top, seen = _mean_std(row["top1"]), _mean_std(row["seen_top1"])
        out_rows[name] = {"label": labels[name], **top, "seen_mean": seen["mean"],
                          "seen_std": seen["std"], "seen_values": seen["values"]}  # fmt: skip
    return out_rows


def report_lines(retention: dict[str, Any], seeds: int) -> list[str]:
    """The report.md section of the study."""
    lines = [
        "## Retention: fine-tuning on the seen classes, zero-shot on the held-out ones\n",
        f"Each option trained on the seen classes with the ablation budget ({seeds} seed(s), "
        "mean +- std), then tested zero-shot (1 view) on the held-out classes and on the seen "
        "classes' validation videos (`xclip-video demo --study retention`, "
        'docs/training.md "Beyond X-CLIP").\n',
        "| option | held-out top-1 % | seen top-1 % |",
        "|---|---|---|",
    ]
    for row in retention.values():
        lines.append(
            f"| {row['label']} | {row['mean']:.1f} +- {row['std']:.1f} | "
            f"{row['seen_mean']:.1f} +- {row['seen_std']:.1f} |"
        )
    lines.append("")
    return lines
