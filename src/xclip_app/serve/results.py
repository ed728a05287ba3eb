"""The JSON answers of the two views: a ranked Classify result (with the frames the model saw)
and a Timeline (each label's probability per window, in the order the labels were given)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from xclip.inference import Prediction, PreparedVideo

__all__ = ["classify_result", "jpeg_bytes", "timeline_result"]


def jpeg_bytes(frame: np.ndarray, height: int) -> bytes:
    """uint8 ``[H, W, 3]`` -> a small JPEG, at most ``height`` pixels high (aspect kept)."""
    from PIL import Image  # lazy: CLI start-up

    img = Image.fromarray(frame)
    if img.height > height:
        img = img.resize((max(1, round(img.width * height / img.height)), height), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def _jpeg_data_url(frame: np.ndarray, height: int) -> str:
    """The frames the model saw (before crop), as data URLs."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(frame, height)).decode("ascii")


def _video_fields(p: PreparedVideo) -> dict[str, Any]:
    fps = p.fps or 0.0
    return {
        "video_frames": p.num_frames,
        "fps": round(fps, 3) if fps else None,
        "duration": round(p.duration, 3) if p.duration else None,
    }


def classify_result(
    prepared: PreparedVideo, pred: Prediction, *, model: str, template: str, num_frames: int,
    top_k: int, thumb_height: int,
) -> dict[str, Any]:  # fmt: skip
    fps = prepared.fps or 0.0
    frames = []
    if prepared.frames is not None:
        for i, img in zip(prepared.frame_indices[0], prepared.frames[0], strict=True):
            frames.append(
                {
                    "index": int(i),
                    "time": round(int(i) / fps, 3) if fps else None,
                    "image": _jpeg_data_url(img, thumb_height),
                }
            )
    return {
        "video": prepared.source,
        "model": model,
        "template": template,
        "num_frames": num_frames,
        **_video_fields(prepared),
        "predictions": [{"label": lb, "prob": round(p, 6)} for lb, p in pred.top(top_k or None)],
        "frames": frames,
        "timings": {key: round(v, 4) for key, v in pred.timings.items()},
    }


def timeline_result(
    first: PreparedVideo, spans: list[tuple[int, int]], preds: list[Prediction], *,
    labels: list[str], model: str, template: str, window: float, stride: float,
) -> dict[str, Any]:  # fmt: skip
    fps = first.fps or 0.0
    windows = []
    for (lo, hi), pred in zip(spans, preds, strict=True):
        prob = dict(zip(pred.labels, pred.probs, strict=True))
        windows.append(
            {
                "start": round(lo / fps, 3),
                "end": round(hi / fps, 3),
                "top": pred.label,
                "probs": [round(prob[lb], 6) for lb in labels],
            }
        )
    timings: dict[str, float] = {}
    for pred in preds:
        for key, v in pred.timings.items():
            if key != "batch":
                timings[key] = timings.get(key, 0.0) + v
    return {
        "video": first.source,
        "model": model,
        "template": template,
        "labels": labels,
        "window": window,
        "stride": stride,
        **_video_fields(first),
        "windows": windows,
        "timings": {key: round(v, 4) for key, v in timings.items()},
    }
