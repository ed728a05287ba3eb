"""Transcoding one video for training (PyAV): the short side scaled to ``short_side`` (256, as
the X-CLIP authors pre-resized Kinetics; never upscaled), H.264 with a keyframe every
``keyframe_interval`` frames (sparse sampling seeks to each sampled frame: a short interval bounds
what is decoded per sample), no audio, the frame rate kept; then a check that the output
decodes with the frame count of the source.

The output is written through :func:`xclip.atomic.atomic_open`: a failed or killed transcode
never leaves a half-written file under the output name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

__all__ = ["PrepareWorker", "TranscodeSettings", "output_size", "transcode", "verify"]


@dataclass(frozen=True)
class TranscodeSettings:
    """``short_side`` (pixels), ``keyframe_interval`` (frames), x264 ``crf`` and ``preset``."""

    short_side: int = 256
    keyframe_interval: int = 16
    crf: int = 23
    preset: str = "veryfast"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """``(width, height)`` with the short side ``short_side`` (unchanged when already at most
    that), aspect kept, both even (4:2:0)."""
    s = min(width, height)
    if s > short_side:
        width, height = round(width * short_side / s), round(height * short_side / s)
    return max(2, width - width % 2), max(2, height - height % 2)


def transcode(src: str, dst: str | os.PathLike, settings: TranscodeSettings) -> dict[str, Any]:
    """Transcode ``src`` to the mp4 ``dst`` (atomically; an existing ``dst`` is replaced);
    ``{"frames", "duration", "size"}`` of the output. Decoder errors are PyAV's ``av.FFmpegError``
    (an ``OSError``/``ValueError``); see :func:`prepare_row` for how they are recorded."""
    import av  # lazy: optional dependency

    from xclip.atomic import atomic_open  # lazy: CLI start-up

    with av.open(src) as inp:
        if not inp.streams.video:
            raise av.error.InvalidDataError(0, "no video stream", src)
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        rate = vin.average_rate or vin.guessed_rate or Fraction(30)
        w, h = output_size(vin.codec_context.width, vin.codec_context.height, settings.short_side)
        n = 0
        with atomic_open(dst, "wb", overwrite=True) as f, av.open(f, "w", format="mp4") as out:
            vout = out.add_stream("libx264", rate=rate)
            vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
            k = settings.keyframe_interval
            vout.options = {
                "crf": str(settings.crf),
                "preset": settings.preset,
                "x264-params": f"keyint={k}:min-keyint={k}:scenecut=0",
            }
            for frame in inp.decode(vin):
                img = frame.reformat(width=w, height=h, format="yuv420p")
                img.pts = n
                img.time_base = Fraction(1, 1) / rate
                for pkt in vout.encode(img):
                    out.mux(pkt)
                n += 1
            for pkt in vout.encode():
                out.mux(pkt)
    if n == 0:
        raise av.error.InvalidDataError(0, "no decodable video frame", src)
    return {"frames": n, "duration": float(n / rate), "size": [w, h]}


def verify(path: str | os.PathLike, frames: int) -> str | None:
    """None when ``path`` opens with ``frames`` frames and its first, middle and last frame
    decode; else what is wrong (one line)."""
    from xclip.data.video import VideoDecodeError, open_video  # lazy: CLI start-up

    try:
        with open_video(os.fspath(path)) as r:
            if r.num_frames != frames:
                return f"decodes with {r.num_frames} frames, the source has {frames}"
            r.get_frames([0, frames // 2, frames - 1])
    except (VideoDecodeError, OSError) as e:
        return f"the output does not decode: {e}"
    return None


class PrepareWorker:
    """Transcode and verify one source video into its place under DST: a ``prepare`` row.
    Picklable (plain settings): a Ray task runs it on any node that sees SRC and DST."""

    def __init__(self, src: str, dst: str, settings: Any) -> None:
        self.src, self.dst, self.settings = src, dst, settings

    def target(self, path: str) -> str:
        rel = Path(path).relative_to(self.src)
        return str(Path(self.dst) / rel.with_suffix(".mp4"))

    def __call__(self, row: dict[str, Any] | str) -> dict[str, Any]:
        import av  # lazy: optional dependency

        from xclip.ownership import remove_owned  # lazy: CLI start-up

        path = row if isinstance(row, str) else row["path"]
        out = {"path": path, "duration": None, "num_frames": None, "output": self.target(path),
               "status": "failed", "error": None}  # fmt: skip
        try:
            info = transcode(path, out["output"], self.settings)
        except (av.FFmpegError, OSError) as e:  # the decoder's and the file system's errors only
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            out["error"] = f"cannot transcode: {msg}"
            return out
        problem = verify(out["output"], info["frames"])
        if problem:
            remove_owned(out["output"])  # the transcode just written (refused if not ours)
            out["error"] = problem
            return out
        out.update(duration=info["duration"], num_frames=info["frames"], status="transcoded")
        return out
