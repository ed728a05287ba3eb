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

    Picklable (plain settings); ``preprocess``: :meth:`PreprocessConfig.to_dict` of the model.
    """

    def __init__(
        self,
        preprocess: dict[str, Any],
        *,
        num_clips: int = 1,
        num_crops: int = 1,
        view_mode: str = "uniform",
        decode_threads: int = 1,
    ) -> None:
        self.preprocess = preprocess
        self.num_clips, self.num_crops, self.view_mode = num_clips, num_crops, view_mode
        self.decode_threads = decode_threads
        self._transform = None

    @classmethod
    def for_model(cls, model: Any, **kw: Any) -> ClipPreparer:
        """The preparer of ``model`` (its frame count and size win over a disagreeing
        ``model.preprocess``, as in :class:`~xclip.inference.VideoPipeline`)."""
        cfg, pre = model.cfg, model.preprocess
        if pre.num_frames != cfg.num_frames or pre.image_size != cfg.image_size:
            pre = type(pre)(cfg.num_frames, cfg.image_size, pre.mean, pre.std)
        return cls(pre.to_dict(), **kw)

    def transform(self):
        from xclip.config import PreprocessConfig  # lazy: CLI start-up
        from xclip.data.transforms import EvalTransform  # lazy: CLI start-up

        if self._transform is None:
            pre = PreprocessConfig.from_dict(self.preprocess)
            self._transform = EvalTransform.from_preprocess(pre, num_crops=self.num_crops)
        return self._transform

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_transform": None}

    def _decode(self, path: str) -> tuple[np.ndarray, Any]:
        from xclip.data.sampling import sample_frame_indices  # lazy: CLI start-up
        from xclip.data.video import open_video  # lazy: CLI start-up
        from xclip.inference.errors import explain_decode_errors  # lazy: CLI start-up

        if is_uri(path) and not path.startswith("file://"):
            source: Any = read_video_bytes(path)
        else:
            source = path.removeprefix("file://")
            if not os.path.exists(source):
                raise FileNotFoundError(f"video not found: {path}")
            if os.path.isdir(source):
                raise IsADirectoryError(f"{path} is a folder, not a video")
        kw = {"name": path} if isinstance(source, bytes) else {}
        with (
            explain_decode_errors(),
            open_video(source, num_threads=self.decode_threads, **kw) as reader,
        ):
            meta = reader.metadata
            idx = sample_frame_indices(
                reader.num_frames,
                int(self.preprocess["num_frames"]),
                train=False,
                num_views=self.num_clips,
                view_mode=self.view_mode,
            )
            frames = reader.get_frames(idx.reshape(-1))
        return frames.reshape(*idx.shape, *frames.shape[1:]), meta

    def __call__(self, row: dict[str, Any] | str) -> dict[str, Any]:
        from xclip.inference.errors import BAD_VIDEO_ERRORS, one_line_error  # lazy: CLI start-up

        path = row if isinstance(row, str) else row["path"]
        out: dict[str, Any] = {"path": path, "clips": b"", "clips_shape": [], "duration": None,
                               "num_frames": None, "error": None}  # fmt: skip
        try:
            frames, meta = self._decode(path)
        except BAD_VIDEO_ERRORS as e:
            msg = one_line_error(e)
            out["error"] = msg[len(path) + 2 :] if msg.startswith(f"{path}: ") else msg
            return out
        clips = self.transform()(frames).float().contiguous().numpy()
        out.update(
            clips=clips.tobytes(), clips_shape=list(clips.shape),
            duration=meta.duration, num_frames=meta.num_frames,
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

    def row(self, prepared: dict[str, Any]) -> dict[str, Any]:
        """The result row of one prepared video (a failed one keeps its error)."""
        import torch  # lazy: CLI start-up

        from xclip.inference import PreparedVideo  # lazy: CLI start-up

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
        if prepared["error"] is not None:
            return out
        arr = np.frombuffer(prepared["clips"], dtype=np.float32).reshape(prepared["clips_shape"])
        clips = torch.from_numpy(arr.copy())
        if self.task == "classify":
            pred = self.pipe.predict(PreparedVideo(prepared["path"], clips, np.empty((0, 0))))
            out["labels"], out["probs"] = list(pred.labels), list(pred.probs)
            return out
        f = self.pipe.encode(clips)
        if not bool(torch.isfinite(f.embeds).all()):
            raise FloatingPointError(
                f"{prepared['path']}: the model gave a NaN or infinite embedding (its weights "
                f"hold NaN/inf, or {self.pipe.precision} overflowed: try --precision fp32)"
            )
        out["embedding"] = f.embeds.float().mean(dim=0).cpu().tolist()
        if self.keep_tokens and f.tokens is not None:
            out["tokens"] = f.tokens.float().mean(dim=0).cpu().tolist()
        return out

    def rows(self, prepared: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.row(p) for p in prepared]
