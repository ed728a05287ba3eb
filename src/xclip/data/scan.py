"""Checking a dataset's videos before they are used, so that a bad file fails in seconds rather
than hours into a run.

Three depths, cheapest first:

* ``"header"``: open the container and read its header and the first packet of the video stream;
  nothing is decoded. Finds missing, empty, fake (text named ``.mp4``), audio-only and
  frame-less files and those whose header is cut off. Training runs it on the validation list
  before the first epoch (:mod:`xclip_app.train.preflight`).
* ``"sampled"``: open the video as the dataset does and decode the frames evaluation samples
  (the segment centres of ``dataset.num_frames`` frames, ``dataset.num_clips`` views).
* ``"all"``: decode every frame (finds damage anywhere in the stream).

Only :data:`~xclip.data.dataset.READ_ERRORS` (the decoder's and the file system's errors) mark a
video bad; anything else (a bug) propagates. A file whose header claims more frames than the
file holds (a truncated download) is readable - training and evaluation use the frames that are
there - and is listed in ``warnings``.

::

    from xclip.data import VideoDataset
    from xclip.data.scan import scan_dataset

    ds = VideoDataset("val.txt", "videos/", "labels.csv", mode="test", check_files=False)
    result = scan_dataset(ds, depth="header", workers=8)
    for p in result.bad:
        print(p.where, p.path, p.error)
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import io
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from xclip.errors import InputError

from .annotations import format_video_list
from .dataset import READ_ERRORS, VideoDataset
from .sampling import sample_frame_indices
from .video import VideoDecodeError, open_video
from .video.reader import VideoSource

__all__ = [
    "DEPTHS",
    "Depth",
    "ScanResult",
    "VideoProblem",
    "check_header",
    "cleaned_list",
    "scan_dataset",
]

Depth = Literal["header", "sampled", "all"]
DEPTHS: tuple[str, ...] = ("header", "sampled", "all")
_CHUNK = 32  # frames decoded per call in depth "all" (bounds memory for long videos)


@dataclass(frozen=True)
class VideoProblem:
    """One video that could not be read (or, in ``warnings``, was read with a caveat)."""

    index: int  # in the dataset
    path: str  # as written in the annotations
    where: str  # ``file:line`` of its annotation
    error: str  # the reason, one line


@dataclass
class ScanResult:
    """What :func:`scan_dataset` found; ``bad`` and ``warnings`` are sorted by index."""

    depth: str
    total: int
    bad: list[VideoProblem] = field(default_factory=list)
    warnings: list[VideoProblem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.bad

    @property
    def bad_indices(self) -> set[int]:
        return {p.index for p in self.bad}


def check_header(source: VideoSource, name: str, timeout: float | None = None) -> None:
    """Open ``source`` (path, bytes or binary file) and read its header and the first packet of
    its video stream, without decoding; :class:`VideoDecodeError` naming ``name`` if that fails."""
    import av  # lazy: optional dependency

    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if isinstance(source, str) and not os.path.isfile(source):
        raise VideoDecodeError(name, "file does not exist")
    if isinstance(source, bytes | bytearray | memoryview):
        if not len(source):
            raise VideoDecodeError(name, "the file is empty")
        source = io.BytesIO(bytes(source))
    elif isinstance(source, str) and os.path.getsize(source) == 0:
        raise VideoDecodeError(name, "the file is empty")
    kwargs: dict[str, Any] = {} if timeout is None else {"timeout": (timeout, timeout)}
    try:
        container = av.open(source, "r", **kwargs)
    except (av.FFmpegError, OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or str(e)  # FFmpeg's text, without the path again
        raise VideoDecodeError(name, f"cannot open as a video container ({why})") from e
    try:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise VideoDecodeError(name, f"no video stream (streams: {', '.join(kinds)})")
        stream = container.streams.video[0]
        if stream.codec_context is None or stream.codec_context.codec is None:
            raise VideoDecodeError(name, "unsupported video codec")
        try:
            for packet in container.demux(stream):
                if packet.size:
                    return
        except (av.FFmpegError, OSError) as e:
            why = getattr(e, "strerror", None) or str(e)
            raise VideoDecodeError(name, f"cannot read the video stream ({why})") from e
        raise VideoDecodeError(name, "the video stream has no frames")
    finally:
        container.close()


def _decode(dataset: VideoDataset, index: int, depth: str) -> str | None:
    """Decode video ``index`` at ``depth``; returns a warning or None, raises READ_ERRORS."""
    entry = dataset.entries[index]
    name = dataset.storage.describe(entry.path)
    source = dataset.storage.source(entry.path)
    if depth == "header":
        check_header(source, name, dataset.decoder_options.get("timeout"))
        return None
    with open_video(source, dataset.backend, name=name, **dataset.decoder_options) as reader:
        total = reader.num_frames
        if total < 1:
            raise VideoDecodeError(name, "the video has no frames")
        if depth == "sampled":
            inds = sample_frame_indices(
                total,
                dataset.num_frames,
                train=False,
                num_views=dataset.num_clips,
                view_mode=dataset.view_mode,
                strategy=dataset.sampling,
                frame_interval=dataset.frame_interval,
                rng=np.random.default_rng([dataset.seed, index]),
            )
            reader.get_frames(np.unique(inds))
        else:
            for start in range(0, total, _CHUNK):
                reader.get_frames(np.arange(start, min(start + _CHUNK, total)))
        claimed = reader.metadata.header_num_frames
    if claimed > total:
        return f"the header says {claimed} frames but only {total} are in the file (truncated?)"
    return None


def scan_dataset(
    dataset: VideoDataset,
    depth: Depth = "sampled",
    *,
    workers: int = 4,
    on_progress: Callable[[int], None] | None = None,
) -> ScanResult:
    """Check every video of ``dataset`` at ``depth`` with ``workers`` threads.

    ``on_progress(n)`` is called (in the calling thread) as ``n`` more videos are done. Build the
    dataset with ``check_files=False`` to have missing files reported here, one per video,
    instead of in an :class:`~xclip.data.annotations.AnnotationError`.
    """
    if depth not in DEPTHS:
        raise InputError(f"depth must be one of {', '.join(DEPTHS)}, got {depth!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be an integer >= 1, got {workers!r}")
    t0 = time.perf_counter()
    result = ScanResult(depth=depth, total=len(dataset))

    def one(i: int) -> tuple[int, str | None, str | None]:
        try:
            return i, None, _decode(dataset, i, depth)
        except READ_ERRORS as e:
            reason = getattr(e, "reason", None) or f"{type(e).__name__}: {e}"
            return i, " ".join(str(reason).split()), None

    def record(i: int, error: str | None, warning: str | None) -> None:
        e = dataset.entries[i]
        if error is not None:
            result.bad.append(VideoProblem(i, e.path, e.where, error))
        elif warning is not None:
            result.warnings.append(VideoProblem(i, e.path, e.where, warning))
        if on_progress is not None:
            on_progress(1)

    window = workers * 4  # futures in flight: bounded memory for very long lists
    with cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xclip-scan") as pool:
        pending: set[cf.Future] = set()
        try:
            for i in range(len(dataset)):
                pending.add(pool.submit(one, i))
                if len(pending) >= window:
                    done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    for f in done:
                        record(*f.result())
            for f in cf.as_completed(pending):
                record(*f.result())
        except BaseException:
            for f in pending:
                f.cancel()
            raise
    result.bad.sort(key=lambda p: p.index)
    result.warnings.sort(key=lambda p: p.index)
    result.seconds = time.perf_counter() - t0
    return result


def cleaned_list(dataset: VideoDataset, bad_indices: Iterable[int]) -> str:
    """The text of the dataset's annotations without the videos ``bad_indices``, in the same
    format: a list file or a video CSV keeps every other line byte for byte (header, comments,
    quoting); annotations that were not a file (a class folder, in-memory entries) become a list
    file (``path label`` lines, paths relative to the same root)."""
    bad = set(bad_indices)
    keep = [e for i, e in enumerate(dataset.entries) if i not in bad]
    source = dataset.list_file
    if source is None or not os.path.isfile(source):
        return format_video_list(keep)
    drop = {dataset.entries[i].line for i in bad if dataset.entries[i].line is not None}
    # as stored: line endings kept (numbering as the readers count lines), a BOM dropped
    with open(source, encoding="utf-8-sig", newline="") as f:
        text = f.read()
    lines = text.splitlines(keepends=True)
    if source.lower().endswith(".csv"):
        # entries are numbered by CSV row (a quoted field may span lines): map rows to lines
        drop_lines: set[int] = set()
        reader = csv.reader(io.StringIO(text))
        first = 1
        for row_number, _row in enumerate(reader, start=1):
            if row_number in drop:
                drop_lines.update(range(first, reader.line_num + 1))
            first = reader.line_num + 1
        drop = drop_lines
    return "".join(line for n, line in enumerate(lines, start=1) if n not in drop)
