"""The paper's zero-shot and few-shot protocols, end to end, with mean +- std tables.

* Zero-shot (reference section 4.3/4.4): one checkpoint (the K400-trained B/16 32f model) is
  evaluated single-view on every set of ``protocol.eval_sets`` (the 3 official HMDB-51/UCF-101
  test splits, or the 3 random 160-class subsets of the K600 classes not in K400); the table
  reports each set and the mean +- std of top-1 and top-5 over the sets.
* Few-shot (section 4.2): for each K of ``protocol.shots`` and each seed of ``protocol.seeds``,
  K videos per class are drawn from ``protocol.train_file`` (split 1 train list), a model is
  trained from image CLIP with the recipe and tested on ``data.val_file`` (split 1 test list).
  The table reports, per K, the mean +- std over seeds (std 0 with one seed, as the paper's one
  draw).

Standard deviations are numpy's population std (ddof=0); the paper does not say which it used.

Results are reproducible from their files: every zero-shot set's ``metrics.json`` and
``zeroshot_results.json`` record the checkpoint and weights fingerprints, the list and label
fingerprints, views, view mode and seed; every row of ``fewshot_results.json`` records the same
for its run (the drawn K-shot list's fingerprint and the draw seed included). Report folders are
written whole (:func:`~.evaluate.write_report`) and never replace an earlier one unless the
command was given ``--overwrite``.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xclip.atomic import atomic_write_text
from xclip.data.annotations import format_video_list, read_labels_csv, read_video_list
from xclip.errors import InputError
from xclip.precision import autocast, resolve_precision
from xclip_app.splits.kshot import kshot_entries

from . import distributed as D
from .classifier import class_tokens, load_classifier
from .config import RunConfig, check_paths, is_placeholder
from .evaluate import EvalResult, evaluate, format_result, mean_std, write_report
from .loaders import build_eval_loader
from .provenance import checkpoint_fingerprint, file_sha256
from .trainer import Trainer

log = logging.getLogger(__name__)


@dataclass
class Row:
    """One evaluated set of the zero-shot table."""

    name: str
    videos: int
    classes: int
    top1: float
    top5: float


def format_table(title: str, rows: list[Row], group_label: str = "set") -> str:
    w = max([len(group_label), *(len(r.name) for r in rows)])
    lines = [
        title,
        f"{group_label:<{w}}  {'videos':>7}  {'classes':>7}  {'top-1':>7}  {'top-5':>7}",
    ]
    for r in rows:
        lines.append(
            f"{r.name:<{w}}  {r.videos:>7}  {r.classes:>7}  {r.top1:>7.2f}  {r.top5:>7.2f}"
        )
    m1, s1 = mean_std([r.top1 for r in rows])
    m5, s5 = mean_std([r.top5 for r in rows])
    lines.append(f"{'mean ± std':<{w}}  {'':>7}  {'':>7}  {m1:.1f} ± {s1:.1f}  {m5:.1f} ± {s5:.1f}")
    return "\n".join(lines)


def zeroshot_set_names(cfg: RunConfig) -> list[str]:
    """The name of each ``protocol.eval_sets`` entry (its report folder); must be unique."""
    names = [s.name or f"set{i + 1}" for i, s in enumerate(cfg.protocol.eval_sets)]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(
            f"protocol.eval_sets names must be unique (each names a report folder); "
            f"{', '.join(dupes)} appear more than once"
        )
    for n in names:
        if not n or n in (".", "..") or "/" in n or os.sep in n:
            raise InputError(f"protocol.eval_sets name {n!r} cannot name a report folder")
    return names


def zeroshot_inputs(cfg: RunConfig) -> list[str]:
    """The files and folders the zero-shot protocol reads (never to be written over)."""
    out = [cfg.data.root]
    for s in cfg.protocol.eval_sets:
        out += [s.val_file, s.label_list, s.root or ""]
    return [x for x in out if x]


def run_zeroshot(
    cfg: RunConfig,
    checkpoint: str,
    info: D.DistInfo,
    out_dir: Path | None = None,
    *,
    overwrite: bool = False,
) -> tuple[list[Row], list[EvalResult]]:
    """Evaluate ``checkpoint`` on every set; with ``out_dir`` write one report per set into
    ``out_dir/<set name>`` (an existing one is refused unless ``overwrite``)."""
    sets = cfg.protocol.eval_sets
    if not sets:
        raise InputError(
            "protocol.eval_sets is empty; the zero-shot recipe lists one set per split"
        )
    set_names = zeroshot_set_names(cfg)
    for i, s in enumerate(sets):
        for key in ("val_file", "label_list"):
            v = getattr(s, key)
            if not v or is_placeholder(v):
                raise InputError(
                    f"protocol.eval_sets[{i}].{key} ({s.name or i}) is "
                    + ("not set" if not v else f"the placeholder {v!r}")
                    + "; point it at your files (xclip-video splits makes them)"
                )
            if not Path(v).exists():
                raise InputError(
                    f"protocol.eval_sets[{i}].{key} ({s.name or i}): {v} does not exist; "
                    "point it at your files (xclip-video splits makes them)"
                )
    if is_placeholder(cfg.data.root):
        check_paths(cfg, ["data.root"])
    clf = load_classifier(checkpoint).to(info.device)
    if clf.head is not None:
        raise InputError(f"{checkpoint} has a linear head; zero-shot needs a text-head model")
    precision = resolve_precision(cfg.train.precision, info.device)
    t = cfg.test
    rows, results = [], []
    extra = checkpoint_fingerprint(checkpoint) if info.is_main and out_dir is not None else {}
    extra["precision"] = precision
    for name, s in zip(set_names, sets, strict=True):
        names = read_labels_csv(s.label_list)
        loader = build_eval_loader(
            cfg, info, clf.model.preprocess, s.val_file, s.label_list,
            num_clips=t.num_clips, num_crops=t.num_crops, view_mode=t.view_mode, root=s.root,
        )  # fmt: skip
        tpl = cfg.data.templates
        text = clf.text_features(class_tokens(names, tpl).to(info.device), max(1, len(tpl)))
        res = evaluate(
            clf, loader, len(names), text_features=text, device=info.device,
            autocast=autocast(precision, info.device),
            progress=info.is_main and cfg.output.progress, desc=name,
        )  # fmt: skip
        log.info("%s: %s", name, format_result(res))
        if info.is_main and out_dir is not None:
            write_report(
                res, out_dir / name, names, [e.path for e in loader.dataset.entries],
                extra=extra, if_exists="replace" if overwrite else "refuse",
            )  # fmt: skip
        rows.append(Row(name, res.num_samples, len(names), res.top1, res.top5))
        results.append(res)
    return rows, results


def fewshot_runs(cfg: RunConfig) -> list[tuple[int, int, RunConfig]]:
    """One ``(K, seed, config)`` per training run of the few-shot protocol."""
    root = Path(cfg.output.dir)
    runs = []
    for k in cfg.protocol.shots:
        for seed in cfg.protocol.seeds:
            c = copy.deepcopy(cfg)
            c.output.dir = str(root / f"k{k}_seed{seed}")
            c.data.train_file = str(Path(c.output.dir) / f"train_{k}shot_seed{seed}.txt")
            runs.append((k, seed, c))
    return runs


def run_fewshot(
    cfg: RunConfig, info: D.DistInfo, resume: str | None = None
) -> list[dict[str, Any]]:
    p = cfg.protocol
    check_paths(cfg, ["protocol.train_file", "data.val_file", "data.label_list"])
    k_classes = len(read_labels_csv(cfg.data.label_list))
    entries = read_video_list(p.train_file, num_classes=k_classes)
    out = []
    for k, seed, c in fewshot_runs(cfg):
        if info.is_main:
            picked = kshot_entries(entries, k, seed)
            _write_kshot_list(Path(c.data.train_file), format_video_list(picked))
            log.info(
                "few-shot K=%d seed %d: %d training videos -> %s",
                k,
                seed,
                len(picked),
                c.output.dir,
            )
        D.barrier()
        trainer = Trainer(c, resume=resume, info=info)
        summary = trainer.fit()
        t = c.test
        if p.report == "best" or not summary.final_eval:
            best = max(
                (h for h in summary.history if "top1" in h), key=lambda h: h["top1"], default=None
            )
            if best is None:
                raise InputError("protocol.report=best needs test.eval_every > 0")
            top1, top5 = best["top1"], best["top5"]
            n, skipped = None, None
            ckpt = Path(c.output.dir) / "best"
            views, view_mode = f"{t.num_clips}x{t.num_crops}", t.view_mode
        else:
            top1, top5 = summary.final_eval["top1"], summary.final_eval["top5"]
            n = summary.final_eval["num_samples"]
            skipped = summary.final_eval.get("skipped")
            ckpt = summary.last_checkpoint
            views, view_mode = f"{t.final_num_clips}x{t.final_num_crops}", t.final_view_mode
        row = {"k": k, "seed": seed, "top1": top1, "top5": top5, "videos": n, "run": c.output.dir}
        # what reproduces the number (see .provenance)
        row.update(
            skipped=skipped,
            views=views,
            view_mode=view_mode,
            train_seed=c.train.seed,
            train_list=c.data.train_file,
            train_list_sha256=file_sha256(c.data.train_file),
            val_list=c.data.val_file,
            val_list_sha256=file_sha256(c.data.val_file),
            labels_sha256=file_sha256(c.data.label_list),
            **(checkpoint_fingerprint(ckpt) if ckpt is not None else {"checkpoint": None}),
        )
        out.append(row)
    return out


def _write_kshot_list(path: Path, text: str) -> None:
    """Write a run's K-shot list; a list already there (a resumed protocol) must be the same
    draw, or the resumed run would train on other videos."""
    if path.is_file():
        if path.read_text(encoding="utf-8") != text:
            raise InputError(
                f"{path} holds another K-shot draw than this protocol makes (other "
                "protocol.train_file, shots or seeds?); use a new --output for the new protocol"
            )
        return
    atomic_write_text(path, text, overwrite=False)


def format_fewshot_table(title: str, results: list[dict[str, Any]]) -> str:
    lines = [
        title,
        f"{'K':>3}  {'runs':>4}  {'top-1 (mean ± std)':>18}  {'top-5 (mean ± std)':>18}",
    ]
    for k in sorted({r["k"] for r in results}):
        rs = [r for r in results if r["k"] == k]
        m1, s1 = mean_std([r["top1"] for r in rs])
        m5, s5 = mean_std([r["top5"] for r in rs])
        lines.append(
            f"{k:>3}  {len(rs):>4}  {f'{m1:.1f} ± {s1:.1f}':>18}  {f'{m5:.1f} ± {s5:.1f}':>18}"
        )
    return "\n".join(lines)
