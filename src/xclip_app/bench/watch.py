"""``bench watch``: does live recognition keep up? Latency p50/p95, the real-time factor and the
skipped windows of :class:`xclip.live.Watcher` on a camera-like stream, per model, precision and
stride, in one run.

The stream is a generated file (moving shapes, ``--size`` at ``--fps``, H.264, written once into
``clips_dir``) read with ``realtime=True``: frames arrive at the stream's own rate, as from a
camera, and the reader thread decodes them while the model works, on the same CPUs. Models have
random weights: the time a window costs depends on the architecture, not on what the weights
learned. ``demo`` is the demo's ``xclip_demo`` (8 frames of 32 px); any registered architecture
name (``xclip_b32_8f``) works.

Per configuration:

- **latency**: from the arrival of a window's last frame to its result (p50, p95, max);
- **real-time factor**: the model thread's seconds per window (sampling, preprocessing, model)
  divided by the stride: below 1 it keeps up with every window, above 1 it must skip;
- **skipped**: windows the model was too busy to take, out of all windows of the stream;
- where the time goes: per-window sample/preprocess/model means and the reader's decoding.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .generated_files import generate_once

__all__ = ["LABELS", "bench_watch", "format_watch_result"]

# ten label texts, as a user might watch for
LABELS = (
    "someone walking", "someone running", "a person waving", "a car driving by", "a dog",
    "people talking", "an empty room", "someone sitting down", "a door opening", "cooking",
)  # fmt: skip


def _stream_clip(clips_dir: Path, seconds: float, size: tuple[int, int], fps: int) -> Path:
    """A camera-like clip: a few shapes moving over a textured background (H.264, GOP 2 s)."""
    import numpy as np  # lazy: CLI start-up

    from xclip.data.synthetic import write_video  # lazy: CLI start-up

    w, h = size
    path = clips_dir / f"stream-{w}x{h}-{fps}fps-{seconds:g}s.mp4"
    if path.exists():
        return path
    clips_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    bg = rng.integers(30, 90, (h, w, 3), dtype=np.uint8)
    n = int(round(seconds * fps))

    def frames():
        for i in range(n):
            img = bg.copy()
            for j in range(3):
                x = int((w - 60) * (0.5 + 0.45 * np.sin(i / fps * (0.7 + j) + j)))
                y = int((h - 60) * (0.5 + 0.45 * np.cos(i / fps * (0.5 + j) + 2 * j)))
                img[y : y + 60, x : x + 60] = (200, 80 * j, 255 - 80 * j)
            yield img

    return generate_once(
        path, lambda f: write_video(f, frames(), fps=fps, gop=2 * fps, preset="veryfast")
    )


@contextlib.contextmanager
def _model(name: str):
    import torch  # lazy: CLI start-up

    import xclip  # lazy: CLI start-up
    from xclip_app.demo.arch import registered  # lazy: CLI start-up

    torch.manual_seed(0)
    if name == "demo":
        with registered() as arch:
            yield arch, xclip.create_model(arch)
        return
    yield name, xclip.create_model(name)


def bench_watch(
    clips_dir: str | os.PathLike,
    *,
    models: Sequence[str] = ("demo", "xclip_b32_8f"),
    precisions: Sequence[str] = ("fp32", "bf16"),
    strides: Sequence[float] = (0.5, 1.0, 2.0),
    window: float = 2.0,
    seconds: float = 20.0,
    size: tuple[int, int] = (640, 360),
    fps: int = 25,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every number of the benchmark (see the module doc)."""
    import numpy as np  # lazy: CLI start-up
    import torch  # lazy: CLI start-up

    from xclip.inference import PreparedVideo, VideoClassifier  # lazy: CLI start-up
    from xclip.live import Watcher  # lazy: CLI start-up
    from xclip_app.bench.harness import device_name  # lazy: CLI start-up

    clip = _stream_clip(Path(clips_dir), seconds, size, fps)
    result: dict[str, Any] = {
        "stream": {"path": str(clip), "seconds": seconds, "size": list(size), "fps": fps},
        "window": window, "labels": len(LABELS), "cpu": device_name(torch.device("cpu")),
        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "load_before": os.getloadavg()[0], "runs": [],
    }  # fmt: skip
    for name in models:
        with _model(name) as (arch, model):
            for precision in precisions:
                clf = VideoClassifier(
                    model, list(LABELS), device="cpu", precision=precision, compile=False
                )
                s = clf.num_frames
                warm = np.zeros((1, s, *size[::-1], 3), np.uint8)
                for _ in range(2):  # the first calls allocate: not what a running stream sees
                    clf.predict(PreparedVideo("warm-up", clf.preprocess(warm), np.zeros((1, s))))
                for stride in strides:
                    w = Watcher(clf, str(clip), window=window, stride=stride, realtime=True)
                    timings: dict[str, list[float]] = {}

                    def collect(e: object, timings: dict = timings) -> None:
                        for k, v in getattr(e, "timings", {}).items():
                            timings.setdefault(k, []).append(v)

                    w.subscribe(collect)
                    t0 = time.perf_counter()
                    st = w.run()
                    wall = time.perf_counter() - t0
                    total = st.windows + st.skipped
                    per_window = st.busy / st.windows if st.windows else float("nan")
                    run = {
                        "model": name, "arch": arch, "precision": precision, "stride": stride,
                        "frames_per_window": s, "windows": st.windows, "skipped": st.skipped,
                        "windows_in_stream": total,
                        "latency_p50": st.percentile(50), "latency_p95": st.percentile(95),
                        "latency_max": max(st.latencies) if st.latencies else None,
                        "seconds_per_window": per_window, "rtf": per_window / stride,
                        "stage_means": {k: float(np.mean(v)) for k, v in timings.items()},
                        # the fastest window: the cost with the CPUs to itself
                        "model_min": float(min(timings["model"])) if timings else None,
                        "decode_share": st.decode_seconds / wall, "wall": wall,
                        "dropped_frames": st.dropped_frames,
                        "load": os.getloadavg()[0],
                    }  # fmt: skip
                    result["runs"].append(run)
                    log(_row(run))
    return result


_HEAD = (
    f"{'model':<14} {'prec':<5} {'stride':>6} {'p50 ms':>7} {'p95 ms':>7} {'RTF':>5} "
    f"{'skipped':>9} {'model ms':>8} {'min':>5} {'prep ms':>7} {'decode':>6} {'load':>5}"
)


def _row(r: dict[str, Any]) -> str:
    ms = lambda v: f"{v * 1e3:7.0f}" if v is not None else "      -"  # noqa: E731
    st = r["stage_means"]
    return (
        f"{r['model']:<14} {r['precision']:<5} {r['stride']:>6g} {ms(r['latency_p50'])} "
        f"{ms(r['latency_p95'])} {r['rtf']:5.2f} {r['skipped']:>4}/{r['windows_in_stream']:<4} "
        f"{st.get('model', 0) * 1e3:8.0f} {(r.get('model_min') or 0) * 1e3:5.0f} "
        f"{st.get('preprocess', 0) * 1e3:7.0f} "
        f"{r['decode_share']:6.0%} {r['load']:5.1f}"
    )


def format_watch_result(result: dict[str, Any]) -> str:
    """The table of a :func:`bench_watch` result."""
    s = result["stream"]
    lines = [
        f"bench watch: {s['size'][0]}x{s['size'][1]} at {s['fps']} fps, {s['seconds']:g} s "
        f"paced as a camera; window {result['window']:g} s; {result['labels']} labels; "
        f"{result['cpu']} ({result['cpus']} CPUs, {result['torch_threads']} torch threads); "
        "random weights",
        "RTF: model-thread seconds per window / stride (< 1 keeps up); model ms: mean and "
        "fastest window; decode: the reader thread's share of the wall time; load: the "
        "1-minute load average after the run",
        _HEAD,
    ]
    lines += [_row(r) for r in result["runs"]]
    return "\n".join(lines)
