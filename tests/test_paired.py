"""Paired comparisons over seeds (xclip_app.train.paired): the t interval, power, verdicts."""

from __future__ import annotations

import math

import pytest

from xclip_app.train.paired import detectable_effect, paired_difference, power, seeds_needed


def test_interval_is_the_paired_t_interval():
    # differences 1, 2, 3, 4: mean 2.5, sample sd 1.2910, t(0.975, 3) = 3.182446
    d = paired_difference("b", "a", [11, 12, 13, 14], [10, 10, 10, 10], [0, 1, 2, 3])
    half = 3.182446305 * 1.2909944487 / 2
    assert d.mean == pytest.approx(2.5) and d.sd == pytest.approx(1.2909944487)
    assert (d.low, d.high) == pytest.approx((2.5 - half, 2.5 + half))
    assert d.n == 4 and d.differences == (1, 2, 3, 4) and d.verdict == "helps"
    assert d.option_mean == 12.5 and d.baseline_mean == 10


def test_pairing_removes_the_shared_seed_spread():
    """Seeds that move both arms together (spread 20 points) do not hide a constant +2 gap that
    the unpaired means cannot resolve."""
    base = [30.0, 50.0, 40.0, 60.0, 45.0]
    opt = [b + 2 + e for b, e in zip(base, [0.3, -0.2, 0.1, -0.3, 0.1], strict=True)]
    d = paired_difference("opt", "base", opt, base, range(5))
    assert d.verdict == "helps" and d.low > 0
    hurt = paired_difference("base", "opt", base, opt, range(5))
    assert hurt.verdict == "hurts" and hurt.high < 0


def test_no_effect_states_its_power():
    d = paired_difference("b", "a", [50, 40, 61], [48, 45, 55], [0, 1, 2])
    assert d.low < 0 < d.high and d.verdict == "no effect detectable at this power"
    text = d.verdict_text()
    assert text.startswith("no effect detectable at this power (3 seeds: 80 % power for ")
    assert f"{d.detectable:.1f} points" in text and f"{100 * d.power:.0f} % for 5" in text
    assert power(d.detectable, d.sd, 3) == pytest.approx(0.8, abs=1e-4)


def test_power_matches_the_paired_t_test_tables():
    # Cohen's d = 1 with 10 pairs, two-sided alpha 0.05: power 0.803 (G*Power); d = 0.5 needs 34
    assert power(5.0, 5.0, 10) == pytest.approx(0.8031, abs=2e-4)
    assert seeds_needed(5.0, 5.0) == 10
    assert seeds_needed(2.5, 5.0) == 34
    assert detectable_effect(5.0, 10) == pytest.approx(4.97, abs=0.02)
    assert power(0.0, 5.0, 10) == pytest.approx(0.05)
    assert power(5.0, 5.0, 20) > power(5.0, 5.0, 10) > power(5.0, 5.0, 5)
    # a large effect against a small spread: the far tail underflows in scipy, the power is 1
    assert power(5.0, 1.7, 10) == pytest.approx(1.0) and power(-50.0, 1.0, 10) == 1.0


def test_one_seed_or_identical_differences():
    one = paired_difference("b", "a", [60.0], [50.0], [7])
    assert math.isinf(one.low) and math.isinf(one.high) and one.verdict.startswith("no effect")
    assert one.verdict_text().endswith("(one seed: no interval)")
    same = paired_difference("b", "a", [12.0, 13.0], [10.0, 11.0], [0, 1])
    assert same.low == same.high == 2.0 and same.verdict == "helps"


def test_arms_must_have_one_value_per_seed():
    with pytest.raises(ValueError, match="one value of each arm per seed"):
        paired_difference("b", "a", [1.0, 2.0], [1.0], [0, 1])
