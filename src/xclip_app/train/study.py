"""A paired study (``xclip-video study``): options of one recipe, each trained on the same seeds
and tested on the same sets, and each option's paired difference against a baseline option.

The study is a recipe like any other with ``protocol.options`` (a name and the overrides that
make the option from the recipe), ``protocol.baseline`` (one of the option names) and
``protocol.train_seeds``. Every option trains once per seed, with ``train.seed`` set to it, in
``OUTPUT/runs/<option>_s<seed>``: within a seed, all options see the same data order,
augmentations and evaluation views, and the same initialisation of the modules they share. Each
run's last checkpoint is tested on every set of ``protocol.eval_sets`` (or ``data.val_file``)
as the zero-shot protocol does, with the run's own ``data.templates`` and ``test`` views. The
table (:func:`format_study_table`) gives, per set, each option's mean and its paired difference
against the baseline with a 95 % paired t interval, the power and the verdict
(:mod:`.paired`). Every run is resumed: finished runs are reused, so adding seeds to a study
trains only the new ones.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from xclip.errors import InputError

from . import distributed as D
from .config import EvalSet, ProtocolConfig, RunConfig, override_config
from .paired import paired_difference
from .protocols import run_zeroshot
from .trainer import Trainer

__all__ = ["check_study", "format_study_table", "run_study", "study_runs", "study_sets"]

log = logging.getLogger(__name__)


def check_study(cfg: RunConfig) -> None:
    """Refuse a study that cannot make a paired table: one line naming the key."""
    p = cfg.protocol
    names = [o.name for o in p.options]
    if len(names) < 2:
        raise InputError(
            f"protocol.options lists {len(names)} option(s); a study compares at least two "
            "(each {name, overrides}, one of them the baseline)"
        )
    bad = [n for n in names if not n or "/" in n or n.startswith(".")]
    if bad:
        raise InputError(f"protocol.options: {bad[0]!r} is not a usable option name")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"protocol.options: the name {dup[0]!r} is given twice")
    if p.baseline not in names:
        raise InputError(
            f"protocol.baseline {p.baseline!r} is not one of protocol.options ({', '.join(names)})"
        )
    if not p.train_seeds or len(set(p.train_seeds)) != len(p.train_seeds):
        raise InputError(
            f"protocol.train_seeds must list distinct seeds, got {list(p.train_seeds)}"
        )
    for o in p.options:  # each option's config must build (unknown keys, bad values)
        for key in ("output.dir", "train.seed"):
            if any(ov.split("=", 1)[0].strip() == key for ov in o.overrides):
                raise InputError(f"protocol.options {o.name!r} sets {key}; the study sets it")
        override_config(cfg, o.overrides)


def study_sets(cfg: RunConfig) -> list[EvalSet]:
    """The sets every run is tested on: ``protocol.eval_sets``, else the validation list."""
    if cfg.protocol.eval_sets:
        return list(cfg.protocol.eval_sets)
    return [EvalSet(name="val", val_file=cfg.data.val_file, label_list=cfg.data.label_list)]


def study_runs(cfg: RunConfig) -> list[tuple[str, int, RunConfig]]:
    """One ``(option, seed, training config)`` per run, seed by seed. A run's config is the
    recipe with the option's overrides, ``train.seed`` and its own ``output.dir``; its protocol
    section is the default one (a training run does not depend on the study around it, so a
    study with more seeds finds its earlier runs unchanged)."""
    root = Path(cfg.output.dir)
    runs = []
    for seed in cfg.protocol.train_seeds:
        for o in cfg.protocol.options:
            c = override_config(cfg, [*o.overrides, f"train.seed={seed}",
                                      f"output.dir={root / 'runs' / f'{o.name}_s{seed}'}"])  # fmt: skip
            c.protocol = ProtocolConfig()
            runs.append((o.name, seed, c))
    return runs


def run_study(
    cfg: RunConfig,
    info: D.DistInfo,
    *,
    effect: float = 5.0,
) -> dict[str, Any]:
    """Train and test every run of :func:`study_runs` (each resumed: a finished run is reused,
    an interrupted one continues, one started with other settings is refused); returns ``{"baseline", "seeds", "sets",
    "runs": [{option, seed, run, checkpoint, top1: {set: value}}], "paired": [comparison dicts
    (:class:`~xclip_app.train.paired.PairedDifference` plus the set)]}``."""
    check_study(cfg)
    sets = study_sets(cfg)
    names = [s.name or f"set{i}" for i, s in enumerate(sets)]
    runs = []
    for option, seed, c in study_runs(cfg):
        log.info("study: %s, seed %d -> %s", option, seed, c.output.dir)
        summary = Trainer(c, resume="auto", info=info).fit()
        ckpt = str(summary.last_checkpoint)
        ev = copy.deepcopy(c)
        ev.protocol.eval_sets = sets
        rows, _ = run_zeroshot(ev, ckpt, info)
        top1 = {n: r.top1 for n, r in zip(names, rows, strict=True)}
        log.info("study: %s, seed %d: %s", option, seed,
                 ", ".join(f"{n} top-1 {v:.2f}" for n, v in top1.items()))  # fmt: skip
        runs.append({"option": option, "seed": seed, "run": c.output.dir, "checkpoint": ckpt,
                     "top1": top1})  # fmt: skip
    seeds = list(cfg.protocol.train_seeds)
    base = cfg.protocol.baseline

    def values(option: str, name: str) -> list[float]:
        by_seed = {r["seed"]: r["top1"][name] for r in runs if r["option"] == option}
        return [by_seed[s] for s in seeds]

    paired = []
    for name in names:
        for o in cfg.protocol.options:
            if o.name != base:
                d = paired_difference(o.name, base, values(o.name, name), values(base, name),
                                      seeds, metric=f"{name} top-1", effect=effect)  # fmt: skip
                paired.append({"set": name, **d.to_dict(), "verdict_text": d.verdict_text()})
    return {"baseline": base, "seeds": seeds, "sets": names, "effect": effect,
            "options": {o.name: o.overrides for o in cfg.protocol.options}, "runs": runs,
            "paired": paired}  # fmt: skip


def format_study_table(result: dict[str, Any]) -> str:
    """The paired table of :func:`run_study`'s result as Markdown."""
    seeds = result["seeds"]
    lines = [
        f"Paired study: {len(seeds)} seeds ({', '.join(map(str, seeds))}), every option on "
        f"each; baseline {result['baseline']!r}. Difference = option - baseline on the same seed;"
        f" 95 % paired t interval (scipy.stats.ttest_rel); power of the paired t test for "
        f"+-{result['effect']:g} points at the measured sd of the differences.",
        "",
        f"| set | option | mean top-1 | baseline | difference | 95 % interval | sd | "
        f"power for +-{result['effect']:g} | 80 % power for | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in result["paired"]:
        lines.append(
            f"| {p['set']} | {p['option']} | {p['option_mean']:.2f} | {p['baseline_mean']:.2f} | "
            f"{p['mean']:+.2f} | [{p['low']:+.2f}, {p['high']:+.2f}] | {p['sd']:.2f} | "
            f"{100 * p['power']:.0f} % | {p['detectable']:.2f} | {p['verdict']} |"
        )
    return "\n".join(lines)
