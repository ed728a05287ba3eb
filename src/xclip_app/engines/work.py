"""The per-video work every engine runs: :class:`ClipPreparer` (decode, sample, preprocess: the
CPU part) and :class:`ModelWorker` (the model: probabilities or embeddings, as result rows).

The frames and preprocessing are exactly :class:`xclip.inference.VideoPipeline`'s (the same
sampling, transform and model calls), so the ``local`` and ``ray`` engines give the same rows
as ``xclip-video classify``/``embed`` without an engine. A prepared video travels between
processes as plain data (bytes of the float clips and their shape), never as pickled code.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from xclip_app.collection_inputs import is_uri, read_video_bytes

__all__ = ["ClipPreparer", "ModelWorker"]


class ClipPreparer:
    """Decode, sample and preprocess one video for a model's input, as a row:
    ``path``, ``clips`` (float32 bytes), ``clips_shape`` ``[V, T, 3, S, S]``, ``duration``,
    ``num_frames``, ``error`` (None, or why the video could not be read: only the decoder's
    and the file system's errors; anything else propagates).

    The work is the model's :class:`~xclip.inference.processor.VideoProcessor` (the one video
    path of the library); this adds what a collection needs: rows, and videos named by URI
    (``s3://``, ``gs://``, ``https://``, read as bytes). Picklable: the processor is plain
    settings.
    """

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    @classmethod
    def for_model(
        cls, model: Any, *, num_clips: int = 1, num_crops: int = 1, decode_threads: int = 1
    ) -> ClipPreparer:
        """The preparer of ``model`` (an XCLIP or an exported model), with the views of
        :class:`~xclip.inference.VideoPipeline` (deterministic ``uniform`` sampling)."""
        from xclip.inference.processor import VideoProcessor  # lazy: CLI start-up

        return cls(
            VideoProcessor.for_model(
                model, num_clips=num_clips, num_crops=num_crops, decode_threads=decode_threads
            )
        )

    def _source(self, path: str) -> Any:
        if is_uri(path) and not path.startswith("file://"):
            return read_video_bytes(path)
        source = path.removeprefix("file://")
        if not os.path.exists(source):
            raise FileNotFoundError(f"video not found: {path}")
        if os.path.isdir(source):
            raise IsADirectoryError(f"{path} is a folder, not a video")
        return source

    def __call__(self, row: dict[str, Any] | str) -> dict[str, Any]:
        from xclip.inference.errors import BAD_VIDEO_ERRORS, one_line_error  # lazy: CLI start-up

        path = row if isinstance(row, str) else row["path"]
        out: dict[str, Any] = {"path": path, "clips": b"", "clips_shape": [], "duration": None,
                               "num_frames": None, "error": None}  # fmt: skip
        try:
            prepared = self.processor(self._source(path), name=path)
        except BAD_VIDEO_ERRORS as e:
            msg = one_line_error(e)
            out["error"] = msg[len(path) + 2 :] if msg.startswith(f"{path}: ") else msg
            return out
        clips = prepared.clips.float().contiguous().numpy()
        out.update(
            clips=clips.tobytes(), clips_shape=list(clips.shape),
            duration=prepared.duration, num_frames=prepared.num_frames,
        )  # fmt: skip
        return out


class ModelWorker:
    """The model side: prepared rows in, result rows out (the columns of
    :func:`xclip_app.parquet_results.result_schema`).

    ``task``: ``classify`` (needs ``labels``; rows get the ranked ``labels`` and ``probs``) or
    ``embed`` (rows get ``embedding``, the views averaged, and ``tokens`` unless
    ``keep_tokens=False``). The model runs as :class:`~xclip.inference.VideoClassifier` /
    :class:`~xclip.inference.VideoPipeline` with the given device, precision, batch size and
    ``compile`` (``--compile``).
    """

    def __init__(
        self,
        model: Any,
        task: str,
        *,
        labels: list[str] | None = None,
        template: str = "{}",
        num_clips: int = 1,
        num_crops: int = 1,
        device: str | None = None,
        precision: str = "fp32",
        batch_size: int = 8,
        keep_tokens: bool = True,
        compile: bool | str = "auto",
    ) -> None:
        from xclip.inference import VideoClassifier, model_fingerprint  # lazy: CLI start-up
        from xclip.inference.pipeline import VideoPipeline  # lazy: CLI start-up

        self.task = task
        kw = dict(num_clips=num_clips, num_crops=num_crops, device=device, precision=precision,
                  batch_size=batch_size, compile=compile)  # fmt: skip
        if task == "classify":
            self.pipe = VideoClassifier(model, labels, template, **kw)
        elif task == "embed":
            self.pipe = VideoPipeline(model, **kw)
        else:
            raise ValueError(f"unknown task {task!r}")
        self.keep_tokens = keep_tokens
        self.fingerprint = model_fingerprint(self.pipe.model)

    def rows(self, prepared: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The result rows of prepared videos, in order (failed ones keep their error); the
        views of consecutive videos share model calls (:meth:`VideoPipeline.encode_iter`)."""
        import torch  # lazy: CLI start-up

        from xclip.inference import PreparedVideo, VideoFailure  # lazy: CLI start-up

        items: list[Any] = []
        for p in prepared:
            if p["error"] is not None:
                items.append(VideoFailure(p["path"], p["error"]))
                continue
            arr = np.frombuffer(p["clips"], dtype=np.float32).reshape(p["clips_shape"])
            items.append(PreparedVideo(p["path"], torch.from_numpy(arr.copy()), np.empty((0, 0))))
        out = []
        for p, item in zip(prepared, self.pipe.encode_iter(items), strict=True):
            out.append(self._row(p, None if isinstance(item, VideoFailure) else item))
        return out

    def row(self, prepared: dict[str, Any]) -> dict[str, Any]:
        """The result row of one prepared video (a failed one keeps its error)."""
        return self.rows([prepared])[0]

    def _row(self, prepared: dict[str, Any], encoded: Any) -> dict[str, Any]:
        import torch  # lazy: CLI start-up

        out: dict[str, Any] = {
            "path": prepared["path"],
            "duration": prepared["duration"],
            "num_frames": prepared["num_frames"],
            "model_fingerprint": self.fingerprint,
            "num_clips": self.pipe.num_clips,
            "num_crops": self.pipe.num_crops,
            "view_mode": self.pipe.view_mode,
            "error": prepared["error"],
        }
        if encoded is None:
            return out
        if self.task == "classify":
            pred = self.pipe.rank(*encoded)
            out["labels"], out["probs"] = list(pred.labels), list(pred.probs)
            return out
        feats = encoded[1]
        if not bool(torch.isfinite(feats.embeds).all()):
            raise FloatingPointError(
                f"{prepared['path']}: the model gave a NaN or infinite embedding (its weights "
                f"hold NaN/inf, or {self.pipe.precision} overflowed: try --precision fp32)"
            )
        out["embedding"] = feats.embeds.float().mean(dim=0).cpu().tolist()
        if self.keep_tokens and feats.tokens is not None:
            out["tokens"] = feats.tokens.float().mean(dim=0).cpu().tolist()
        return out
