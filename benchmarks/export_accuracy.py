"""Accuracy and speed of a model's exports (ONNX fp32, ONNX int8, torch.export) against the
model itself on a labelled video list: what docs/deploy.md reports for int8.

    xclip-video demo --quick --out runs/demo-quick
    python benchmarks/export_accuracy.py --model runs/demo-quick/runs/main/best \\
        --labels runs/demo-quick/data/labels.csv --videos runs/demo-quick/data/val.txt \\
        --root runs/demo-quick/data/videos

Each variant classifies every video of ``--videos`` (views: ``--num-clips`` x 1 crop) with the
label texts of ``--labels`` (the label ids of the list); top-1 accuracy, agreement of the top-1
with the model's, and the median model time per video are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import xclip
from xclip.data.annotations import read_labels_csv, read_video_list
from xclip.inference import VideoClassifier


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a saved model folder (or ARCH.TAG)")
    p.add_argument("--labels", required=True, help="labels CSV (id,name) of the list's ids")
    p.add_argument("--videos", required=True, help="video list: 'path label_id' per line")
    p.add_argument("--root", default=None, help="folder the list's paths are relative to")
    p.add_argument("--template", default="{}")
    p.add_argument("--num-clips", type=int, default=1)
    p.add_argument("--variants", default="eager,onnx,int8,pt2")
    args = p.parse_args(argv)

    labels = read_labels_csv(args.labels)
    entries = read_video_list(args.videos, num_classes=len(labels))
    root = Path(args.root) if args.root else Path(args.videos).parent
    paths = [str(root / e.path) for e in entries]
    truth = [labels[e.label] for e in entries]
    wanted = args.variants.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        models = {"eager": args.model}
        for v, kw in (("onnx", {}), ("int8", {"quantize": "int8"}), ("pt2", {"format": "pt2"})):
            if v in wanted:
                models[v] = xclip.export_model(args.model, f"{tmp}/{v}", **kw)
        top1: dict[str, list[str]] = {}
        print(f"{len(paths)} videos, {len(labels)} labels, {args.num_clips} clip(s) per video")
        print(f"{'variant':<8} {'top-1 %':>8} {'same top-1 as eager':>19} {'model ms/video':>15}")
        for v, m in models.items():
            clf = VideoClassifier(m, labels, args.template, num_clips=args.num_clips, device="cpu")
            clf(paths[0])  # warm-up
            preds, fails = clf.classify_many(paths)
            if fails:
                print(f"{v}: {len(fails)} videos failed: {fails[0]}", file=sys.stderr)
                return 1
            top1[v] = [pr.labels[0] for pr in preds]
            acc = 100 * sum(a == b for a, b in zip(top1[v], truth, strict=True)) / len(truth)
            same = sum(a == b for a, b in zip(top1[v], top1["eager"], strict=True))
            ms = 1e3 * statistics.median(pr.timings["model"] for pr in preds)
            print(f"{v:<8} {acc:>8.1f} {same:>12}/{len(paths):<6} {ms:>15.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
