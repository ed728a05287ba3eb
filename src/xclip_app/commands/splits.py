"""``xclip-video splits``: build the evaluation protocols' list files from official dataset files."""

from __future__ import annotations

import argparse
from pathlib import Path

from xclip_app.exit_codes import UsageError
from xclip_app.inference_args import add_overwrite_argument

NAME = "splits"
HELP = "make train/test lists for the protocols: UCF-101, HMDB-51, K-shot, K600 zero-shot"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="protocol", metavar="PROTOCOL", required=True)

    u = sub.add_parser(
        "ucf101", help="UCF-101 official splits (classInd.txt, trainlist0k, testlist0k)"
    )
    u.add_argument("--official-dir", required=True, help="the ucfTrainTestlist folder")
    u.add_argument("-o", "--output", "--out", dest="out", required=True, help="output folder")
    add_overwrite_argument(u)
    u.add_argument(
        "--splits", default="1,2,3", help="comma-separated split numbers (default 1,2,3)"
    )

    h = sub.add_parser("hmdb51", help="HMDB-51 official splits (<class>_test_split{k}.txt)")
    h.add_argument("--official-dir", required=True, help="the testTrainMulti_7030_splits folder")
    h.add_argument("-o", "--output", "--out", dest="out", required=True, help="output folder")
    add_overwrite_argument(h)
    h.add_argument(
        "--splits", default="1,2,3", help="comma-separated split numbers (default 1,2,3)"
    )

    k = sub.add_parser("kshot", help="K videos per class (few-shot training list), seeded")
    k.add_argument("--list", required=True, help="training list (original format)")
    k.add_argument("--k", type=int, required=True, help="videos per class")
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("-o", "--output", "--out", dest="out", required=True, help="output list file")
    add_overwrite_argument(k)
    k.add_argument(
        "--allow-fewer", action="store_true", help="keep all videos of classes with fewer than K"
    )

    z = sub.add_parser(
        "k600-zeroshot", help="Kinetics-600 classes not in K400: seeded 160-class subsets"
    )
    z.add_argument("--k400-labels", required=True, help="K400 labels CSV (id,name)")
    z.add_argument("--k600-labels", required=True, help="K600 labels CSV (id,name)")
    z.add_argument("--k600-list", help="K600 list labelled with K600 ids (videos to relabel)")
    z.add_argument("-o", "--output", "--out", dest="out", required=True, help="output folder")
    add_overwrite_argument(z)
    z.add_argument("--seed", type=int, default=0)
    z.add_argument("--subsets", type=int, default=3)
    z.add_argument("--size", type=int, default=160, help="classes per subset")
    z.add_argument(
        "--renames",
        default="builtin",
        help="K400->K600 renamed classes: 'builtin' (11 known renames, gives 220 new classes), "
        "'none' (name matching only), or a CSV 'k400_name,k600_name'",
    )
    z.add_argument(
        "--exclude",
        action="append",
        default=[],
        help="K600 class to leave out of the novel set (repeatable)",
    )
    z.add_argument(
        "--expect",
        type=int,
        help="fail unless exactly this many novel classes are found (e.g. 220)",
    )


def _splits(s: str) -> list[int]:
    try:
        out = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--splits must be comma-separated integers, got {s!r}") from None
    if not out or any(k not in (1, 2, 3) for k in out):
        raise UsageError(f"--splits must be among 1,2,3, got {s!r}")
    return out


def _renames(spec: str) -> dict[str, str] | None:
    """``--renames``: ``None`` for the built-in table, ``{}`` for none, else the CSV file's table."""
    from xclip_app.splits.kinetics600 import read_renames_csv  # lazy: CLI start-up

    if spec == "builtin":
        return None
    if spec == "none":
        return {}
    return read_renames_csv(spec)


def run(args: argparse.Namespace) -> int:
    from xclip.data.annotations import (  # lazy: CLI start-up
        read_labels_csv,
        read_video_list,
        write_labels_csv,
        write_video_list,
    )
    from xclip.ownership import lock_output  # lazy: CLI start-up
    from xclip_app.outputs import check_output  # lazy: CLI start-up
    from xclip_app.splits.kinetics600 import (  # lazy: CLI start-up
        k600_novel_classes,
        k600_zeroshot_subsets,
    )
    from xclip_app.splits.kshot import kshot_entries  # lazy: CLI start-up
    from xclip_app.splits.ucf_hmdb import hmdb51_splits, ucf101_splits  # lazy: CLI start-up

    if args.protocol == "kshot":
        out = check_output(args.out, overwrite=args.overwrite, flag="-o", inputs=[args.list])
    else:  # a folder of lists: each file is replaced only if xclip wrote it (xclip.atomic)
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise UsageError(f"the output {out} is a file; give a folder as -o")
        lock_output(out)
    if args.protocol in ("ucf101", "hmdb51"):
        fn = ucf101_splits if args.protocol == "ucf101" else hmdb51_splits
        labels = "ucf_101_labels.csv" if args.protocol == "ucf101" else "hmdb_51_labels.csv"
        s = fn(args.official_dir, _splits(args.splits))
        files = s.write(out, labels)
        for k, (train, test) in sorted(s.splits.items()):
            print(f"split {k}: {len(train)} train, {len(test)} test videos")
        print(f"{len(s.class_names)} classes; wrote {len(files)} files to {out}")
        return 0
    if args.protocol == "kshot":
        entries = read_video_list(args.list)
        picked = kshot_entries(entries, args.k, args.seed, allow_fewer=args.allow_fewer)
        write_video_list(out, picked)
        n_cls = len({e.label for e in picked})
        print(
            f"{len(picked)} videos ({args.k} per class, {n_cls} classes, seed {args.seed}) -> {out}"
        )
        return 0
    # k600-zeroshot
    k400 = read_labels_csv(args.k400_labels)
    k600 = read_labels_csv(args.k600_labels)
    novel = k600_novel_classes(k400, k600, _renames(args.renames), exclude=args.exclude)
    print(novel.report())
    if args.expect is not None and len(novel.novel) != args.expect:
        raise UsageError(
            f"found {len(novel.novel)} novel classes, expected {args.expect}; adjust --renames "
            "or --exclude (the report above lists what was matched)"
        )
    entries = read_video_list(args.k600_list, num_classes=len(k600)) if args.k600_list else None
    subsets = k600_zeroshot_subsets(
        novel, k600, entries, num_subsets=args.subsets, size=args.size, seed=args.seed
    )
    out.mkdir(parents=True, exist_ok=True)
    write_labels_csv(out / "k600_novel_labels.csv", novel.novel)
    for s in subsets:
        files = (
            s.write(out)
            if entries is not None
            else [write_labels_csv(out / f"k600_zeroshot_labels_{s.index}.csv", s.class_names)]
        )
        print(
            f"subset {s.index}: {len(s.class_names)} classes, {len(s.entries)} videos -> {', '.join(f.name for f in files)}"
        )
    return 0
