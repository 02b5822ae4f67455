"""Population drift: the PSI of a feature (or of the score) between a reference and a
current sample, against the threshold sampling alone reaches at these sizes.

Under no drift, PSI x n m / (n + m) follows a chi-square with bins - 1 degrees of freedom
(PSI is, to second order, the two-sample chi-square statistic scaled by 1/n + 1/m), so the
threshold at the current sample sizes is that chi-square's 1 - alpha quantile x (1/n + 1/m).
A drift is flagged when the PSI is both beyond that threshold (not sampling noise) and at
least `MATERIAL_PSI` (big enough to matter); `STRONG_PSI` is a strong drift. A feature with
a single bin on both sides (blank, or one value, everywhere) or no rows on a side cannot be
tested: it is "untested", and the monitor says which. Bins: the
reference's deciles for numbers, its most frequent categories for text (ties by name), and
missing values as a bin of their own; nothing depends on the order of the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

MATERIAL_PSI = 0.10
STRONG_PSI = 0.25
BINS = 10
TOP_CATEGORIES = 12


@dataclass
class Drift:
    name: str
    kind: str  # "score", "numeric" or "categorical"
    psi: float
    threshold: float  # the sampling threshold at these sample sizes
    bins: pd.DataFrame  # bin, reference share, current share
    status: str = "ok"  # ok, drift, strong drift, untested


def critical_psi(bins: int, n: int, m: int, alpha: float) -> float:
    """The PSI that sampling alone exceeds with probability alpha, for `bins` bins and
    samples of n and m rows (the chi-square approximation)."""
    if bins < 2 or n == 0 or m == 0:
        return float("inf")
    return float(stats.chi2.ppf(1 - alpha, bins - 1) * (1 / n + 1 / m))


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Population stability index of two histograms over the same bins (a half count added
    to every bin, so that an empty bin is finite)."""
    p = (ref_counts + 0.5) / (ref_counts.sum() + 0.5 * len(ref_counts))
    q = (cur_counts + 0.5) / (cur_counts.sum() + 0.5 * len(cur_counts))
    return float(np.sum((q - p) * np.log(q / p)))


def numeric_bins(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    ref_ok, cur_ok = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    edges = (
        np.unique(np.quantile(ref_ok, np.linspace(0, 1, BINS + 1)[1:-1]))
        if len(ref_ok)
        else np.array([])
    )
    labels = [f"<= {e:.4g}" for e in edges] + [f"> {edges[-1]:.4g}" if len(edges) else "all"]
    rc = np.bincount(np.searchsorted(edges, ref_ok, side="left"), minlength=len(edges) + 1)
    cc = np.bincount(np.searchsorted(edges, cur_ok, side="left"), minlength=len(edges) + 1)
    rc = np.append(rc, np.isnan(ref).sum())
    cc = np.append(cc, np.isnan(cur).sum())
    return rc, cc, [*labels, "missing"]


def categorical_bins(ref: pd.Series, cur: pd.Series) -> tuple[np.ndarray, np.ndarray, list[str]]:
    ref = ref.astype(object).where(ref.notna(), "(missing)")
    cur = cur.astype(object).where(cur.notna(), "(missing)")
    # Most frequent first, ties by name: the bins do not depend on the order of the rows.
    counts = ref.value_counts()
    top = sorted(counts.index, key=lambda v: (-counts[v], str(v)))[:TOP_CATEGORIES]
    labels = [*map(str, top), "(other)"]
    rc = np.array([(ref == t).sum() for t in top] + [(~ref.isin(top)).sum()], dtype=float)
    cc = np.array([(cur == t).sum() for t in top] + [(~cur.isin(top)).sum()], dtype=float)
    return rc, cc, labels


def drift_of(name, kind, rc, cc, labels, alpha) -> Drift:
    used = (rc + cc) > 0  # a bin empty on both sides is no bin
    rc, cc = rc[used], cc[used]
    labels = [label for label, u in zip(labels, used, strict=True) if u]
    value = psi(rc, cc) if len(rc) > 1 else 0.0
    threshold = critical_psi(len(rc), int(rc.sum()), int(cc.sum()), alpha)
    status = "ok"
    if not np.isfinite(threshold):
        # One bin on both sides (a column blank, or one value, everywhere) or an empty
        # side: no test can say anything. Said so, never counted as "ok".
        status = "untested"
    elif value > threshold and value >= MATERIAL_PSI:
        status = "strong drift" if value >= STRONG_PSI else "drift"
    bins = pd.DataFrame(
        {
            "bin": labels,
            "reference": rc / max(rc.sum(), 1),
            "current": cc / max(cc.sum(), 1),
        }
    )
    return Drift(name, kind, value, threshold, bins, status)
