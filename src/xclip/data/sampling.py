"""Temporal sampling: which frame indices of a video become the model's T input frames.

Everything here is a pure function of integers and a :class:`numpy.random.Generator`, so it is
cheap to test and reproducible.

The default is the original X-CLIP sampling, mmaction2's ``SampleFrames(clip_len=1,
frame_interval=1, num_clips=T)`` (TSN-style *sparse segment* sampling):

* train: the video is cut into T segments of ``avg = total // T`` frames and one frame is drawn
  uniformly inside each segment (``i*avg + randint(avg)``). Videos with ``T < total < 2T`` frames
  (``avg == 0``) get T sorted random indices drawn *with replacement*; videos with at most T frames
  get ``around(i * total / T)`` (numpy's round-half-to-even), so frames repeat.
* test: the centre of each segment, ``int(i*avg + avg/2)`` with the float ``avg = total / T``.
* every index is finally wrapped into the video (``out_of_bound_opt='loop'``).

Multi-view sampling returns ``[V, T]`` indices: ``"random"`` is the original multi-view test
(V independent train-style samplings), ``"uniform"`` a deterministic alternative that shifts the
sampling point inside every segment to ``(v + 0.5) / V`` (V=1 is exactly the test-mode centre).
Dense sampling (``clip_len=T, frame_interval=64//T, num_clips=V``, the maintainer's recipe in
issue #99) is available with ``strategy="dense"``.
"""

from __future__ import annotations

import numbers
from typing import Literal

import numpy as np

from xclip.errors import InputError

__all__ = [
    "SamplingStrategy",
    "ViewMode",
    "clip_offsets_test",
    "clip_offsets_train",
    "make_rng",
    "sample_dense",
    "sample_frame_indices",
    "sample_test_indices",
    "sample_train_indices",
    "sample_uniform_views",
]

SamplingStrategy = Literal["sparse", "dense"]
ViewMode = Literal["random", "uniform"]

RngLike = np.random.Generator | int | None


def make_rng(rng: RngLike) -> np.random.Generator:
    """A Generator from a Generator (returned as is), an integer seed, or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _is_int(x: object) -> bool:
    """An integer (Python or numpy; ``True`` is not a frame count), or an integral float."""
    if isinstance(x, bool | np.bool_):
        return False
    if isinstance(x, numbers.Integral):
        return True
    return isinstance(x, numbers.Real) and float(x).is_integer()  # NaN/inf are not


def _check(total: int, num_frames: int) -> tuple[int, int]:
    """``(total, num_frames)`` as Python ints, or :class:`InputError` naming the bad one."""
    if not _is_int(total) or total < 1:
        raise InputError(f"a video needs at least one frame to sample from, got {total!r} frames")
    if not _is_int(num_frames) or num_frames < 1:
        raise InputError(f"num_frames must be a positive integer, got {num_frames!r}")
    return int(total), int(num_frames)


# --- mmaction2 SampleFrames arithmetic (clip offsets) -----------------------------------------


def clip_offsets_train(
    total: int, clip_len: int, frame_interval: int, num_clips: int, rng: np.random.Generator
) -> np.ndarray:
    """``SampleFrames._get_train_clips``: the start frame of each of ``num_clips`` clips."""
    ori_clip_len = clip_len * frame_interval
    avg = (total - ori_clip_len + 1) // num_clips
    if avg > 0:
        return np.arange(num_clips, dtype=np.int64) * avg + rng.integers(avg, size=num_clips)
    if total > max(num_clips, ori_clip_len):
        return np.sort(rng.integers(total - ori_clip_len + 1, size=num_clips))
    if avg == 0:
        ratio = (total - ori_clip_len + 1.0) / num_clips
        return np.around(np.arange(num_clips) * ratio).astype(np.int64)
    return np.zeros(num_clips, dtype=np.int64)


def clip_offsets_test(total: int, clip_len: int, frame_interval: int, num_clips: int) -> np.ndarray:
    """``SampleFrames._get_test_clips`` (without ``twice_sample``): segment centres."""
    ori_clip_len = clip_len * frame_interval
    avg = (total - ori_clip_len + 1) / float(num_clips)
    if total > ori_clip_len - 1:
        return (np.arange(num_clips) * avg + avg / 2.0).astype(np.int64)
    return np.zeros(num_clips, dtype=np.int64)


def _frames(offsets: np.ndarray, clip_len: int, frame_interval: int, total: int) -> np.ndarray:
    inds = offsets[:, None] + np.arange(clip_len)[None, :] * frame_interval
    return np.mod(inds, total).astype(np.int64)  # out_of_bound_opt='loop'


# --- public sampling functions ------------------------------------------------------------------


def sample_train_indices(total: int, num_frames: int, rng: RngLike = None) -> np.ndarray:
    """Original train sampling: ``[T]`` indices, one random frame per segment."""
    total, num_frames = _check(total, num_frames)
    offsets = clip_offsets_train(total, 1, 1, num_frames, make_rng(rng))
    return _frames(offsets, 1, 1, total).reshape(-1)


def sample_test_indices(total: int, num_frames: int) -> np.ndarray:
    """Original single-view test sampling: ``[T]`` indices at the segment centres."""
    total, num_frames = _check(total, num_frames)
    return _frames(clip_offsets_test(total, 1, 1, num_frames), 1, 1, total).reshape(-1)


def sample_uniform_views(total: int, num_frames: int, num_views: int) -> np.ndarray:
    """Deterministic multi-view sampling: ``[V, T]``; view v takes the point ``(v+0.5)/V`` of each
    of the T segments (``int(i*avg + avg*(v+0.5)/V)`` with ``avg = total/T``). V=1 equals
    :func:`sample_test_indices`."""
    total, num_frames = _check(total, num_frames)
    if not _is_int(num_views) or num_views < 1:
        raise InputError(f"num_views must be a positive integer, got {num_views!r}")
    num_views = int(num_views)
    avg = total / float(num_frames)
    seg = np.arange(num_frames)[None, :] * avg
    shift = (np.arange(num_views)[:, None] + 0.5) / num_views * avg
    return np.mod((seg + shift).astype(np.int64), total)


def sample_dense(
    total: int,
    num_frames: int,
    *,
    frame_interval: int | None = None,
    num_views: int = 1,
    train: bool,
    rng: RngLike = None,
) -> np.ndarray:
    """Dense sampling, ``SampleFrames(clip_len=T, frame_interval, num_clips=V)``: ``[V, T]``
    consecutive frames ``frame_interval`` apart (default ``max(1, 64 // T)``, issue #99).
    Train draws each clip start at random inside its segment; test takes the segment centres."""
    total, num_frames = _check(total, num_frames)
    if frame_interval is not None and (not _is_int(frame_interval) or frame_interval < 1):
        raise InputError(f"frame_interval must be a positive integer, got {frame_interval!r}")
    if not _is_int(num_views) or num_views < 1:
        raise InputError(f"num_views must be a positive integer, got {num_views!r}")
    num_views = int(num_views)
    interval = max(1, 64 // int(num_frames)) if frame_interval is None else int(frame_interval)
    if train:
        offsets = clip_offsets_train(total, num_frames, interval, num_views, make_rng(rng))
    else:
        offsets = clip_offsets_test(total, num_frames, interval, num_views)
    return _frames(offsets, num_frames, interval, total)


def sample_frame_indices(
    total: int,
    num_frames: int,
    *,
    train: bool,
    num_views: int = 1,
    view_mode: ViewMode = "random",
    strategy: SamplingStrategy = "sparse",
    frame_interval: int | None = None,
    rng: RngLike = None,
) -> np.ndarray:
    """All temporal sampling in one call; returns ``[V, T]`` int64 indices into ``[0, total)``.

    * ``strategy="sparse"`` (the original): ``train=True`` gives V independent train samplings;
      ``train=False`` with V=1 gives the segment centres; with V>1 ``view_mode="random"`` gives
      the original's V independent train-style samplings (stochastic, as the original multi-view
      test) and ``view_mode="uniform"`` the deterministic :func:`sample_uniform_views`.
    * ``strategy="dense"``: :func:`sample_dense` (``view_mode`` "random" draws random clip starts
      in test mode too).
    """
    total, num_frames = _check(total, num_frames)
    if not _is_int(num_views) or num_views < 1:
        raise InputError(f"num_views must be a positive integer, got {num_views!r}")
    num_views = int(num_views)
    if view_mode not in ("random", "uniform"):
        raise InputError(f"view_mode must be 'random' or 'uniform', got {view_mode!r}")
    if strategy == "dense":
        random_clips = train or (num_views > 1 and view_mode == "random")
        return sample_dense(
            total,
            num_frames,
            frame_interval=frame_interval,
            num_views=num_views,
            train=random_clips,
            rng=rng,
        )
    if strategy != "sparse":
        raise InputError(f"strategy must be 'sparse' or 'dense', got {strategy!r}")
    if train or (num_views > 1 and view_mode == "random"):
        gen = make_rng(rng)
        return np.stack([sample_train_indices(total, num_frames, gen) for _ in range(num_views)])
    if num_views == 1:
        return sample_test_indices(total, num_frames)[None, :]
    return sample_uniform_views(total, num_frames, num_views)
