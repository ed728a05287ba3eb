"""Temporal sampling against an independent re-implementation of mmaction2's SampleFrames."""

from __future__ import annotations

import numpy as np
import pytest

from xclip.data.sampling import (
    sample_dense,
    sample_frame_indices,
    sample_test_indices,
    sample_train_indices,
    sample_uniform_views,
)


# --- reference: SampleFrames(clip_len, frame_interval, num_clips) written out from the original ----
def ref_train(total, clip_len, interval, num_clips, randint):
    ori = clip_len * interval
    avg = (total - ori + 1) // num_clips
    if avg > 0:
        off = [i * avg + r for i, r in enumerate(randint(avg, num_clips))]
    elif total > max(num_clips, ori):
        off = sorted(randint(total - ori + 1, num_clips))
    elif avg == 0:
        ratio = (total - ori + 1.0) / num_clips
        off = [int(np.around(i * ratio)) for i in range(num_clips)]
    else:
        off = [0] * num_clips
    return [[(o + j * interval) % total for j in range(clip_len)] for o in off]


def ref_test(total, clip_len, interval, num_clips):
    ori = clip_len * interval
    avg = (total - ori + 1) / float(num_clips)
    off = (
        [int(i * avg + avg / 2.0) for i in range(num_clips)] if total > ori - 1 else [0] * num_clips
    )
    return [[(o + j * interval) % total for j in range(clip_len)] for o in off]


def rng_randint(seed):
    g = np.random.default_rng(seed)
    return lambda high, n: [int(x) for x in g.integers(high, size=n)]


TOTALS = [1, 2, 3, 5, 7, 8, 9, 12, 15, 16, 17, 31, 32, 33, 100, 257, 300]


@pytest.mark.parametrize("T", [1, 8, 16, 32])
@pytest.mark.parametrize("total", TOTALS)
def test_train_matches_reference(total, T):
    for seed in range(3):
        got = sample_train_indices(total, T, np.random.default_rng(seed))
        want = np.array(ref_train(total, 1, 1, T, rng_randint(seed))).reshape(-1)
        np.testing.assert_array_equal(got, want)
        assert got.min() >= 0 and got.max() < total and len(got) == T


@pytest.mark.parametrize("T", [1, 8, 16, 32])
@pytest.mark.parametrize("total", TOTALS)
def test_test_matches_reference(total, T):
    np.testing.assert_array_equal(
        sample_test_indices(total, T), np.array(ref_test(total, 1, 1, T)).reshape(-1)
    )


def test_known_values():
    # 300 frames, T=8: avg 37.5, centres int(37.5 i + 18.75)
    assert sample_test_indices(300, 8).tolist() == [18, 56, 93, 131, 168, 206, 243, 281]
    # 6 frames, T=8: around(i * 0.75), half to even: 1.5 -> 2, 4.5 -> 4
    assert sample_train_indices(6, 8, 0).tolist() == [0, 1, 2, 2, 3, 4, 4, 5]
    # segment rule: each index in its segment
    idx = sample_train_indices(80, 8, 1)
    assert all(10 * i <= v < 10 * (i + 1) for i, v in enumerate(idx))
    # T < total < 2T: sorted, with replacement allowed
    idx = sample_train_indices(12, 8, 2)
    assert (np.diff(idx) >= 0).all() and idx.max() < 12


def test_multiview_random_is_independent_train_samplings():
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    views = sample_frame_indices(100, 8, train=False, num_views=4, view_mode="random", rng=g1)
    want = np.stack([sample_train_indices(100, 8, g2) for _ in range(4)])
    np.testing.assert_array_equal(views, want)


def test_uniform_views_deterministic_and_spread():
    v = sample_uniform_views(160, 8, 4)
    assert v.shape == (4, 8)
    np.testing.assert_array_equal(v[:, 0], [2, 7, 12, 17])  # avg 20: 20*(k+.5)/4
    np.testing.assert_array_equal(sample_uniform_views(157, 8, 1)[0], sample_test_indices(157, 8))
    np.testing.assert_array_equal(
        sample_frame_indices(160, 8, train=False, num_views=4, view_mode="uniform"), v
    )
    assert len({tuple(r) for r in v}) == 4


@pytest.mark.parametrize("total", [5, 40, 63, 64, 65, 200])
def test_dense_matches_reference(total):
    T, interval = 8, 8
    for seed in range(3):
        got = sample_dense(total, T, frame_interval=interval, train=True, rng=seed)
        np.testing.assert_array_equal(got, ref_train(total, T, interval, 1, rng_randint(seed)))
    np.testing.assert_array_equal(
        sample_dense(total, T, frame_interval=interval, num_views=3, train=False),
        ref_test(total, T, interval, 3),
    )
    # default interval 64 // T
    np.testing.assert_array_equal(
        sample_dense(total, T, train=False), ref_test(total, T, 64 // T, 1)
    )


def test_frame_indices_shapes_and_errors():
    assert sample_frame_indices(50, 8, train=True, rng=0).shape == (1, 8)
    assert sample_frame_indices(50, 8, train=False).shape == (1, 8)
    assert sample_frame_indices(50, 8, train=False, num_views=2, strategy="dense").shape == (2, 8)
    with pytest.raises(ValueError, match="at least one frame"):
        sample_train_indices(0, 8, 0)
    with pytest.raises(ValueError):
        sample_frame_indices(10, 8, train=True, strategy="bogus")
    # seeds reproduce
    a = sample_frame_indices(1000, 16, train=True, rng=123)
    b = sample_frame_indices(1000, 16, train=True, rng=123)
    np.testing.assert_array_equal(a, b)
