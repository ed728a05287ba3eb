"""The GPU figures in one prepared script: inference against transformers, training, memory, data.

    python benchmarks/gpu_check.py                      # on one GPU, about 10 minutes
    python benchmarks/gpu_check.py --quick -o /tmp/q.json   # the CPU dry run (tiny model, seconds)

Writes every figure to ``-o`` (default ``docs/measurements/gpu_check_<device>.json``, refused if it
exists without ``--overwrite``) and prints one line per row. Every row has an ``mfu`` and a
``ratio_vs_transformers`` field (``null`` where it does not apply):

- ``peak``: the card's practical bf16 matmul peak (:func:`~xclip_app.bench.harness.matmul_peak`),
  the denominator of every ``mfu``.
- ``parity``: the default CUDA path (bf16, compiled encoder) against fp32 eager: top-1 agreement.
- ``inference``: views/s of B/32, B/16, L/14 8f with 400 cached class texts through the library's
  own path (:class:`~xclip.inference.pipeline.VideoPipeline` defaults on the device: bf16, the
  batch size it chooses, the compiled encoder) and of ``transformers.XCLIPModel`` holding the same
  weights (bf16 autocast, SDPA, :func:`~xclip_app.bench.hf_reference.hf_forward_cached`) in the
  same run, from the same host memory. ``mfu`` = views/s x useful FLOPs per view / peak, useful
  FLOPs = the paper's GFLOPs per view x 2 (:func:`xclip.count_flops`, paper convention).
- ``train``: B/16 8f bf16, text tower frozen and its features cached (the paper's default), fused
  AdamW, no host synchronisation per step: clips/s, ``mfu`` (useful FLOPs = 3 x the video side's
  forward: forward plus backward of what is trained), peak memory, at batch 8, the largest batch
  that fits (doubling until out of memory) and compiled at batch 8; and the paper's Table 7 point
  (2 videos x 8 frames, visual fine-tuning; the paper reports 6 GB).
- ``data``: decode + training transforms clips/s of the DataLoader at 16 workers on raw (1280x720)
  and prepared (short side 256) clips, and ``feeds_training`` = that / the training step's clips/s;
  GPU decoding (torchcodec on CUDA) where it installs.

``--quick`` runs every section with the tiny ``xclip_test`` model, 16 labels, small batches and 2
workers on whatever device there is (the CPU here): it checks the script, not the card.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import xclip
from xclip.atomic import atomic_write_text
from xclip.data.soft_targets import smoothed_one_hot
from xclip.data.synthetic import make_indexed_clip
from xclip.flops import count_flops
from xclip.inference.pipeline import VideoPipeline
from xclip_app.bench.data import dataloader_throughput, load_transforms
from xclip_app.bench.harness import device_name, matmul_peak, package_version, sync, time_call
from xclip_app.bench.hf_reference import hf_forward_cached
from xclip_app.bench.model import build_pair
from xclip_app.exit_codes import UsageError
from xclip_app.outputs import check_output
from xclip_app.train.classifier import TrainableClassifier
from xclip_app.train.optim import build_optimizer, freeze_text
from xclip_app.train.step import TrainStep

ROOT = Path(__file__).resolve().parents[1]
FULL_ARCHS = ("xclip_b32_8f", "xclip_b16_8f", "xclip_l14_8f")
TARGET_VIEWS_PER_S = {"xclip_b32_8f": 4500, "xclip_b16_8f": 1600, "xclip_l14_8f": 400}
TARGET_RATIO = 3.0
TARGET_TRAIN_MFU = 0.35
PAPER_TABLE7_GB = 6.0
NUM_LABELS = 400
SECTIONS = ("inference", "train", "data")
QUICK_LABELS = 16


def _time(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds per call after ``warmup`` calls (device synchronised around each call)."""
    for _ in range(warmup):
        fn()
    return statistics.median_high([time_call(fn, device) for _ in range(repeats)])


def _peak_mem(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def _reset_mem(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _row(section: str, **fields: Any) -> dict[str, Any]:
    row = {"section": section, "mfu": None, "ratio_vs_transformers": None, **fields}
    print(
        "  ".join(f"{k}={_fmt(v)}" for k, v in row.items() if v is not None), flush=True
    )  # fmt: skip
    return row


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _labels_tokens(cfg: xclip.XCLIPConfig, device: torch.device, quick: bool):
    tokens = xclip.tokenize(
        [f"a video of action number {i}" for i in range(QUICK_LABELS if quick else NUM_LABELS)],
        context_length=cfg.context_length,
    ).to(device)
    eot = tokens.argmax(dim=-1)
    n = int(eot.max()) + 1
    mask = (torch.arange(n, device=device)[None] <= eot[:, None]).long()
    return tokens, tokens[:, :n], mask


# -- inference --------------------------------------------------------------------------------
def inference(
    arch: str, device: torch.device, peak: float, quick: bool, precision: str, compile_: Any
) -> list[dict[str, Any]]:
    _reset_mem(device)
    ours, hf = build_pair(arch, device)
    cfg = ours.cfg
    tokens, ids, mask = _labels_tokens(cfg, device, quick)
    pipe = VideoPipeline(
        ours, device=device, precision=precision, batch_size=4 if quick else None,
        compile=compile_,
    )  # fmt: skip
    b = pipe.batch_size
    gen = torch.Generator().manual_seed(0)
    host = torch.randn(b, cfg.num_frames, 3, cfg.image_size, cfg.image_size, generator=gen)
    if device.type == "cuda":
        host = host.pin_memory()
    with torch.inference_mode(), pipe.autocast():
        text = ours.encode_text(tokens)
        hf_text = hf.get_text_features(input_ids=ids, attention_mask=mask).pooler_output

    def ours_step() -> torch.Tensor:
        feats = pipe.encode(host)
        with torch.inference_mode(), pipe.autocast():
            return ours.logits(feats, text)

    def hf_step() -> torch.Tensor:
        with torch.inference_mode(), pipe.autocast():
            return hf_forward_cached(hf, host.to(device, non_blocking=True), hf_text)

    # agreement of the two on these inputs (same weights): top-1 per view
    agree = float((ours_step().argmax(-1) == hf_step().argmax(-1)).float().mean())
    warm = 2 if quick else 5
    if pipe._encoder is not None:
        warm += pipe._encoder.eager_calls  # compile="auto" compiles after its eager batches
    reps = 2 if quick else 10
    t_ours = _time(ours_step, device, warm, reps)
    t_hf = _time(hf_step, device, 2 if quick else 5, reps)
    flops_view = 2e9 * count_flops(arch).total
    ours_vps, hf_vps = b / t_ours, b / t_hf
    target = TARGET_VIEWS_PER_S.get(arch)
    rows = [
        _row(
            "inference", impl="xclip", arch=arch, batch=b, precision=pipe.precision,
            compiled=pipe._encoder is not None, labels=len(tokens), views_per_s=ours_vps,
            mfu=ours_vps * flops_view / peak, ratio_vs_transformers=ours_vps / hf_vps,
            top1_agreement_with_transformers=agree, target_views_per_s=target,
            target_met=None if target is None else bool(
                ours_vps >= target and ours_vps / hf_vps >= TARGET_RATIO
            ),
        ),
        _row(
            "inference", impl="transformers", arch=arch, batch=b, precision=pipe.precision,
            compiled=False, labels=len(tokens), views_per_s=hf_vps,
            mfu=hf_vps * flops_view / peak, ratio_vs_transformers=1.0,
        ),
    ]  # fmt: skip
    return rows  # the models are freed on return; the next section resets the memory stats


def parity(arch: str, device: torch.device, precision: str, compile_: str) -> dict[str, Any]:
    """The device's default path (precision, compile) against fp32 eager on the same device;
    the compiled encoder compiles from its first batch here."""
    torch.manual_seed(0)
    model = xclip.create_model(arch).eval()
    cfg = model.cfg
    tokens, _, _ = _labels_tokens(cfg, device, quick=True)
    clips = torch.randn(8, cfg.num_frames, 3, cfg.image_size, cfg.image_size)
    ref = VideoPipeline(model, device=device, precision="fp32", batch_size=4, compile=False)
    fast = VideoPipeline(model, device=device, precision=precision, batch_size=4, compile=compile_)
    if fast._encoder is not None:
        fast._encoder.eager_calls = 0
    with torch.inference_mode():
        text = model.encode_text(tokens)
        a = model.logits(ref.encode(clips), text).float()
        with fast.autocast():
            b = model.logits(fast.encode(clips), text).float()
    return _row(
        "parity", arch=arch, precision=precision, compiled=fast._encoder is not None,
        max_abs_logit_diff=float((a - b).abs().max()),
        top1_agreement=float((a.argmax(-1) == b.argmax(-1)).float().mean()),
    )  # fmt: skip


# -- training ---------------------------------------------------------------------------------
def train(
    arch: str, batch: int, device: torch.device, peak: float, quick: bool, precision: str,
    compile_: bool = False, what: str = "train",
) -> dict[str, Any]:  # fmt: skip
    """One configuration of the training step: the trainer's own
    (:class:`~xclip_app.train.step.TrainStep` on a :class:`TrainableClassifier`: AdamW fused on
    CUDA, the soft-target CE on cached class-text features, smoothed one-hot targets), with the
    loss read back once at the end."""
    _reset_mem(device)
    torch.manual_seed(0)
    clf = TrainableClassifier(xclip.create_model(arch)).to(device).train()
    freeze_text(clf)
    cfg = clf.model.cfg
    tokens, _, _ = _labels_tokens(cfg, device, quick)
    text = clf.text_features(tokens)
    opt = build_optimizer(clf, 8e-6)
    fwd = torch.compile(clf) if compile_ else clf
    step_fn = TrainStep(fwd, opt, precision=precision, device=device, text_features=text)
    video = torch.randn(batch, cfg.num_frames, 3, cfg.image_size, cfg.image_size, device=device)
    labels = torch.randint(0, len(tokens), (batch,))
    target = smoothed_one_hot(labels, len(tokens), 0.1).to(device)
    losses: list[torch.Tensor] = []

    def step() -> None:
        losses.append(step_fn(video, target))

    n_steps = 2 if quick else 10
    warm = 1 if quick else (4 if compile_ else 2)
    for _ in range(warm):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        step()
    sync(device)
    dt = (time.perf_counter() - t0) / n_steps
    fl = count_flops(arch)
    video_side = fl.components["vision"] + fl.components["mit"] + fl.components["prompt"]
    useful = 3 * 2e9 * video_side  # forward + backward (2x forward) of the trained video side
    loss_vals = torch.stack(losses).float().cpu()
    clips_s = batch / dt
    row = _row(
        "train", what=what, arch=arch, batch=batch, precision=precision, compiled=compile_,
        fused_optimizer=bool(opt.defaults.get("fused")), clips_per_s=clips_s,
        mfu=clips_s * useful / peak, peak_mem_gib=_peak_mem(device),
        loss_finite=bool(torch.isfinite(loss_vals).all()),
    )  # fmt: skip
    return row


def largest_batch(
    arch: str, device: torch.device, peak: float, quick: bool, precision: str, start: int
) -> dict[str, Any] | None:
    """The training row of the largest power-of-two batch that fits (on CUDA; doubling from
    ``start`` until out of memory, at most 512; in ``--quick`` two doublings)."""
    best, b = None, start
    limit = start * 2 if quick else 512
    while b <= limit:
        try:
            best = train(arch, b, device, peak, quick, precision, what="largest_batch")
        except torch.OutOfMemoryError:
            _reset_mem(device)
            break
        b *= 2
    return best


# -- data -------------------------------------------------------------------------------------
def data_pipeline(
    device: torch.device, quick: bool, workers: int, train_clips_per_s: float | None, tmp: str
) -> list[dict[str, Any]]:
    seconds = 1 if quick else 10
    sizes = {"raw": ((1280, 720), 250), "prepared": ((456, 256), 30)}
    if quick:
        sizes = {"raw": ((320, 240), 250), "prepared": ((96, 64), 30)}
    tf = load_transforms("train")
    rows = []
    for kind, (size, gop) in sizes.items():
        paths = []
        for i in range(2 if quick else 4):
            p = os.path.join(tmp, f"{kind}_{i}.mp4")
            make_indexed_clip(p, int(seconds * 30), size=size, fps=30, gop=gop)
            paths.append(p)
        cps = dataloader_throughput(
            paths,
            8,
            workers,
            transforms=tf,
            clips=16 if quick else 256,
            batch_size=4 if quick else 8,
        )
        rows.append(
            _row(
                "data", clips=kind, size=f"{size[0]}x{size[1]}", frames=8, workers=workers,
                clips_per_s=cps,
                feeds_training=None if not train_clips_per_s else cps / train_clips_per_s,
            )
        )  # fmt: skip
    rows.append(gpu_decoding(device, os.path.join(tmp, "raw_0.mp4")))
    return rows


def gpu_decoding(device: torch.device, path: str) -> dict[str, Any]:
    """torchcodec decoding on the GPU (NVDEC) of 8 frames of a clip, where it installs."""
    if device.type != "cuda":
        return _row("data", clips="raw", decoder="torchcodec-cuda", status="skipped: no CUDA")
    try:
        from torchcodec.decoders import VideoDecoder  # lazy: optional dependency
    except ImportError as e:
        return _row("data", clips="raw", decoder="torchcodec-cuda", status=f"not installed: {e}")

    def read() -> None:
        dec = VideoDecoder(path, device="cuda")
        n = dec.metadata.num_frames
        dec.get_frames_at([int((i + 0.5) * n / 8) for i in range(8)])

    try:
        t = _time(read, device, 1, 5)
    except RuntimeError as e:  # torchcodec's error for a build or driver without NVDEC
        return _row("data", clips="raw", decoder="torchcodec-cuda", status=f"failed: {e}")
    return _row("data", clips="raw", decoder="torchcodec-cuda", frames=8, clips_per_s=1 / t)


# -- the run ----------------------------------------------------------------------------------
def _default_output(device: torch.device, quick: bool) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "_", device_name(device).lower()).strip("_")[:40] or "device"
    slug = slug.replace("nvidia_", "")
    return ROOT / "docs" / "measurements" / f"gpu_check_{slug}{'_quick' if quick else ''}.json"


def run(args: argparse.Namespace) -> int:
    if args.device:
        device = torch.device(args.device)
    else:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda but CUDA is not available; use --quick on a CPU")
    if device.type != "cuda" and not args.quick:
        raise UsageError(
            "no CUDA device: the full check measures a GPU; use --quick for the dry run"
        )
    out = check_output(args.output or _default_output(device, args.quick), overwrite=args.overwrite)
    quick = args.quick
    precision = "bf16" if device.type == "cuda" else "fp32"
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    archs = ["xclip_test"] if quick else list(args.archs or FULL_ARCHS)
    t_run = time.perf_counter()
    res: dict[str, Any] = {
        "device": device_name(device),
        "torch": torch.__version__,
        "transformers": package_version("transformers"),
        "command": " ".join(["python", "benchmarks/gpu_check.py", *sys.argv[1:]]),
        "quick": quick,
        "cpu_cores": len(os.sched_getaffinity(0)),
    }
    print(f"device: {res['device']}  torch {res['torch']}", flush=True)
    pk = matmul_peak(
        device, precision, n=256 if quick else None, seconds=0.2 if quick else 1.0
    )  # fmt: skip
    peak = pk["gflops_per_s"] * 1e9
    rows = [_row("peak", precision=precision, gflops_per_s=pk["gflops_per_s"], n=pk["n"])]
    res["rows"] = rows
    res["targets"] = {
        "views_per_s": TARGET_VIEWS_PER_S,
        "ratio_vs_transformers": TARGET_RATIO,
        "train_mfu_b16_8f": TARGET_TRAIN_MFU,
        "paper_table7_gb": PAPER_TABLE7_GB,
    }
    sections = args.sections or SECTIONS

    def save(complete: bool) -> None:
        # after every section: a run stopped by a time limit keeps what it measured (the output
        # was checked before the first write; later writes replace this run's own file)
        res["complete"], res["seconds"] = complete, time.perf_counter() - t_run
        atomic_write_text(out, json.dumps(res, indent=1) + "\n", overwrite=args.overwrite or saved)
        saved.append(out)

    saved: list[Path] = []

    if "inference" in sections:
        rows.append(parity(archs[0] if quick else "xclip_b16_8f", device, precision, args.compile))
        for arch in archs:
            rows.extend(inference(arch, device, peak, quick, precision, args.compile))
            save(False)
    train_cps = None
    if "train" in sections:
        t_arch = "xclip_test" if quick else "xclip_b16_8f"
        b8 = 2 if quick else 8
        b8_row = train(t_arch, b8, device, peak, quick, precision)
        rows.append(b8_row)
        train_cps = b8_row["clips_per_s"]
        big = largest_batch(t_arch, device, peak, quick, precision, start=b8 * 2)
        if big is not None:
            rows.append(big)
        if not quick:
            rows.append(train(t_arch, b8, device, peak, quick, precision, compile_=True))
        t7 = train(t_arch, 2, device, peak, quick, precision, what="paper_table7")
        t7["paper_gb"] = PAPER_TABLE7_GB
        rows.append(t7)
        save(False)
    if "data" in sections:
        with tempfile.TemporaryDirectory() as tmp:
            rows.extend(data_pipeline(device, quick, 2 if quick else args.workers, train_cps, tmp))
    save(True)
    print(f"wrote {out} ({res['seconds']:.0f} s)", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-o", "--output", help="the JSON file (default: docs/measurements/...)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing -o file")
    ap.add_argument("--quick", action="store_true", help="the dry run: tiny model, any device")
    ap.add_argument("--device", help="cuda (default when available), cuda:1, cpu (with --quick)")
    ap.add_argument("--archs", nargs="+", choices=FULL_ARCHS, help="inference architectures")
    ap.add_argument("--workers", type=int, default=16, help="DataLoader workers (default 16)")
    ap.add_argument(
        "--sections", nargs="+", choices=SECTIONS, help="run only these (default: all; the peak "
        "always); the file is rewritten after each section, with complete=false until the end",
    )  # fmt: skip
    ap.add_argument(
        "--compile",
        choices=("auto", "on", "off", "cudagraphs"),
        default="auto",
        help="the inference pipeline's compile= (default auto: what classify/embed use)",
    )
    args = ap.parse_args(argv)
    args.compile = {"on": True, "off": False}.get(args.compile, args.compile)
    try:
        return run(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
