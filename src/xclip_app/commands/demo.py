"""``xclip-video demo``: the whole inference path on a generated clip, timed stage by stage.

Writes a small mp4 of a moving coloured shape, decodes it with TSN test sampling, preprocesses it
as the weights expect, and classifies it against a few label texts. Without downloaded weights the
model is randomly initialised (the probabilities then show that the pipeline runs, not what a
trained model believes); pass ``--model`` with a checkpoint or a released-weights name to use real
weights.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

NAME = "demo"
HELP = "generate a video clip and classify it end to end (decode, preprocess, model), with timings"

DEFAULT_LABELS = [
    "a red circle moving left",
    "a red circle moving right",
    "a blue square moving up",
    "a green triangle growing",
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="xclip_b32_8f",
        help="architecture name (random init), ARCH.TAG released weights, or a checkpoint path "
        "(default: %(default)s)",
    )
    p.add_argument("--labels", default=",".join(DEFAULT_LABELS), help="comma-separated label texts")
    p.add_argument("--out", default="runs/demo", help="folder for the generated clip")
    p.add_argument("--seconds", type=float, default=4.0, help="length of the generated clip")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = library default)")


def _moving_circle(num_frames: int, width: int = 320, height: int = 240):
    import numpy as np

    yy, xx = np.mgrid[0:height, 0:width]
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for i in range(num_frames):
        cx = width * (0.8 - 0.6 * i / max(1, num_frames - 1))  # right to left
        cy = height / 2 + 10 * math.sin(i / 6)
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 < (height / 8) ** 2
        frame = frames[i]
        frame[...] = (40, 40, 40)
        frame[inside] = (220, 30, 30)
    return frames


def run(args: argparse.Namespace) -> int:
    import torch

    import xclip
    from xclip.data.decode import open_video
    from xclip.data.sampling import sample_test_indices
    from xclip.data.synthetic import write_video
    from xclip.data.transforms import EvalTransform

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    labels = [s.strip() for s in args.labels.split(",") if s.strip()]
    if not labels:
        raise ValueError("--labels is empty; give comma-separated label texts, e.g. --labels 'a,b'")
    if len(set(labels)) != len(labels):
        raise ValueError("--labels has duplicates; give each label once")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clip_path = out / "moving_circle.mp4"
    fps = 30
    t0 = time.perf_counter()
    write_video(clip_path, _moving_circle(max(8, int(args.seconds * fps))), fps=fps, codec="h264")
    t_write = time.perf_counter() - t0

    t0 = time.perf_counter()
    if args.model in xclip.list_models():
        model = xclip.create_model(args.model)
        random_weights = True
    else:
        model = xclip.load_model(args.model)
        random_weights = False
    model.eval()
    t_build = time.perf_counter() - t0
    pre = model.preprocess

    t0 = time.perf_counter()
    with open_video(clip_path) as reader:
        indices = sample_test_indices(reader.num_frames, pre.num_frames)
        frames = reader.get_frames(indices)  # uint8 [T, H, W, 3]
    t_decode = time.perf_counter() - t0

    t0 = time.perf_counter()
    clip = EvalTransform.from_preprocess(pre)(frames)  # [1, T, 3, S, S]
    t_pre = time.perf_counter() - t0

    with torch.inference_mode():
        t0 = time.perf_counter()
        text = model.encode_text(xclip.tokenize(labels))
        t_text = time.perf_counter() - t0
        t0 = time.perf_counter()
        probs = model(clip, text_features=text).softmax(-1)[0]
        t_video = time.perf_counter() - t0

    c = model.cfg
    print(f"clip     {clip_path} ({len(frames)} of {reader.num_frames} frames sampled: {indices.tolist()})")
    print(
        f"model    {args.model}: {c.vision_width}-wide ViT/{c.patch_size}, {c.num_frames} frames at "
        f"{c.image_size}px, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters"
        + (" (random weights)" if random_weights else "")
    )
    print()
    print(f"{'rank':>4}  {'prob':>6}  label")
    for rank, k in enumerate(probs.argsort(descending=True).tolist(), 1):
        print(f"{rank:>4}  {probs[k].item():6.3f}  {labels[k]}")
    print()
    print(
        f"timings: write clip {t_write:.2f}s | build model {t_build:.2f}s | decode {t_decode * 1e3:.0f}ms"
        f" | preprocess {t_pre * 1e3:.0f}ms | text ({len(labels)} labels) {t_text * 1e3:.0f}ms"
        f" | video+prompts+logits {t_video * 1e3:.0f}ms"
    )
    if random_weights:
        print(
            "note: random weights, so the ranking is arbitrary. Use --model with a checkpoint "
            "(e.g. xclip_b32_8f.kinetics400 on a connected machine) for real predictions."
        )
    return 0
