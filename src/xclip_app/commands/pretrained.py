"""``xclip-video pretrained``: the table of released X-CLIP weights."""

from __future__ import annotations

import argparse

NAME = "pretrained"
HELP = "list the released X-CLIP weights (arch.tag names for xclip.create_model)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default=None, help="only the weights of this architecture")


def _acc(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def run(args: argparse.Namespace) -> int:
    from xclip.pretrained import get_pretrained, list_pretrained  # lazy: CLI start-up

    names = list_pretrained(args.arch)
    print(
        f"{'name':<32} {'frames':>6} {'size':>4}  {'dataset':<22} {'top-1':>5} {'top-5':>5}  hub id"
    )
    for name in names:
        e = get_pretrained(name)
        if e.top1 is None and e.metrics:  # zero-shot: several datasets
            acc = "  ".join(
                f"{k.removesuffix('_top1')} {v:.1f}"
                for k, v in e.metrics.items()
                if k.endswith("_top1")
            )
            scores = f"{'see':>5} {'below':>5}"
            extra = f"\n{'':<32} zero-shot top-1: {acc}"
        else:
            scores, extra = f"{_acc(e.top1):>5} {_acc(e.top5):>5}", ""
        print(
            f"{name:<32} {e.num_frames:>6} {e.image_size:>4}  {e.train_dataset:<22} {scores}  "
            f"{e.hf_hub_id}{extra}"
        )
    return 0
