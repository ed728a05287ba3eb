"""GPU checks that a CPU cannot show: throughput, memory, bf16/fp16 training, compile.

One prepared script, meant to finish in a few minutes on one GPU:

    python benchmarks/gpu_check.py --json gpu.json

Prints a table per section and writes every number to ``--json``. The paper's throughput (views/s on
one V100, per view of 1 video + its class texts) is printed beside ours for orientation only: a
different GPU and software stack.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Callable

import torch

import xclip
from xclip.precision import autocast
from xclip_app.bench.harness import device_name, time_call

PAPER_VIEWS_PER_S_V100 = {"xclip_b32_8f": 136, "xclip_b16_8f": 33, "xclip_l14_8f": 8}
CUDA = torch.device("cuda")


def _time(fn: Callable[[], object], warmup: int = 3, repeats: int = 10) -> float:
    """Median seconds per call (the upper middle one for an even count), after ``warmup`` calls."""
    # Not torch.utils.benchmark.Timer: its timeit() adds warm-up calls of its own and reports a
    # mean, and the train step's loss_first/loss_last depend on exactly how many calls run.
    for _ in range(warmup):
        fn()
    return statistics.median_high([time_call(fn, CUDA) for _ in range(repeats)])


def inference_throughput(arch: str, batch: int, dtype: str, compile_: bool = False) -> dict:
    model = xclip.create_model(arch).cuda().eval()
    cfg = model.cfg
    tokens = xclip.tokenize([f"label {i}" for i in range(400)]).cuda()
    video = torch.randn(batch, cfg.num_frames, 3, cfg.image_size, cfg.image_size, device="cuda")
    with torch.no_grad():
        text = model.encode_text(tokens)
    fwd = torch.compile(model) if compile_ else model

    def step() -> None:
        with torch.no_grad(), autocast(dtype, CUDA):
            fwd(video, text_features=text)

    torch.cuda.reset_peak_memory_stats()
    t = _time(step, warmup=5 if compile_ else 3)
    out = {
        "arch": arch,
        "batch": batch,
        "dtype": dtype,
        "compile": compile_,
        "labels": 400,
        "s_per_batch": t,
        "views_per_s": batch / t,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30,
        "paper_v100_views_per_s": PAPER_VIEWS_PER_S_V100.get(arch),
    }
    return out


def train_step(arch: str, batch: int, dtype: str, checkpointing: bool) -> dict:
    model = xclip.create_model(arch).cuda().train()
    model.set_grad_checkpointing(checkpointing)
    cfg = model.cfg
    # The paper's default: text tower and logit scale frozen, text features computed once.
    for name, p in model.named_parameters():
        p.requires_grad_(any(k in name for k in ("visual.", "mit", "prompts")))
    tokens = xclip.tokenize([f"label {i}" for i in range(400)]).cuda()
    with torch.no_grad():
        text = model.encode_text(tokens)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=8e-6, betas=(0.9, 0.98), eps=1e-8, weight_decay=1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == "fp16")
    video = torch.randn(batch, cfg.num_frames, 3, cfg.image_size, cfg.image_size, device="cuda")
    target = torch.randint(0, 400, (batch,), device="cuda")
    losses = []

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast(dtype, CUDA):
            logits = model(video, text_features=text)
            loss = torch.nn.functional.cross_entropy(logits.float(), target)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.item())

    torch.cuda.reset_peak_memory_stats()
    t = _time(step, warmup=2, repeats=5)
    out = {
        "arch": arch,
        "batch": batch,
        "dtype": dtype,
        "grad_checkpointing": checkpointing,
        "s_per_step": t,
        "clips_per_s": batch / t,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "loss_finite": all(math.isfinite(x) for x in losses),
    }
    return out


def parity_gpu_vs_cpu() -> dict:
    torch.manual_seed(0)
    model = xclip.create_model("xclip_b32_8f").eval()
    tokens = xclip.tokenize(["eating spaghetti", "playing sports", "go shopping"])
    video = torch.randn(2, 8, 3, 224, 224)
    with torch.no_grad():
        cpu = model(video, tokens)
        model = model.cuda()
        gpu = model(video.cuda(), tokens.cuda()).cpu()
        with autocast("bf16", CUDA):
            bf16 = model(video.cuda(), tokens.cuda()).float().cpu()
        with autocast("fp16", CUDA):
            fp16 = model(video.cuda(), tokens.cuda()).float().cpu()
    return {
        "max_abs_fp32_gpu_vs_cpu": (cpu - gpu).abs().max().item(),
        "max_abs_bf16_vs_cpu": (cpu - bf16).abs().max().item(),
        "max_abs_fp16_vs_cpu": (cpu - fp16).abs().max().item(),
        "top1_equal_bf16": bool((cpu.argmax(-1) == bf16.argmax(-1)).all()),
        "top1_equal_fp16": bool((cpu.argmax(-1) == fp16.argmax(-1)).all()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true", help="fewer configurations")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this script only measures GPU behaviour")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    res: dict = {"device": device_name(CUDA), "torch": torch.__version__}
    print(f"device: {res['device']}  torch {res['torch']}", flush=True)

    res["parity"] = parity_gpu_vs_cpu()
    print("parity:", json.dumps(res["parity"]), flush=True)

    inf = []
    for arch in ("xclip_b32_8f", "xclip_b16_8f", "xclip_l14_8f"):
        for dtype in ("fp32", "bf16", "fp16"):
            if args.quick and dtype == "fp32" and arch != "xclip_b32_8f":
                continue
            r = inference_throughput(arch, 32 if "l14" not in arch else 16, dtype)
            torch.cuda.empty_cache()  # the model of the finished measurement is garbage now
            inf.append(r)
            print(
                f"infer {arch:<14} b={r['batch']:<3} {dtype:<5} {r['views_per_s']:8.1f} views/s "
                f"mem {r['peak_mem_gib']:5.2f} GiB (paper V100: {r['paper_v100_views_per_s']})",
                flush=True,
            )
    r = inference_throughput("xclip_b16_8f", 32, "bf16", compile_=True)
    inf.append(r)
    print(f"infer xclip_b16_8f compiled bf16 {r['views_per_s']:8.1f} views/s", flush=True)
    res["inference"] = inf

    train = []
    for arch, batch in (("xclip_b16_8f", 8), ("xclip_b32_8f", 32)):
        for dtype in ("bf16", "fp16", "fp32"):
            for ckpt in (False, True):
                if args.quick and (dtype == "fp32" or (ckpt and dtype == "fp16")):
                    continue
                r = train_step(arch, batch, dtype, ckpt)
                torch.cuda.empty_cache()
                train.append(r)
                print(
                    f"train {arch:<14} b={batch:<3} {dtype:<5} ckpt={ckpt!s:<5} "
                    f"{r['clips_per_s']:7.1f} clips/s  mem {r['peak_mem_gib']:5.2f} GiB  "
                    f"loss {r['loss_first']:.3f}->{r['loss_last']:.3f} finite={r['loss_finite']}",
                    flush=True,
                )
    res["train"] = train
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
