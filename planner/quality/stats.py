"""pass@1 with a 95% confidence interval, and a paired comparison of two runs."""

from __future__ import annotations

import math
from dataclasses import dataclass


def wilson_interval(passed: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (well behaved near 0 and 1)."""
    if n == 0:
        return (0.0, 0.0)
    p = passed / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Paired:
    n: int
    a_only: int  # problems A solves and B does not
    b_only: int
    both: int
    neither: int
    p_value: float  # exact two-sided McNemar (binomial on the discordant pairs)


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: binomial(a_only + b_only, 1/2) tail, doubled."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    k = min(a_only, b_only)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired(a: dict[str, bool], b: dict[str, bool]) -> Paired:
    common = sorted(set(a) & set(b))
    a_only = sum(a[t] and not b[t] for t in common)
    b_only = sum(b[t] and not a[t] for t in common)
    both = sum(a[t] and b[t] for t in common)
    neither = len(common) - a_only - b_only - both
    return Paired(len(common), a_only, b_only, both, neither, mcnemar_exact(a_only, b_only))
