"""The demo's moments stage: find, in long videos, the moment where something happens, from its
words alone (every ``xclip-video demo``; seconds on top of the training stages).

Long videos are the demo's validation clips of the video-training classes (clips the model was
not trained on) put end to end, several classes a video, so every segment's class, start and end
are known. They are embedded as a moments library (windows of one clip's length, every half
clip: :func:`xclip.inference.embed_windows`) with the main run's model, and each class name is a
text query (:func:`xclip.inference.search_moments`). Reported, as in temporal grounding:

- R@1 and R@5 at tIoU >= 0.5: the share of queries whose best (best five) moments include one
  that overlaps a segment of the query's class in the same video with temporal IoU >= 0.5;
- mAP: per query, the average precision of its ranked moments (up to :data:`MAP_DEPTH`), a
  moment counting as correct when it matches a not yet matched segment of the class with
  tIoU >= 0.5; the mean over the queries. Chance is measured too: the same metrics for moments
  ranked at random (:data:`CHANCE_SEED`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from xclip.data import synthetic
from xclip.data.annotations import read_labels_csv, read_video_list
from xclip.data.video import read_frames
from xclip.inference import Moment, embed_windows, search_moments
from xclip.ownership import clear, seal_dir

__all__ = ["MAP_DEPTH", "report_lines", "run_moments_study", "score_moments", "temporal_iou"]

MAP_DEPTH = 50  # moments ranked per query for the mAP
TIOU = 0.5
CHANCE_SEED = 0


def temporal_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Intersection over union of two time ranges ``(start, end)``."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def _matches(m: tuple[str, float, float], truth: list[tuple[str, float, float]]) -> list[int]:
    return [i for i, (p, s, e) in enumerate(truth)
            if p == m[0] and temporal_iou((m[1], m[2]), (s, e)) >= TIOU]  # fmt: skip


def score_moments(
    found: dict[str, list[tuple[str, float, float]]],
    truth: dict[str, list[tuple[str, float, float]]],
) -> dict[str, float]:
    """R@1, R@5 (percent) and mAP (percent) of ranked moments ``(path, start, end)`` per query
    against its segments ``truth[query]``."""
    r1 = r5 = 0
    aps = []
    for q, segments in truth.items():
        ranked = found.get(q, [])
        r1 += any(_matches(m, segments) for m in ranked[:1])
        r5 += any(_matches(m, segments) for m in ranked[:5])
        used: set[int] = set()
        hits, precisions = 0, []
        for rank, m in enumerate(ranked[:MAP_DEPTH], 1):
            free = [i for i in _matches(m, segments) if i not in used]
            if free:
                used.add(free[0])
                hits += 1
                precisions.append(hits / rank)
        aps.append(sum(precisions) / len(segments))
    n = max(1, len(truth))
    return {"r1": 100 * r1 / n, "r5": 100 * r5 / n, "map": 100 * float(np.mean(aps or [0.0]))}


def _build_videos(data_dir: Path, out: Path, *, num_videos: int, per_video: int, fps: int,
                  seed: int) -> list[dict[str, Any]]:  # fmt: skip
    """Long videos of ``per_video`` validation clips of distinct classes each; their segments."""
    names = read_labels_csv(data_dir / "labels.csv")
    by_class: dict[int, list[str]] = {}
    for e in read_video_list(data_dir / "val.txt"):
        by_class.setdefault(e.label, []).append(e.path)
    rng = np.random.default_rng(seed)
    made = []
    for v in range(num_videos):
        classes = rng.choice(sorted(by_class), size=min(per_video, len(by_class)), replace=False)
        frames, segments, t = [], [], 0.0
        for c in classes.tolist():
            clip = by_class[c][int(rng.integers(len(by_class[c])))]
            src = data_dir / "videos" / clip
            with_frames = read_frames(str(src), np.arange(_num_frames(src)))
            frames.append(with_frames)
            dur = len(with_frames) / fps
            segments.append({"class": names[c], "start": t, "end": t + dur, "clip": clip})
            t += dur
        path = out / f"long_{v:02d}.mp4"
        synthetic.write_video(path, np.concatenate(frames), fps=fps, codec="mpeg4", gop=16)
        made.append({"path": str(path), "duration": t, "segments": segments})
    return made


def _num_frames(path: Path) -> int:
    from xclip.data.video import open_video  # lazy: CLI start-up

    with open_video(str(path)) as r:
        return r.num_frames


def run_moments_study(
    *,
    out: Path,
    data_dir: Path,
    checkpoint: str,
    cache,
    train_key: str,
    fps: int,
    clip_seconds: float,
    log: Callable[[str], None],
    num_videos: int = 8,
    per_video: int = 6,
    seed: int = 0,
) -> dict[str, Any]:
    """Build the long videos, embed them as a library with the main run's model, search every
    class name; the stage ``moments`` (cached on the main run and these settings)."""
    folder = out / "moments"
    settings = {"num_videos": num_videos, "per_video": per_video, "seed": seed,
                "window": clip_seconds, "stride": clip_seconds / 2, "tiou": TIOU,
                "map_depth": MAP_DEPTH}  # fmt: skip

    def study() -> dict[str, Any]:
        from xclip_app.train.classifier import load_classifier  # lazy: CLI start-up

        clear(folder, "demo-stage")
        folder.mkdir(parents=True)
        t0 = time.perf_counter()
        videos = _build_videos(data_dir, folder, num_videos=num_videos, per_video=per_video,
                               fps=fps, seed=seed)  # fmt: skip
        model = load_classifier(checkpoint).model.eval()
        t1 = time.perf_counter()
        index, fails = embed_windows(model, [v["path"] for v in videos], clip_seconds,
                                     clip_seconds / 2, device="cpu", precision="fp32")  # fmt: skip
        t2 = time.perf_counter()
        if fails:
            raise RuntimeError(f"the study's own videos failed to embed: {fails[0]}")
        truth: dict[str, list[tuple[str, float, float]]] = {}
        for v in videos:
            for s in v["segments"]:
                truth.setdefault(s["class"], []).append((v["path"], s["start"], s["end"]))
        found: dict[str, list[tuple[str, float, float]]] = {}
        for q in truth:
            ms: list[Moment] = search_moments(q, index, model, top_k=MAP_DEPTH)
            found[q] = [(m.path, m.start, m.end) for m in ms]
        t3 = time.perf_counter()
        # chance: every window of the library as a moment, in a random order
        rng = np.random.default_rng(CHANCE_SEED)
        rows = [(index.videos[int(i)], float(s), float(e))
                for i, s, e in zip(index.video, index.start, index.end, strict=True)]  # fmt: skip
        chance = {q: [rows[j] for j in rng.permutation(len(rows))] for q in truth}
        seal_dir(folder, "demo-stage")  # provably ours: a redo may delete it
        return {
            **settings,
            **score_moments(found, truth),
            "chance": score_moments(chance, truth),
            "queries": len(truth),
            "segments": sum(len(s) for s in truth.values()),
            "videos": len(videos),
            "windows": len(index),
            "seconds": {
                "build": round(t1 - t0, 2),
                "embed": round(t2 - t1, 2),
                "search": round(t3 - t2, 2),
            },  # fmt: skip
        }

    r = cache.run("moments", [train_key, settings], study)
    log(f"  {r['videos']} long videos, {r['segments']} segments of {r['queries']} classes, "
        f"{r['windows']} windows: R@1 {r['r1']:.1f}%, R@5 {r['r5']:.1f}%, mAP {r['map']:.1f}% "
        f"(chance R@1 {r['chance']['r1']:.1f}%, mAP {r['chance']['map']:.1f}%)")  # fmt: skip
    return r


def report_lines(r: dict[str, Any]) -> list[str]:
    """The study's section of report.md."""
    c = r["chance"]
    return [
        "## Moments: finding a segment of a long video from its class name",
        "",
        f"{r['videos']} long videos, each {r['per_video']} validation clips of distinct "
        f"video-training classes end to end ({r['segments']} segments, {r['queries']} text "
        f"queries: the class names). Library: windows of {r['window']:g} s every "
        f"{r['stride']:g} s ({r['windows']} windows), the main run's model; adjacent windows "
        "merged into moments (`xclip-video embed --window`, `xclip-video search`).",
        "",
        "| | R@1, tIoU >= 0.5 | R@5, tIoU >= 0.5 | mAP (tIoU >= 0.5) |",
        "|---|---|---|---|",
        f"| X-CLIP (main run) | {r['r1']:.1f} % | {r['r5']:.1f} % | {r['map']:.1f} % |",
        f"| chance (windows in random order) | {c['r1']:.1f} % | {c['r5']:.1f} % | "
        f"{c['map']:.1f} % |",
        "",
    ]
