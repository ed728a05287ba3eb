"""Moments: search a library of window embeddings by what happens in it.

A :class:`MomentIndex` holds one row per time window of each video (its video, start and end)
and a :class:`~xclip.inference.vector_index.VectorIndex` over the windows' embeddings.
:func:`search_moments` embeds a text query (or an example clip, ``like=``), finds the best
windows by cosine, merges overlapping or touching windows of one video into one moment (its
score the best of its windows), applies the filters (a path glob, a minimum and maximum
duration) and returns the ``top_k`` moments, best first.

Files (inside a library folder, beside the Parquet rows of ``xclip-video embed --window``, or
alone with :meth:`MomentIndex.save`): ``moments.json`` (format, model, window settings, the
index type, the video paths, sha256 of the other two), ``moments.npz`` (per row: video number,
start, end) and ``moments.faiss`` (the vector index). They are written into a folder that
:func:`xclip.atomic.atomic_dir` publishes whole, so an update never leaves a mix.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xclip.errors import InputError

from ..atomic import atomic_dir
from ..model import XCLIP
from ..tokenizer import tokenize
from .errors import BAD_VIDEO_ERRORS, one_line_error
from .index import check_index_model
from .labels import check_template, prompts
from .loading import model_info
from .pipeline import VideoPipeline, video_list
from .results import VideoFailure
from .vector_index import MEMORY_BUDGET, VectorIndex, normalized
from .windows import iter_window_embeddings

__all__ = [
    "MAX_TOP_K",
    "MOMENTS_FILES",
    "MOMENTS_FORMAT",
    "Moment",
    "MomentIndex",
    "embed_windows",
    "is_moment_library",
    "load_moments",
    "check_moment_filters",
    "clip_vector",
    "nearest_moments",
    "query_vector",
    "search_moments",
]

MOMENTS_FORMAT = "xclip-moments"
MOMENTS_FILES = ("moments.json", "moments.npz", "moments.faiss")
#: the most moments one query returns
MAX_TOP_K = 10_000
# windows fetched per wanted moment before merging and filtering (doubled until enough)
_OVERFETCH = 4


@dataclass(frozen=True)
class Moment:
    """One found moment: ``rank`` (1 = best), the video ``path`` (as embedded), ``start``/``end``
    in seconds, ``score`` (the best cosine of its windows, -1..1), how many ``windows`` merged
    into it, and the video's ``location`` (its absolute path, or its URI: the file to open)."""

    rank: int
    path: str
    start: float
    end: float
    score: float
    windows: int = 1
    location: str = ""

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of the command-line tools."""
        return {"rank": self.rank, "video": self.path, "start": round(self.start, 3),
                "end": round(self.end, 3), "score": round(self.score, 6),
                "windows": self.windows, "location": self.location}  # fmt: skip


class MomentIndex:
    """Window rows and their vector index (see the module doc).

    ``videos``: the video paths (as embedded), ``locations`` the same videos' absolute paths or
    URIs; ``video``: int32 ``[N]`` each row's video number; ``start``/
    ``end``: float64 ``[N]`` seconds; ``vectors``: the index of the rows' embeddings (row ``i``
    is id ``i``); ``model``: :func:`~xclip.inference.loading.model_info` of the model that
    embedded them; ``settings``: how (window, stride, views, precision).
    """

    def __init__(self, videos, video, start, end, vectors, model, settings,
                 locations=None) -> None:  # fmt: skip
        self.videos: list[str] = list(videos)
        self.locations: list[str] = (
            list(locations)
            if locations is not None
            else [v if "://" in v else os.path.abspath(v) for v in self.videos]
        )
        self.video = np.asarray(video, dtype=np.int32)
        self.start = np.asarray(start, dtype=np.float64)
        self.end = np.asarray(end, dtype=np.float64)
        self.vectors: VectorIndex | None = vectors
        self.model: dict[str, Any] = model
        self.settings: dict[str, Any] = settings

    def __len__(self) -> int:
        return len(self.video)

    @classmethod
    def build(
        cls,
        paths: Sequence[str],
        starts: np.ndarray,
        ends: np.ndarray,
        embeds: np.ndarray,
        *,
        model: dict[str, Any],
        settings: dict[str, Any],
        memory_budget: int = MEMORY_BUDGET,
        like: MomentIndex | None = None,
        locations: Sequence[str] | None = None,
    ) -> MomentIndex:
        """The index of window rows: ``paths[i]``, ``starts[i]``..``ends[i]`` and ``embeds[i]``
        (float ``[N, C]``). ``like``: the library's previous index, whose trained lists an
        update reuses when the index type stays the same. ``locations[i]``: where row ``i``'s
        video is (default: its path made absolute)."""
        videos, first, video = np.unique(np.asarray(paths, dtype=object), return_index=True,
                                          return_inverse=True)  # fmt: skip
        where = None if locations is None else [str(locations[i]) for i in first]
        vectors = None
        if len(embeds):
            previous = like.vectors if like is not None else None
            vectors = VectorIndex.build(embeds, memory_budget=memory_budget, like=previous)
        return cls([str(v) for v in videos], video, starts, ends, vectors, model, settings, where)

    # -- files --------------------------------------------------------------------------------
    def write_files(self, folder: str | os.PathLike) -> None:
        """Write :data:`MOMENTS_FILES` into ``folder`` (a folder being filled for
        :func:`~xclip.atomic.atomic_dir`: plain writes, published with it)."""
        folder = Path(folder)
        buf = io.BytesIO()
        np.savez(buf, video=self.video, start=self.start, end=self.end)
        rows = buf.getvalue()
        faiss_bytes = self.vectors.to_bytes() if self.vectors is not None else b""
        meta = {
            "format": MOMENTS_FORMAT, "format_version": 1, "rows": len(self),
            "videos": self.videos, "locations": self.locations, "model": self.model,
            "settings": self.settings,
            "index": self.vectors.info() if self.vectors is not None else None,
            "sha256": {"moments.npz": _sha256(rows), "moments.faiss": _sha256(faiss_bytes)},
        }  # fmt: skip
        (folder / "moments.npz").write_bytes(rows)
        (folder / "moments.faiss").write_bytes(faiss_bytes)
        (folder / "moments.json").write_text(json.dumps(meta), encoding="utf-8")

    def save(self, folder: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the index alone as a folder (a unit of kind ``moments``, atomically)."""
        return atomic_dir(folder, self.write_files, overwrite=overwrite, kind="moments")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_moment_library(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding a moments index."""
    return (Path(path) / "moments.json").is_file()


def load_moments(folder: str | os.PathLike) -> MomentIndex:
    """The moments index of a library folder (``embed --window -o LIB``) or of
    :meth:`MomentIndex.save`. A missing, foreign or damaged file is an ``InputError`` (one
    line) naming it."""
    folder = Path(folder)
    meta_file = folder / "moments.json"
    if not meta_file.is_file():
        raise InputError(
            f"{folder} is not a moments library (no moments.json); build one with "
            f"`xclip-video embed VIDEOS --window SECONDS -o {folder}`"
        )
    bad = f"{folder} holds a damaged moments index"
    fix = f"rebuild it with `xclip-video embed VIDEOS --window SECONDS -o {folder} --overwrite`"
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != MOMENTS_FORMAT:
            raise InputError(f"{meta_file} is not an xclip moments index; {fix}")
        data = {n: (folder / n).read_bytes() for n in ("moments.npz", "moments.faiss")}
        for name, want in meta["sha256"].items():
            if _sha256(data[name]) != want:
                raise InputError(f"{bad}: {name} does not match moments.json; {fix}")
        with np.load(io.BytesIO(data["moments.npz"]), allow_pickle=False) as z:
            video, start, end = z["video"], z["start"], z["end"]
        videos = [str(v) for v in meta["videos"]]
        locations = [str(v) for v in meta.get("locations") or videos]
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise InputError(f"{bad} ({type(e).__name__}: {first}); {fix}") from None
    n = len(video)
    if (
        not (len(start) == len(end) == n == int(meta.get("rows", -1)))
        or len(locations) != len(videos)
        or (n and int(video.max()) >= len(videos))
    ):
        raise InputError(f"{bad}: its row files disagree; {fix}")
    vectors = None
    if meta.get("index") is not None:
        vectors = VectorIndex.from_bytes(data["moments.faiss"], meta["index"],
                                         source=str(folder / "moments.faiss"))  # fmt: skip
        if len(vectors) != n:
            raise InputError(f"{bad}: {len(vectors)} vectors for {n} rows; {fix}")
    return MomentIndex(videos, video, start, end, vectors, meta.get("model", {}),
                       meta.get("settings", {}), locations)  # fmt: skip


# -- building in memory (the Python API) -------------------------------------------------------
def embed_windows(
    model: XCLIP | str | os.PathLike,
    videos: Sequence[str | os.PathLike] | str | os.PathLike,
    window: float,
    stride: float | None = None,
    *,
    num_clips: int = 1,
    num_crops: int = 1,
    device: str | torch.device | None = None,
    precision: str = "auto",
    batch_size: int | None = None,
    memory_budget: int = MEMORY_BUDGET,
    model_name: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[MomentIndex, list[VideoFailure]]:
    """Embed every ``window`` seconds (every ``stride``) of ``videos`` into a
    :class:`MomentIndex` (in memory; :meth:`MomentIndex.save` writes it). Videos the decoder or
    the file system cannot read are skipped and returned as failures. For collections that
    resume, and the ray engine, use ``xclip-video embed --window`` (Parquet rows)."""
    videos = video_list(videos)
    pipe = VideoPipeline(model, num_clips=num_clips, num_crops=num_crops, device=device,
                         precision=precision, batch_size=batch_size, compile=False)  # fmt: skip
    paths: list[str] = []
    starts, ends, embeds = [], [], []
    fails: list[VideoFailure] = []
    for i, v in enumerate(videos):
        name = os.fspath(v) if isinstance(v, str | os.PathLike) else f"<input {i}>"
        try:
            batches = list(iter_window_embeddings(pipe, v, window, stride))
        except BAD_VIDEO_ERRORS as e:
            fails.append(VideoFailure(name, one_line_error(e).removeprefix(f"{name}: ")))
            batches = []
        for b in batches:
            paths += [name] * len(b)
            starts.append(b.starts)
            ends.append(b.ends)
            embeds.append(b.embeds.numpy())
        if progress is not None:
            progress(i + 1, len(videos), name)
    c = pipe.model.cfg.embed_dim
    settings = {"window": window, "stride": window if stride is None else stride,
                "num_clips": num_clips, "num_crops": num_crops, "view_mode": pipe.view_mode,
                "precision": pipe.precision}  # fmt: skip
    index = MomentIndex.build(
        paths,
        np.concatenate(starts) if starts else np.zeros(0),
        np.concatenate(ends) if ends else np.zeros(0),
        np.concatenate(embeds) if embeds else np.zeros((0, c), np.float32),
        model=model_info(pipe.model, model_name or pipe.model_source),
        settings=settings,
        memory_budget=memory_budget,
    )
    return index, fails


# -- searching ---------------------------------------------------------------------------------
def query_vector(
    model: XCLIP,
    query: str | None = None,
    *,
    like: str | os.PathLike | bytes | None = None,
    template: str = "{}",
    num_clips: int = 1,
    num_crops: int = 1,
) -> np.ndarray:
    """The unit vector float32 ``[C]`` a search compares windows with: the raw text embedding
    of ``query`` in ``template``, or the video embedding of the clip ``like`` (a path or the
    bytes of a file; views averaged, as a window is embedded)."""
    if (query is None) == (like is None):
        raise InputError("give a text query or an example clip (like=...), one of the two")
    if like is not None:
        pipe = VideoPipeline(model, num_clips=num_clips, num_crops=num_crops,
                             device=next(model.parameters()).device, precision="fp32",
                             compile=False)  # fmt: skip
        try:
            clips = pipe.prepare(like).clips
        except BAD_VIDEO_ERRORS as e:
            what = "<bytes>" if isinstance(like, bytes) else os.fspath(like)
            raise InputError(f"the example clip {what}: {one_line_error(e)}") from None
        return clip_vector(pipe, clips)
    else:
        if not isinstance(query, str):
            raise TypeError(f"query must be one string, got {type(query).__name__}")
        if not query.strip():
            raise InputError("the search query is empty; give a text such as 'a person dancing'")
        texts = prompts([query.strip()], [check_template(template)], what="query")
        device = next(model.parameters()).device
        with torch.inference_mode():
            vec = model.encode_text(tokenize(texts).to(device)).float()[0]
    return normalized(vec.detach().cpu().numpy()[None])[0]


def _merge(index: MomentIndex, ids: np.ndarray, scores: np.ndarray) -> list[list]:
    """Windows (ids, scores; best first) -> moments ``[score, video, start, end, n]``.

    Best first, a window that overlaps or touches a moment of its video joins it (the moment
    grows to cover it, and takes in the other moments it bridges) when its score is within half
    the spread of the fetched scores of the moment's best, and is absorbed (dropped) otherwise;
    any other window starts a moment. So a stretch of good windows becomes one moment, and its
    weak edges do not stretch it further."""
    keep = ids >= 0
    ids, scores = ids[keep], scores[keep]
    gap = 0.5 * float(scores.max() - scores.min()) if len(scores) else 0.0
    # plain lists: one numpy lookup per array, not per window
    vs, ss, es = index.video[ids].tolist(), index.start[ids].tolist(), index.end[ids].tolist()
    per_video: dict[int, list[list]] = {}
    out: list[list] = []  # [score, video, start, end, n, alive]
    for v, s, e, sc in zip(vs, ss, es, scores.tolist(), strict=True):
        mine = per_video.setdefault(v, [])
        near = [m for m in mine if m[5] and s <= m[3] + 1e-6 and e >= m[2] - 1e-6]
        if near:
            m = max(near, key=lambda n: n[0])
            if sc >= m[0] - gap:  # joins it, and bridges it with the other moments it touches
                m[2], m[3], m[4] = min(m[2], s), max(m[3], e), m[4] + 1
                for other in near:
                    if other is not m and other[0] >= m[0] - gap:
                        m[2], m[3], m[4] = min(m[2], other[2]), max(m[3], other[3]), m[4] + other[4]
                        other[5] = False
            continue
        m = [sc, v, s, e, 1, True]
        mine.append(m)
        out.append(m)
    return [m[:5] for m in out if m[5]]


def clip_vector(pipe: VideoPipeline, clips: torch.Tensor) -> np.ndarray:
    """The unit vector float32 ``[C]`` of a prepared example clip (float ``[V, T, 3, S, S]``):
    its views' video embeddings averaged, as a window is embedded."""
    vec = pipe.encode(clips).embeds.float().mean(dim=0)
    return normalized(vec.detach().cpu().numpy()[None])[0]


def check_moment_filters(
    top_k: int, min_duration: float | None = None, max_duration: float | None = None
) -> None:
    """``InputError`` unless ``top_k`` is an int from 1 to :data:`MAX_TOP_K` and the durations
    are finite seconds >= 0 with ``min_duration <= max_duration``."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise InputError(f"top_k must be an int from 1 to {MAX_TOP_K}, got {top_k!r}")
    for name, v in (("min_duration", min_duration), ("max_duration", max_duration)):
        if v is not None and not (isinstance(v, int | float) and np.isfinite(v) and v >= 0):
            raise InputError(f"{name} must be a finite number of seconds >= 0, got {v!r}")
    if min_duration is not None and max_duration is not None and min_duration > max_duration:
        raise InputError(f"min_duration {min_duration} is above max_duration {max_duration}")


def search_moments(
    query: str | None,
    index: MomentIndex,
    model: XCLIP,
    *,
    like: str | os.PathLike | bytes | None = None,
    top_k: int = 10,
    path_glob: str | None = None,
    min_duration: float | None = None,
    max_duration: float | None = None,
    template: str = "{}",
) -> list[Moment]:
    """The ``top_k`` best moments of ``index`` for a text ``query`` or an example clip
    ``like`` (see the module doc). ``path_glob`` (``fnmatch``, on the paths as embedded) keeps
    only matching videos; ``min_duration``/``max_duration`` (seconds) apply to merged moments.
    ``model`` must have the weights that embedded the library."""
    if not isinstance(index, MomentIndex):
        raise TypeError(f"index must be a MomentIndex (load_moments), got {type(index).__name__}")
    if not isinstance(model, XCLIP):
        raise TypeError(f"model must be an XCLIP, got {type(model).__name__}")
    check_moment_filters(top_k, min_duration, max_duration)
    check_index_model(index.model, model, what="the moments library")
    if len(index) == 0 or index.vectors is None:
        raise InputError("the moments library is empty (no windows); embed videos into it first")
    q = query_vector(model, query, like=like, template=template,
                     num_clips=int(index.settings.get("num_clips", 1)),
                     num_crops=int(index.settings.get("num_crops", 1)))  # fmt: skip
    videos = None
    if path_glob is not None:
        videos = np.array([fnmatch.fnmatchcase(v, path_glob) for v in index.videos], dtype=bool)
    return nearest_moments(index, q, top_k=top_k, videos=videos, min_duration=min_duration,
                           max_duration=max_duration)  # fmt: skip


def nearest_moments(
    index: MomentIndex,
    q: np.ndarray,
    *,
    top_k: int = 10,
    videos: np.ndarray | None = None,
    min_duration: float | None = None,
    max_duration: float | None = None,
) -> list[Moment]:
    """The ``top_k`` best moments of ``index`` for the unit query vector ``q`` (float32 ``[C]``,
    :func:`query_vector`): the search of :func:`search_moments` once the query is embedded.
    ``videos``: bool ``[len(index.videos)]``, only those videos (a path filter)."""
    check_moment_filters(top_k, min_duration, max_duration)
    if len(index) == 0 or index.vectors is None:
        raise InputError("the moments library is empty (no windows); embed videos into it first")
    allowed = None
    if videos is not None:
        videos = np.asarray(videos, dtype=bool)
        if not videos.any():
            return []
        allowed = videos[index.video]
    n_allowed = len(index) if allowed is None else int(allowed.sum())
    fetch = min(n_allowed, top_k * _OVERFETCH)
    while True:
        scores, ids = index.vectors.search(q, fetch, allowed=allowed)
        moments = [
            m for m in _merge(index, ids[0], scores[0])
            if (min_duration is None or m[3] - m[2] >= min_duration - 1e-6)
            and (max_duration is None or m[3] - m[2] <= max_duration + 1e-6)
        ]  # fmt: skip
        if len(moments) >= top_k or fetch >= n_allowed:
            break
        fetch = min(n_allowed, fetch * 2)
    moments.sort(key=lambda m: (-m[0], m[1], m[2]))
    return [Moment(r + 1, index.videos[v], s, e, sc, n, index.locations[v])
            for r, (sc, v, s, e, n) in enumerate(moments[:top_k])]  # fmt: skip
