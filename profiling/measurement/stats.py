"""Summary statistics over timing samples (seconds per call); pure functions."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class SampleStats:
    """Seconds per call: median, min, IQR, distribution-free 95% CI of the median and its coverage."""

    n_samples: int
    median_s: float
    min_s: float
    iqr_s: float
    ci95_low_s: float
    ci95_high_s: float
    ci95_s: float  # half-width of the CI
    ci_coverage: float  # exact coverage of the order-statistic interval (>= 0.95 when n >= 6)

    def to_dict(self) -> dict:
        return asdict(self)


def _binom_cdf(k: int, n: int) -> float:
    """P(B <= k) for B ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


def median_ci_ranks(n: int, level: float = 0.95) -> tuple[int, int, float]:
    """1-based order-statistic ranks (lo, hi) whose interval covers the median with >= level.

    The interval [x_(l), x_(n-l+1)] covers the population median with probability
    1 - 2 P(B <= l-1), B ~ Bin(n, 1/2). Below n=6 no interval reaches 95%; min..max is returned
    with its actual coverage.
    """
    best = 1
    for lo in range(1, n // 2 + 1):
        if 1 - 2 * _binom_cdf(lo - 1, n) >= level:
            best = lo
        else:
            break
    return best, n - best + 1, 1 - 2 * _binom_cdf(best - 1, n)


def summarize_samples(samples: list[float] | np.ndarray) -> SampleStats:
    """Stats of per-call seconds, one sample per repeat."""
    x = np.sort(np.asarray(samples, dtype=float))
    if x.size == 0:
        raise ValueError("no samples")
    lo, hi, coverage = median_ci_ranks(x.size)
    q1, q3 = np.percentile(x, [25, 75])
    low, high = float(x[lo - 1]), float(x[hi - 1])
    return SampleStats(int(x.size), float(np.median(x)), float(x[0]), float(q3 - q1),
                       low, high, (high - low) / 2, coverage)


@dataclass(frozen=True)
class RatioStats:
    """The time ratio t_variant / t_baseline (> 1: the variant takes longer) with its 95% CI,
    and its inverse, the speedup t_baseline / t_variant (> 1: the variant is faster). `paired`
    says how the ratio was obtained (interleaved samples, or two separate medians).

    The one significance rule of the lab: a difference is significant when the ratio's CI lies
    wholly beyond the threshold; a CI that touches it is not, and neither is a missing one."""

    ratio: float
    ci95_low: float
    ci95_high: float
    n_pairs: int
    paired: bool

    @property
    def speedup(self) -> float:
        """t_baseline / t_variant: 1.48 reads "1.48× faster"; NaN without a positive ratio."""
        return _inverse(self.ratio)

    @property
    def speedup_ci95(self) -> tuple[float, float]:
        """(low, high) of the speedup: the ratio's CI bounds inverted, and so swapped."""
        return _inverse(self.ci95_high), _inverse(self.ci95_low)

    def side_of(self, bound: float) -> int:
        """+1 when the ratio's CI lies wholly above `bound`, -1 wholly below, 0 when it touches
        or straddles it (or is missing)."""
        if self.ci95_low > bound:
            return 1
        return -1 if self.ci95_high < bound else 0

    def change(self, threshold: float = 0.0) -> str:
        """'slower' when the CI lies wholly above 1 + threshold, 'faster' wholly below
        1 - threshold (a fraction, 0.05 = 5%), else ''."""
        if self.side_of(1 + threshold) > 0:
            return "slower"
        return "faster" if self.side_of(1 - threshold) < 0 else ""

    def significant(self, threshold: float = 0.0) -> bool:
        """The CI lies wholly beyond 1 +- threshold (a fraction, 0.05 = 5%)."""
        return self.change(threshold) != ""

    def speedup_fields(self) -> dict[str, float]:
        """speedup, speedup_ci95_low, speedup_ci95_high: the fields `--json` carries beside
        the ratio's."""
        low, high = self.speedup_ci95
        return {"speedup": self.speedup, "speedup_ci95_low": low, "speedup_ci95_high": high}

    def to_dict(self) -> dict:
        return asdict(self)


def _inverse(value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return 1 / value if math.isfinite(value) and value > 0 else math.nan


def ratio_stats(ratio: object, low: object, high: object, paired: bool = True,
                n_pairs: int = 0) -> RatioStats:
    """A RatioStats from stored values (ratio_to_baseline and its CI); a missing value (None,
    NaN, text) is NaN, and a CI with a NaN bound is never significant."""
    def number(v: object) -> float:
        try:
            return float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return math.nan

    return RatioStats(number(ratio), number(low), number(high), n_pairs, paired)


def paired_ratio(a: list[float] | np.ndarray, b: list[float] | np.ndarray) -> RatioStats:
    """Median of the per-repeat ratios b_i / a_i with the order-statistic 95% CI of that median.

    a and b are samples taken interleaved, repeat by repeat (measure_interleaved), so pair i
    shared the machine's state; the ratios are then far steadier than a ratio of two medians.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size != y.size or x.size == 0:
        raise ValueError(f"paired samples must have the same, non-zero length ({x.size}, {y.size})")
    ratios = summarize_samples(y / x)
    return RatioStats(ratios.median_s, ratios.ci95_low_s, ratios.ci95_high_s, int(x.size), True)


def unpaired_ratio(a: SampleStats | dict, b: SampleStats | dict) -> RatioStats | None:
    """B / A from two independent measurements: the ratio of medians, bounded by the ratio of
    the far ends of the two medians' CIs (conservative: both errors at once). None when either
    side has no CI."""
    get = (lambda s, k: s[k]) if isinstance(a, dict) else getattr  # noqa: E731
    try:
        values = [float(get(s, k)) for s in (a, b)
                  for k in ("median_s", "ci95_low_s", "ci95_high_s")]
    except (KeyError, TypeError, ValueError):
        return None
    a_med, a_low, a_high, b_med, b_low, b_high = values
    if not all(math.isfinite(v) and v > 0 for v in values):
        return None
    try:
        n = int(min(get(a, "n_samples"), get(b, "n_samples")))
    except (KeyError, TypeError, ValueError):  # a count missing (None, NaN) or absent
        n = 0
    return RatioStats(b_med / a_med, b_low / a_high, b_high / a_low, n, False)


def relative_spread(samples: list[float] | np.ndarray) -> float:
    """IQR / median of the samples (0.1 = 10%): pyperf and torch.utils.benchmark warn past 10%."""
    s = summarize_samples(samples)
    return s.iqr_s / s.median_s if s.median_s > 0 else math.inf


def effective_bytes(numel: int, in_itemsize: int, out_itemsize: int, pass_: str) -> int:
    """Bytes moved per call, counting each tensor once.

    forward:  read x, write y                         = n*in + n*out
    backward: forward, then the gradient reads x and dy and writes dx
                                                      = n*in + n*out + n*in + n*out + n*in
    (dy has y's dtype; dx has x's.)
    """
    fwd = numel * (in_itemsize + out_itemsize)
    if pass_ == "forward":
        return fwd
    return fwd + numel * (2 * in_itemsize + out_itemsize)


def throughput(numel: int, bytes_per_call: int, median_s: float, peak_gbps: float | None) -> dict:
    """elements/s, effective GB/s (1e9 bytes/s) and utilization of the calibrated peak (0..1+)."""
    if not median_s or median_s <= 0:
        return {"elements_per_s": None, "gbps": None, "utilization": None}
    gbps = bytes_per_call / median_s / 1e9
    return {"elements_per_s": numel / median_s, "gbps": gbps,
            "utilization": gbps / peak_gbps if peak_gbps else None}
