"""The per-video work of ``embed --window`` on every engine: :class:`VideoProbe` (the CPU part:
the file's identity) and :class:`WindowWorker` (decode, sample, preprocess and encode every
window of the video: one row per window).

Unlike whole-video rows, a video's windows are decoded inside the model worker, a batch of
windows at a time (:func:`xclip.inference.windows.iter_window_embeddings`): the clips of every
window of an hour of video would be gigabytes between two processes, a batch of them is
megabytes. The rows are those of :func:`xclip_app.parquet_results.result_schema` ``"windows"``.
"""

from __future__ import annotations

import os
from typing import Any

from xclip_app.collection_inputs import is_uri, read_video_bytes

__all__ = ["VideoProbe", "WindowWorker", "file_identity"]


def file_identity(path: str) -> tuple[int | None, float | None]:
    """``(size, mtime)`` of a local video (``None, None`` for a URI or a missing file): a
    library drops the rows of a video whose identity changed, and embeds it again."""
    if is_uri(path) and not path.startswith("file://"):
        return None, None
    try:
        st = os.stat(path.removeprefix("file://"))
    except OSError:
        return None, None
    return st.st_size, st.st_mtime


class VideoProbe:
    """A video as a prepared row: ``path``, ``video_size``, ``video_mtime`` (picklable)."""

    def __call__(self, row: dict[str, Any] | str) -> dict[str, Any]:
        path = row if isinstance(row, str) else row["path"]
        size, mtime = file_identity(path)
        return {"path": path, "video_size": size, "video_mtime": mtime}


class WindowWorker:
    """Prepared rows (:class:`VideoProbe`) in, one result row per window out (a video that
    cannot be read: one row with its ``error``). ``window``/``stride`` in seconds; the rest as
    :class:`~xclip_app.engines.work.ModelWorker`."""

    task = "windows"

    def __init__(
        self,
        model: Any,
        task: str = "windows",
        *,
        window: float,
        stride: float | None = None,
        num_clips: int = 1,
        num_crops: int = 1,
        device: str | None = None,
        precision: str = "fp32",
        batch_size: int = 8,
        compile: bool | str = "auto",
        **_ignored: Any,  # the whole-video options of ModelWorker (labels, tokens)
    ) -> None:
        from xclip.inference import model_fingerprint  # lazy: CLI start-up
        from xclip.inference.pipeline import VideoPipeline  # lazy: CLI start-up

        self.pipe = VideoPipeline(model, num_clips=num_clips, num_crops=num_crops, device=device,
                                  precision=precision, batch_size=batch_size, compile=compile)  # fmt: skip
        self.window, self.stride = window, stride if stride is not None else window
        self.fingerprint = model_fingerprint(self.pipe.model)

    def video_rows(self, prepared: dict[str, Any]) -> list[dict[str, Any]]:
        """The rows of one video."""
        from xclip.inference.errors import BAD_VIDEO_ERRORS, one_line_error  # lazy: CLI start-up
        from xclip.inference.timeline import TimelineError  # lazy: CLI start-up
        from xclip.inference.windows import iter_window_embeddings  # lazy: CLI start-up

        path = prepared["path"]
        base: dict[str, Any] = {
            "path": path, "model_fingerprint": self.fingerprint,
            "num_clips": self.pipe.num_clips, "num_crops": self.pipe.num_crops,
            "view_mode": self.pipe.view_mode, "video_size": prepared["video_size"],
            "video_mtime": prepared["video_mtime"], "error": None,
        }  # fmt: skip
        rows: list[dict[str, Any]] = []
        try:
            source: Any = path.removeprefix("file://")
            if is_uri(path) and not path.startswith("file://"):
                source = read_video_bytes(path)
            # every window: a library's videos are as long as they are (no MAX_WINDOWS)
            for b in iter_window_embeddings(self.pipe, source, self.window, self.stride,
                                            max_windows=None,
                                            name=path if isinstance(source, bytes) else None):  # fmt: skip
                for j in range(len(b)):
                    rows.append({
                        **base, "duration": b.duration, "num_frames": b.num_frames,
                        "window": b.first + j, "num_windows": b.num_windows,
                        "start": float(b.starts[j]), "end": float(b.ends[j]),
                        "embedding": b.embeds[j].tolist(),
                    })  # fmt: skip
        except (*BAD_VIDEO_ERRORS, TimelineError) as e:  # a window shorter than a frame of it
            msg = one_line_error(e)
            msg = msg[len(path) + 2 :] if msg.startswith(f"{path}: ") else msg
            return [{**base, "error": msg}]
        return rows

    def rows(self, prepared: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for p in prepared for r in self.video_rows(p)]
