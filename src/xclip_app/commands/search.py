"""``xclip-video search "text query" --index FILE``: rank indexed videos for a text (retrieval).

The model defaults to the one recorded in the index by ``embed``; the scores must come from the
same weights, which is checked (a weights fingerprint is stored in the index).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys

from .classify import add_model_arguments, load_model_from_args, open_output

NAME = "search"
HELP = "rank the videos of an index (from `embed`) for text queries (text-to-video retrieval)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("queries", nargs="+", metavar="QUERY", help="text queries, e.g. 'a dog surfing'")
    p.add_argument("--index", required=True, help="index file written by `xclip-video embed`")
    add_model_arguments(p, default=None)
    p.add_argument("--top-k", type=int, default=10, help="videos per query (default 10; 0 = all)")
    p.add_argument(
        "--method",
        choices=("auto", "prompted", "cosine"),
        default="auto",
        help="prompted: the model's own video-conditioned score (default when the index has "
        "tokens); cosine: plain cosine of video and text embeddings",
    )
    p.add_argument("--template", default="{}", help="prompt with {} for the query (default: {})")
    p.add_argument("--format", choices=("table", "json", "jsonl", "csv"), default="table")
    p.add_argument("-o", "--output", help="write the results to this file (default: stdout)")


def run(args: argparse.Namespace) -> int:
    from xclip.inference import load_index, search

    if args.top_k < 0:
        raise ValueError(f"--top-k must be >= 0, got {args.top_k}")
    index = load_index(args.index)
    model_src = args.model or index.model.get("source")
    if not model_src or model_src == "XCLIP":
        raise ValueError(f"{args.index} does not record its model; pass --model")
    model = load_model_from_args(args, model_src).eval()
    if args.device:
        from xclip.inference import _resolve_device

        model.to(_resolve_device(args.device))
    results = []
    for q in args.queries:
        hits = search(
            q, index, model, top_k=args.top_k or None, template=args.template, method=args.method
        )
        results.append((q, hits))
    out = open_output(args.output)
    try:
        if args.format == "table":
            for q, hits in results:
                out.write(f"query: {q}\n  {'rank':>4}  {'score':>7}  video\n")
                for h in hits:
                    out.write(f"  {h.rank:>4}  {h.score:7.4f}  {h.path}\n")
                out.write("\n")
        elif args.format == "json":
            doc = {
                "index": args.index,
                "model": model_src,
                "results": [
                    {"query": q, "hits": [h.to_dict() for h in hits]} for q, hits in results
                ],
            }
            out.write(json.dumps(doc, indent=2) + "\n")
        elif args.format == "jsonl":
            for q, hits in results:
                for h in hits:
                    out.write(json.dumps({"query": q, **h.to_dict()}) + "\n")
        else:
            w = csv.writer(out)
            w.writerow(["query", "rank", "video", "score"])
            for q, hits in results:
                for h in hits:
                    w.writerow([q, h.rank, h.path, f"{h.score:.6f}"])
    finally:
        if out is not sys.stdout:
            out.close()
    return 0
