"""``xclip-video demo``: the paper's story in miniature, end to end, on a CPU in minutes.

Generates procedural videos (real mp4 files, annotation lists, labels CSVs), pretrains a tiny image
CLIP on captioned stills, expands it to video with X-CLIP through ``xclip-video train`` (and the
paper's ablations over several seeds), evaluates zero-shot and few-shot on held-out classes, and
writes ``OUT/report/`` (report.md, results.json, PNG plots). Stages are cached in ``OUT/stages``;
``--fresh`` recomputes everything. See ``docs/demo.md``.

    xclip-video demo                 # the full benchmark (about 7 minutes on 2 CPU cores)
    xclip-video demo --quick         # the CI configuration (about a minute)
    xclip-video demo --study paired  # + the ablation and retention options over 10 seeds, paired
"""

from __future__ import annotations

import argparse

NAME = "demo"
HELP = (
    "procedural video benchmark: generate, pretrain a tiny CLIP, train X-CLIP + ablations, "
    "zero-/few-shot, write a report (cached; --fresh redoes it)"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o", "--output", "--out", dest="out", default="runs/demo",
        help="output folder (default: %(default)s)",
    )  # fmt: skip
    p.add_argument("--fresh", action="store_true", help="delete cached stages and redo everything")
    p.add_argument(
        "--quick",
        action="store_true",
        help="the small CI configuration (less data, fewer steps, one seed)",
    )
    p.add_argument(
        "--study",
        choices=("paired",),
        default=None,
        help="also run a study: 'paired' trains the ablation rows and each option of "
        "docs/training.md 'Beyond X-CLIP' on the same seeds and reports paired differences with "
        "95%% intervals (seen-class and held-out zero-shot top-1) and verdicts",
    )
    p.add_argument(
        "--study-seeds",
        help="comma-separated seeds of --study paired (default: the plan's, 0-9 for the full "
        "demo); every option trains on each, the runs of seeds already done are reused",
    )
    p.add_argument(
        "--show-engine-log",
        action="store_true",
        help="print every log line of the training engine (default: one line per epoch)",
    )


def run(args: argparse.Namespace) -> int:
    from xclip_app.demo.pipeline import run_demo  # lazy: CLI start-up
    from xclip_app.demo.report import summary_lines  # lazy: CLI start-up
    from xclip_app.exit_codes import UsageError  # lazy: CLI start-up
    from xclip_app.outputs import check_work_folder  # lazy: CLI start-up

    seeds = None
    if args.study_seeds is not None:
        if args.study is None:
            raise UsageError("--study-seeds needs --study paired")
        try:
            seeds = tuple(int(s) for s in args.study_seeds.split(",") if s.strip())
        except ValueError:
            seeds = ()
        if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
            raise UsageError(
                f"--study-seeds must be distinct comma-separated seeds >= 0, e.g. 0,1,2; got "
                f"{args.study_seeds!r}"
            )
    check_work_folder(args.out, "demo", flag="--out", marker="report/results.json")
    res = run_demo(
        args.out,
        "quick" if args.quick else "full",
        fresh=args.fresh,
        verbose=args.show_engine_log,
        study=args.study,
        study_seeds=seeds,
    )
    for line in summary_lines(res.results):
        print(line)
    return 0
