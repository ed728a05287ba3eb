"""``bench segments``: are the segments of ``xclip-video watch`` right? A stream made of the demo's
motions with known segments, watched, and scored.

The stream (:func:`motion_stream`): ``segments`` clips of the demo's world (each a 2 s motion of
one class, 16 frames at 8 fps, 48 px, rendered by :mod:`xclip_app.demo.world` with seeds the
demo's dataset does not use) separated by stills of ``gap`` seconds, with the world's pixel noise:
the subject stays where its motion ended for the first half of the gap, then the scene cuts to
the next subject, which stands still where its motion will start. The true segments are the
clips' spans; the cuts, halfway between motions, are not events (a segment reported there is a
false one).

The watch (:func:`score_watch`) runs :class:`xclip.live.Watcher` over the stream as a file read
losslessly (every window classified; times are on the stream's clock, so the pace does not
matter), with every class of the chosen set as its labels, once; the windows' probabilities are
then segmented at each threshold and minimum duration asked for (:class:`xclip.live.Segmenter`,
release at 0.8 x the threshold). Scores, per pair:

- **found**: the fraction of true segments matched by a reported segment of the same label at
  temporal IoU >= ``min_iou`` (each matched once, greedily by IoU);
- **false per minute**: reported segments matched to no true segment, per minute of stream;
- **precision**: matched / reported;
- where the false ones are (:func:`false_kinds`): in a still or a cut, over a true segment of
  another label, or the right label misaligned.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "TrueSegment",
    "false_kinds",
    "match_segments",
    "motion_stream",
    "score_watch",
    "tiou",
]


@dataclass(frozen=True)
class TrueSegment:
    label: str
    start: float
    end: float


def tiou(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    """Temporal intersection over union of two intervals."""
    inter = max(0.0, min(a_end, b_end) - max(a_start, b_start))
    union = max(a_end, b_end) - min(a_start, b_start)
    return inter / union if union > 0 else 0.0


def match_segments(
    predicted: Sequence[Any], truth: Sequence[TrueSegment], min_iou: float = 0.5
) -> dict[int, int]:
    """``{predicted index: true index}``: predicted segments (``label``/``start``/``end``)
    matched to a true one of the same label at IoU >= ``min_iou``; each of either side matched
    at most once, best IoU first."""
    pairs = sorted(
        (
            (tiou(p.start, p.end, t.start, t.end), i, j)
            for i, p in enumerate(predicted)
            for j, t in enumerate(truth)
            if p.label == t.label
        ),
        reverse=True,
    )
    matched: dict[int, int] = {}
    for iou, i, j in pairs:
        if iou < min_iou:
            break
        if i not in matched and j not in matched.values():
            matched[i] = j
    return matched


def false_kinds(
    predicted: Sequence[Any], truth: Sequence[TrueSegment], matched: dict[int, int]
) -> dict[str, int]:
    """Where the unmatched predicted segments are: ``in_stills`` (overlapping no true segment:
    a still or a cut), ``wrong_label`` (overlapping a true segment of another label),
    ``misaligned`` (the right label, IoU below the bar)."""
    out = {"in_stills": 0, "wrong_label": 0, "misaligned": 0}
    for i, p in enumerate(predicted):
        if i in matched:
            continue
        best = max(truth, key=lambda t: tiou(p.start, p.end, t.start, t.end))
        if tiou(p.start, p.end, best.start, best.end) == 0:
            out["in_stills"] += 1
        elif any(t.label == p.label and tiou(p.start, p.end, t.start, t.end) > 0 for t in truth):
            out["misaligned"] += 1
        else:
            out["wrong_label"] += 1
    return out


def motion_stream(
    path: str | os.PathLike,
    classes: Sequence[str],
    *,
    segments: int = 30,
    gap: tuple[float, float] = (2.0, 4.0),
    seed: int = 2024,
) -> list[TrueSegment]:
    """Write the stream (see the module doc) of clips of ``classes`` (demo class names) to
    ``path``; its true segments."""
    import numpy as np  # lazy: CLI start-up

    from xclip.data.synthetic import write_video  # lazy: CLI start-up
    from xclip_app.demo.generate import DataSpec, class_table  # lazy: CLI start-up
    from xclip_app.demo.world import PAIRS, render_clip, sample_clip_params  # lazy: CLI start-up

    spec = DataSpec()
    rows = {r["name"]: r for r in class_table()}
    rng = np.random.default_rng([seed, 7])  # the demo's dataset seeds clips with [seed, ...5]
    frames: list[np.ndarray] = []
    truth = []
    fps = spec.fps

    def hold(image: np.ndarray, n: int) -> None:
        for _ in range(n):  # a still, with the world's pixel noise
            frames.append(np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8))

    last = None
    for _ in range(segments):
        row = rows[classes[int(rng.integers(len(classes)))]]
        params = sample_clip_params(rng, row["pair"], row["colour"], spec.distractor_p)
        clip = render_clip(params, rng, spec.num_frames, spec.size)
        if row["direction"] == 1:
            clip = clip[::-1]
        assert row["motion"] == PAIRS[row["pair"]][row["direction"]]
        n = int(round(rng.uniform(*gap) * fps))
        if last is not None:  # the last subject stays where its motion ended, then the scene cuts
            hold(last, n // 2)
        hold(clip[0], n if last is None else n - n // 2)
        start = len(frames) / fps
        frames.extend(clip)
        truth.append(TrueSegment(row["name"], start, len(frames) / fps))
        last = clip[-1]
    hold(last, int(gap[0] * fps))  # the stream ends on a still, as it starts
    write_video(path, np.stack(frames), fps=fps, codec="mpeg4", gop=spec.num_frames)
    return truth


def score_watch(
    model: str | os.PathLike,
    work_dir: str | os.PathLike,
    *,
    heldout: bool = False,
    segments: int = 30,
    window: float = 2.0,
    stride: float = 0.5,
    thresholds: Sequence[float] = (0.3, 0.5, 0.7),
    min_durations: Sequence[float] = (0.5, 1.0),
    min_iou: float = 0.5,
    seed: int = 2024,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Watch the motion stream with ``model`` (a trained demo model) and score its segments."""
    from xclip.inference import VideoClassifier  # lazy: CLI start-up
    from xclip.live import Segmenter, Watcher, WindowResult, window_slot  # lazy: CLI start-up
    from xclip_app.demo.generate import class_table  # lazy: CLI start-up

    classes = [r["name"] for r in class_table() if r["heldout"] == heldout]
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    stream = work / f"motions-{'heldout' if heldout else 'seen'}-{segments}-{seed}.mp4"
    truth = motion_stream(stream, classes, segments=segments, seed=seed)
    minutes = (truth[-1].end + 2.0) / 60
    clf = VideoClassifier(model, classes, device="cpu")
    watcher = Watcher(clf, str(stream), window=window, stride=stride)
    windows: list[WindowResult] = []
    watcher.subscribe(lambda e: windows.append(e) if isinstance(e, WindowResult) else None)
    stats = watcher.run()
    top1 = _window_top1(windows, truth)
    result: dict[str, Any] = {
        "model": str(model), "classes": "held-out" if heldout else "seen",
        "labels": len(classes), "stream": str(stream), "segments": len(truth),
        "stream_minutes": minutes, "window": window, "stride": stride,
        "min_iou": min_iou, "windows": stats.windows,
        "window_top1_inside_segments": top1, "grid": [],
        "truth": [asdict(t) for t in truth],
    }  # fmt: skip
    for th, min_duration in ((t, d) for d in min_durations for t in thresholds):
        seg = Segmenter(th, 0.8 * th, min_duration)
        found = []
        for w in windows:
            found += seg.update(*window_slot(w.start, w.end, stride), w.scores)
        found += seg.flush()
        closed = [s for s in found if not s.open]
        pairs = match_segments(closed, truth, min_iou)
        matched = len(pairs)
        row = {
            "threshold": th, "release": 0.8 * th, "min_duration": min_duration,
            "reported": len(closed), "matched": matched,
            "found": matched / len(truth), "false_per_minute": (len(closed) - matched) / minutes,
            "precision": matched / len(closed) if closed else None,
            "false": false_kinds(closed, truth, pairs),
        }  # fmt: skip
        result["grid"].append(row)
        log(
            f"threshold {th:.2f}, min duration {min_duration:g} s: found {row['found']:.0%} of {len(truth)} true segments at "
            f"tIoU >= {min_iou:g}; {row['false_per_minute']:.2f} false segments per minute "
            f"({len(closed)} reported; false: {row['false']})"
        )
    return result


def _window_top1(windows: Sequence[Any], truth: Sequence[TrueSegment]) -> float | None:
    """Top-1 accuracy of the windows that mostly cover one true segment (tIoU >= 0.6): the
    classifier alone, before any segmenting."""
    hits = n = 0
    for w in windows:
        for t in truth:
            if tiou(w.start, w.end, t.start, t.end) >= 0.6:
                n += 1
                hits += w.labels[0] == t.label
    return hits / n if n else None
