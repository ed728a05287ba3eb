"""The benchmark harness: synchronised per-call timing, summary statistics, the machine's matmul
peak and a description of the machine (device name, package versions).

Per-call timings wait for the device before starting the clock and again before stopping it, so a
GPU's asynchronous queue is inside the measured time and nothing else is.
"""

from __future__ import annotations

import importlib.metadata
import math
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from xclip.precision import PRECISIONS

__all__ = [
    "device_name",
    "matmul_peak",
    "median_min",
    "package_version",
    "sync",
    "time_call",
]


def sync(device: torch.device) -> None:
    """Wait for every queued kernel on ``device`` (a no-op on CPU, which runs synchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device) -> float:
    """Wall seconds of one call of ``fn``, ``device`` synchronised before and after."""
    # One call per measurement, not torch.utils.benchmark.Timer.timeit: that always runs >= 2
    # warm-up calls first, which would undo the benchmarks' one-call-per-configuration interleaving.
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def median_min(times: Sequence[float]) -> tuple[float, float]:
    """(median, minimum) of per-call seconds."""
    return statistics.median(times), min(times)


def matmul_peak(
    device: torch.device, precision: str, n: int | None = None, seconds: float = 1.0
) -> dict[str, Any]:
    """The practical matmul peak: GFLOP/s (2 per multiply-add) of an ``n x n @ n x n`` matmul in
    ``precision`` (a :data:`xclip.precision.PRECISIONS` name), from the best single call of about
    ``seconds`` of calls (at least 3, at most 200; ``n`` 8192 on CUDA, 2048 on CPU)."""
    # Not Timer.blocked_autorange: it reports block means, not the best single call, and merely
    # importing torch.utils.benchmark logs a CUDA_HOME warning on CUDA builds without a GPU.
    n = n or (8192 if device.type == "cuda" else 2048)
    dtype = PRECISIONS[precision]
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)
    sync(device)
    best, total, reps = math.inf, 0.0, 0
    while total < seconds or reps < 3:
        dt_s = time_call(lambda: torch.mm(a, b), device)
        best, total, reps = min(best, dt_s), total + dt_s, reps + 1
        if reps >= 200:
            break
    return {"n": n, "gflops_per_s": 2 * n**3 / best / 1e9, "best_s": best, "reps": reps}


def device_name(device: torch.device) -> str:
    """The GPU's name on CUDA; on CPU the processor model from ``/proc/cpuinfo`` when readable,
    else what :mod:`platform` knows."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return name


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
