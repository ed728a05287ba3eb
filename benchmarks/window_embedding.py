"""Window embedding throughput against whole-video embedding, on the same videos.

    python benchmarks/window_embedding.py --videos 3 --seconds 20 --window 4 --stride 2

Generates ``--videos`` clips of ``--seconds`` at 30 fps (320x240, H.264), then, alternating
(``--repeats`` rounds, best round reported), times

- whole videos: :func:`xclip.inference.embed_videos` (one clip of T frames a video): videos/s;
- windows: :func:`xclip.inference.embed_windows` (one clip of T frames every ``--stride`` s, each
  ``--window`` s long, one decoder a video): windows/s;

with the same model (``--arch``, random weights), views, batch size and threads. Both are model
calls of the same shape, so windows/s over videos/s says what the window path costs beyond the
model: decoding more frames, and the windows' bookkeeping. ``--json FILE`` writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import xclip
from xclip.atomic import atomic_write_text
from xclip.data.synthetic import make_indexed_clip
from xclip.inference import embed_videos, embed_windows


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="xclip_b32_8f")
    p.add_argument("--videos", type=int, default=3)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--window", type=float, default=4.0)
    p.add_argument("--stride", type=float, default=2.0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    model = xclip.create_model(args.arch).eval()
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.videos):
            path = Path(tmp) / f"v{i}.mp4"
            make_indexed_clip(path, int(args.seconds * 30), size=(320, 240), fps=30, gop=30,
                              seed=i)  # fmt: skip
            paths.append(path)
        whole, windows, n_windows = [], [], 0
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            embed_videos(model, paths, keep_tokens=False, device="cpu", precision="fp32",
                         batch_size=args.batch_size, compile=False, workers=1)  # fmt: skip
            whole.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            index, _ = embed_windows(model, paths, args.window, args.stride, device="cpu",
                                     precision="fp32", batch_size=args.batch_size)  # fmt: skip
            windows.append(time.perf_counter() - t0)
            n_windows = len(index)
    r = {
        "arch": args.arch, "videos": args.videos, "seconds_per_video": args.seconds,
        "window": args.window, "stride": args.stride, "windows": n_windows,
        "threads": torch.get_num_threads(), "whole_s": min(whole), "windows_s": min(windows),
        "videos_per_s": args.videos / min(whole), "windows_per_s": n_windows / min(windows),
    }  # fmt: skip
    r["ratio"] = r["windows_per_s"] / r["videos_per_s"]
    print(f"{args.arch}, {args.videos} videos of {args.seconds:g} s (320x240, 30 fps), "
          f"{r['threads']} threads, best of {args.repeats}:")  # fmt: skip
    print(f"  whole videos: {r['videos_per_s']:.2f} videos/s ({r['whole_s']:.1f} s)")
    print(f"  windows of {args.window:g} s every {args.stride:g} s: {r['windows_per_s']:.2f} "
          f"windows/s ({n_windows} windows, {r['windows_s']:.1f} s)")  # fmt: skip
    print(f"  windows/s over videos/s: {r['ratio']:.2f}")
    if args.json:
        atomic_write_text(args.json, json.dumps(r, indent=1))
    return r


if __name__ == "__main__":
    main()
