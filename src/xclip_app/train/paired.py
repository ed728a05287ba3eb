"""Paired comparisons over seeds: the difference of an option against its baseline, its interval,
the power of the design and the verdict that follows from them.

Both arms of a comparison run on the same seeds (the same data order, augmentations, evaluation
views and, where the architectures share it, initialisation), so each seed gives one difference
``option - baseline`` and the seed-to-seed variation that both arms share cancels. The interval is
the paired t interval (``scipy.stats.ttest_rel``) of the mean difference; the power is that of
the two-sided paired t test at the measured standard deviation of the differences (the
noncentral t distribution, ``scipy.stats.nct``). A verdict reads from the interval only: "helps"
when it lies above zero, "hurts" when below, otherwise "no effect detectable at this power" with
the effect the design detects with 80 % power stated beside it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

__all__ = [
    "PairedDifference",
    "detectable_effect",
    "paired_difference",
    "power",
    "seeds_needed",
]

HELPS, HURTS, UNDETECTED = "helps", "hurts", "no effect detectable at this power"


def power(effect: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """The probability that a two-sided paired t test at level ``alpha`` over ``n`` seeds rejects
    "no difference" when the true mean difference is ``effect`` and the differences have standard
    deviation ``sd``. ``nan`` for fewer than two seeds; 1 (or ``alpha``) for ``sd == 0``."""
    from scipy import stats  # lazy: CLI start-up

    if n < 2:
        return math.nan
    if sd <= 0:
        return 1.0 if effect != 0 else alpha
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = abs(effect) / (sd / math.sqrt(n))
    # the far tail underflows to nan for a large noncentrality (scipy's nct.cdf); it is ~0 there
    far = float(stats.nct.cdf(-crit, df, nc))
    return float(stats.nct.sf(crit, df, nc)) + (far if math.isfinite(far) else 0.0)


def detectable_effect(sd: float, n: int, target: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest true mean difference the paired t test over ``n`` seeds detects with
    probability ``target`` (the minimal detectable effect), in the units of the differences."""
    from scipy import optimize  # lazy: CLI start-up

    if n < 2:
        return math.inf
    if sd <= 0:
        return 0.0
    hi = sd
    while power(hi, sd, n, alpha) < target:
        hi *= 2
    return float(optimize.brentq(lambda e: power(e, sd, n, alpha) - target, 0.0, hi, xtol=1e-6))


def seeds_needed(effect: float, sd: float, target: float = 0.8, alpha: float = 0.05,
                 limit: int = 10_000) -> int | None:  # fmt: skip
    """The fewest seeds (at least 2) whose paired t test detects ``effect`` with probability
    ``target`` at the standard deviation ``sd`` of the differences; None beyond ``limit``."""
    if sd <= 0:
        return 2
    # the normal approximation as the starting point, then walk to the exact t answer
    from scipy import stats  # lazy: CLI start-up

    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(target)
    n = max(2, math.ceil((z * sd / effect) ** 2))
    while n > 2 and power(effect, sd, n - 1, alpha) >= target:
        n -= 1
    while power(effect, sd, n, alpha) < target:
        n += 1
        if n > limit:
            return None
    return n


@dataclass(frozen=True)
class PairedDifference:
    """One option against its baseline over the same seeds (percentage points for accuracies)."""

    option: str
    baseline: str
    metric: str
    seeds: tuple[int, ...]
    option_values: tuple[float, ...]
    baseline_values: tuple[float, ...]
    differences: tuple[float, ...]  # option - baseline, per seed
    option_mean: float
    baseline_mean: float
    mean: float  # mean difference
    sd: float  # sample standard deviation of the differences
    low: float  # the interval of the mean difference
    high: float
    confidence: float
    method: str
    effect: float  # the effect size the power is stated for
    power: float  # of the paired t test to detect +-effect at the measured sd
    detectable: float  # the effect detected with 80 % power at the measured sd
    seeds_for_effect: int | None  # seeds needed to detect +-effect with 80 % power
    verdict: str

    @property
    def n(self) -> int:
        return len(self.seeds)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["n"] = self.n
        return d

    def verdict_text(self) -> str:
        """The verdict with the power it was reached at, e.g. "no effect detectable at this power
        (5 seeds: 80 % power for 6.1 points; 41 % for 5)"."""
        if self.verdict != UNDETECTED:
            return self.verdict
        if self.n < 2:
            return f"{self.verdict} (one seed: no interval)"
        return (f"{self.verdict} ({self.n} seeds: 80 % power for {self.detectable:.1f} points; "
                f"{100 * self.power:.0f} % for {self.effect:g})")  # fmt: skip


def paired_difference(
    option: str,
    baseline: str,
    option_values: Sequence[float],
    baseline_values: Sequence[float],
    seeds: Sequence[int],
    *,
    metric: str = "top1",
    confidence: float = 0.95,
    effect: float = 5.0,
    alpha: float = 0.05,
) -> PairedDifference:
    """The paired difference ``option - baseline`` over ``seeds`` (value ``i`` of each arm is
    seed ``i``'s), its paired t interval at ``confidence``, the power of the design to detect
    ``+-effect`` and the verdict."""
    from scipy import stats  # lazy: CLI start-up

    a, b = [float(v) for v in option_values], [float(v) for v in baseline_values]
    if not (len(a) == len(b) == len(seeds)) or not seeds:
        raise ValueError(
            f"{option} vs {baseline}: {len(a)} and {len(b)} values for {len(seeds)} seeds; a "
            "paired comparison needs one value of each arm per seed"
        )
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    mean = sum(diffs) / n
    sd = statistics.stdev(diffs) if n > 1 else math.nan
    if n < 2:
        low, high = -math.inf, math.inf
    elif sd == 0:  # every seed gave the same difference: the interval collapses onto it
        low = high = mean
    else:
        ci = stats.ttest_rel(a, b).confidence_interval(confidence)
        low, high = float(ci.low), float(ci.high)
    verdict = HELPS if low > 0 else HURTS if high < 0 else UNDETECTED
    return PairedDifference(
        option=option, baseline=baseline, metric=metric, seeds=tuple(int(s) for s in seeds),
        option_values=tuple(a), baseline_values=tuple(b), differences=tuple(diffs),
        option_mean=sum(a) / n, baseline_mean=sum(b) / n, mean=mean, sd=sd, low=low, high=high,
        confidence=confidence, method="paired t interval (scipy.stats.ttest_rel)", effect=effect,
        power=power(effect, sd, n, alpha), detectable=detectable_effect(sd, n, 0.8, alpha),
        seeds_for_effect=seeds_needed(effect, sd, 0.8, alpha) if n > 1 else None, verdict=verdict,
    )  # fmt: skip
