"""Learned points: a small, sparse scorecard fitted from data, in the rules' YAML format.

1. Candidate rules: every value of every text profile column (and `source`), up to four
   quantile thresholds of every numeric profile column, every non-sales activity type
   (decayed count, capped at its 95th percentile among leads that have any), and the
   inactivity flag.
2. An L1-regularised logistic regression on train rows (standardised columns); the
   strength is chosen on validation log loss among fits with at most `max_rules` non-zero
   points, so the scorecard stays readable.
3. Coefficients are scaled to points, one factor for all (so the ranking is the
   regression's): the middle 90 % of train leads spread over 80 % of [floor, cap], and no
   single item worth more than half of that range (a rare, strong item would otherwise
   take 200 points and send every lead that has it to the cap). Points are rounded to
   whole numbers; a numeric column's points are made monotone over its thresholds in the
   direction it learned (`monotone_levels`: its bins never rank in an order the train rows
   did not show); the base is set so that the share of train rows reaching the MQL
   threshold is as close to `mql_share` as tied rows allow (`base_for_share`), and never
   above the cap. Zero-point entries are dropped.

Bounded work: the path of strengths stops at the first one that keeps more than
`max_rules` items (every weaker penalty keeps more), and the fit sees at most
`max_fit_rows` train rows (a seeded sample by lead and time, not by row order).

Marketing can read it, edit it, and run it like their own rules (`leadscore.rules.scorer`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

from leadscore.crm.dataset import Dataset
from leadscore.crm.errors import LeadscoreError
from leadscore.rules.config import ActivityRule, InactivityRule, ProfileRule, RulesConfig
from leadscore.rules.scorer import _ACTIVITY, INACTIVE, RuleScorer, batch_rule_inputs

EPS = 1e-6


@dataclass
class Candidate:
    """One column of the design matrix: which rule entry it feeds and how it is computed."""

    kind: str  # "value", "threshold", "activity", "inactive"
    column: str  # profile column, activity type, or days_inactive
    key: object = None  # the value or threshold
    cap: float = 0.0  # activity: count cap


@dataclass
class Suggestion:
    rules: RulesConfig
    c: float
    nonzero: int
    validation_auc: float
    validation_log_loss: float
    path: list[dict]  # per strength tried: C, non-zero, validation log loss


def _template(
    dataset: Dataset, columns: list[str], half_life_days: float, inactivity_days: float
) -> RulesConfig:
    """Every candidate entry with placeholder points (for computing the inputs)."""
    leads = dataset.leads
    profile = {}
    allowed = set(columns)
    for col in ("source", *dataset.profile_columns):
        if col == dataset.label_column or col not in allowed:
            continue
        if pd.api.types.is_numeric_dtype(leads[col]):
            profile[col] = ProfileRule(at_least={0.0: 0.0})
        else:
            profile[col] = ProfileRule(values={})
    activities = {}
    if not dataset.is_flat:
        sales = set(dataset.spec.sales_touch_types)
        for kind in sorted(dataset.activity_table.type_counts()):
            if kind not in sales:
                activities[kind] = ActivityRule(points=1.0)
    return RulesConfig(
        name="suggested",
        profile=profile,
        half_life_days=half_life_days,
        activities=activities,
        inactivity=InactivityRule(days=inactivity_days, points=-1.0) if activities else None,
    )


def _candidates(template: RulesConfig, X: dict, min_count: int) -> list[Candidate]:
    out: list[Candidate] = []
    for col, rule in template.profile.items():
        values = X[col]
        if rule.at_least is not None:
            x = np.asarray(values, dtype=np.float64)
            finite = x[~np.isnan(x)]
            if not len(finite):
                continue
            qs = np.unique(np.quantile(finite, [0.2, 0.4, 0.6, 0.8]))
            for q in qs:
                if min_count <= (x >= q).sum() <= len(x) - min_count:
                    out.append(Candidate("threshold", col, float(q)))
        else:
            counts = pd.Series(values, dtype="object").value_counts()
            for v, n in counts.items():
                if n >= min_count:
                    out.append(Candidate("value", col, str(v)))
    for kind in template.activities:
        x = np.asarray(X[_ACTIVITY + kind])
        active = x[x > 0]
        if (x > 0).sum() >= min_count:
            out.append(Candidate("activity", kind, cap=float(np.quantile(active, 0.95))))
    if template.inactivity is not None:
        out.append(Candidate("inactive", INACTIVE, template.inactivity.days))
    return out


def _design(cands: list[Candidate], X: dict) -> np.ndarray:
    m = np.zeros((len(X[INACTIVE]), len(cands)))
    text = {}
    for j, c in enumerate(cands):
        if c.kind == "value":
            if c.column not in text:
                text[c.column] = pd.Series(X[c.column], dtype="object").astype(str).to_numpy()
            m[:, j] = text[c.column] == c.key
        elif c.kind == "threshold":
            m[:, j] = np.nan_to_num(np.asarray(X[c.column], dtype=np.float64), nan=-np.inf) >= c.key
        elif c.kind == "activity":
            m[:, j] = np.minimum(np.asarray(X[_ACTIVITY + c.column]), c.cap)
        else:
            m[:, j] = np.asarray(X[INACTIVE]) > c.key
    return m


def base_for_share(raw: np.ndarray, mql_threshold: float, mql_share: float, cap: float) -> float:
    """The base points that put the share of rows closest to `mql_share` at or above the MQL
    threshold, counting tied rows together (a quantile inside a tie would hand the whole tie
    over: a base of 148 against a cap of 100, every row at the cap), and no higher than the
    cap: a base above it puts every lead without negative points at the cap, where nothing
    ranks. A negative base is fine: the items' points are then shifted down."""
    raw = np.asarray(raw, dtype=np.float64)
    values = np.unique(raw)
    shares = 1.0 - np.searchsorted(np.sort(raw), values, side="left") / len(raw)
    # closest share; between two as close, the one with fewer MQLs
    best = int(np.lexsort((-values, np.abs(shares - mql_share)))[0])
    return float(min(np.rint(mql_threshold - values[best]), cap))


def suggest_rules(
    dataset: Dataset,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    *,
    columns: list[str],
    max_rules: int = 30,
    mql_share: float = 0.15,
    mql_threshold: float = 75.0,
    floor: float = 0.0,
    cap: float = 100.0,
    max_fit_rows: int = 50_000,
    half_life_days: float = 30.0,
    inactivity_days: float = 90.0,
    seed: int = 0,
) -> Suggestion:
    """Fit a points scorecard on `train` rows (lead_id, as_of, label), choosing the
    regularisation on `validation` rows.

    Args:
        columns: the profile columns (and `source`) it may use: exactly those the leakage
            audit allowed (`leadscore.training.leakage`), so that learned points never use a column
            the model was kept from.
    """
    for name, part in (("train", train), ("validation", validation)):
        if part["label"].nunique() < 2:
            raise LeadscoreError(f"suggesting points needs won and not-won leads in {name}")
    train = _bounded_sample(train, max_fit_rows, seed)
    template = _template(dataset, columns, half_life_days, inactivity_days)
    x_train = batch_rule_inputs(template, dataset, train["lead_id"], train["as_of"])
    x_val = batch_rule_inputs(template, dataset, validation["lead_id"], validation["as_of"])
    min_count = max(10, int(0.002 * len(train)))
    cands = _candidates(template, x_train, min_count)
    if not cands:
        raise LeadscoreError("no candidate rule occurs often enough to be scored")
    m_train, m_val = _design(cands, x_train), _design(cands, x_val)
    mean, std = m_train.mean(axis=0), m_train.std(axis=0)
    std[std == 0] = 1.0
    z_train, z_val = (m_train - mean) / std, (m_val - mean) / std
    y_train = train["label"].to_numpy().astype(int)
    y_val = validation["label"].to_numpy().astype(int)

    best, path = None, []
    for c in np.geomspace(0.0005, 1.0, 14):
        lr = LogisticRegression(l1_ratio=1.0, C=c, solver="liblinear", random_state=seed)
        lr.fit(z_train, y_train)
        nonzero = int((lr.coef_[0] != 0).sum())
        loss = float(log_loss(y_val, np.clip(lr.predict_proba(z_val)[:, 1], EPS, 1 - EPS)))
        path.append({"C": float(c), "nonzero": nonzero, "validation_log_loss": loss})
        if 0 < nonzero <= max_rules and (best is None or loss < best[1]):
            best = (lr, loss, c, nonzero)
        if nonzero > max_rules:
            break  # weaker penalties only keep more items
    if best is None:
        raise LeadscoreError(
            "no sparse scorecard found: no regularisation strength kept between 1 and "
            f"{max_rules} rules"
        )
    lr, loss, c, nonzero = best
    coef = lr.coef_[0] / std  # per unit of the original column

    eta = m_train @ coef
    low, high = np.quantile(eta, [0.05, 0.95])
    span = cap - floor
    # the most one item can add: an indicator counts once, an activity up to its count cap
    reach = np.abs(coef) * np.array([c.cap if c.kind == "activity" else 1.0 for c in cands])
    factor = min(0.8 * span / max(high - low, EPS), 0.5 * span / max(reach.max(), EPS))
    points = _monotone_thresholds(cands, np.rint(coef * factor), x_train)
    rules = _to_rules(cands, points, template, factor)
    raw = RuleScorer(rules.model_copy(update={"floor": -1e9, "cap": 1e9})).points(x_train)
    base = base_for_share(raw, mql_threshold, mql_share, cap)
    rules = rules.model_copy(
        update={"base_points": base, "mql_threshold": mql_threshold, "floor": floor, "cap": cap}
    )
    val_scores = RuleScorer(rules).rule_scores(x_val)
    return Suggestion(
        rules=rules,
        c=float(c),
        nonzero=nonzero,
        validation_auc=float(roc_auc_score(y_val, val_scores)),
        validation_log_loss=loss,
        path=path,
    )


def monotone_levels(levels: np.ndarray, weights: np.ndarray, increasing: bool) -> np.ndarray:
    """The closest (weighted least squares) monotone sequence to `levels`: pool adjacent
    violators. Each level keeps its place; a run that breaks the order becomes its
    weighted mean."""
    sign = 1.0 if increasing else -1.0
    blocks: list[list[float]] = []  # [weighted mean, weight, count]
    for value, weight in zip(
        sign * np.asarray(levels, float), np.asarray(weights, float), strict=True
    ):
        blocks.append([value, max(weight, EPS), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return sign * np.concatenate([np.full(int(c), v) for v, _, c in blocks])


def _monotone_thresholds(cands: list[Candidate], points: np.ndarray, X: dict) -> np.ndarray:
    """A numeric column's points rise (or fall) with it, as the regression learned overall:
    the points of its bins (below the first threshold, then from each threshold on) made
    monotone in the direction of its highest bin against its lowest, weighted by the train
    rows in each bin (`monotone_levels`); points stay whole. Without it, a column's
    increments could go up and down (0, +12, -3), and its bins rank in an order the train
    rows never showed."""
    points = points.copy()
    by_column: dict[str, list[int]] = {}
    for j, c in enumerate(cands):
        if c.kind == "threshold":
            by_column.setdefault(c.column, []).append(j)
    for column, index in by_column.items():
        index = sorted(index, key=lambda j: cands[j].key)
        levels = np.r_[0.0, np.cumsum(points[index])]
        if levels[-1] == 0 or np.all(np.diff(levels) * np.sign(levels[-1]) >= 0):
            continue
        x = np.nan_to_num(np.asarray(X[column], dtype=np.float64), nan=-np.inf)
        bounds = np.array([cands[j].key for j in index])
        counts = np.bincount(np.searchsorted(bounds, x, side="right"), minlength=len(levels))
        fitted = np.rint(monotone_levels(levels, counts, increasing=levels[-1] > 0))
        fitted -= fitted[0]  # below the first threshold: no points (the base absorbs it)
        points[index] = np.diff(fitted)
    return points


def _bounded_sample(rows: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    """At most `limit` rows, drawn with a seed from the rows sorted by lead and time (the
    same rows whatever order they came in)."""
    if len(rows) <= limit:
        return rows
    ordered = rows.sort_values(["lead_id", "as_of"], kind="stable")
    pick = np.sort(np.random.default_rng(seed).choice(len(ordered), limit, replace=False))
    return ordered.iloc[pick]


def _to_rules(
    cands: list[Candidate], points: np.ndarray, template: RulesConfig, factor: float
) -> RulesConfig:
    profile: dict[str, ProfileRule] = {}
    values: dict[str, dict[str, float]] = {}
    thresholds: dict[str, dict[float, float]] = {}
    activities: dict[str, ActivityRule] = {}
    inactivity = None
    for c, p in zip(cands, points, strict=True):
        if c.kind == "value" and p:
            values.setdefault(c.column, {})[str(c.key)] = float(p)
        elif c.kind == "threshold":
            thresholds.setdefault(c.column, {})[float(c.key)] = float(p)
        elif c.kind == "activity" and p:
            activities[c.column] = ActivityRule(
                points=float(p), max=float(abs(np.rint(p * c.cap))) or None
            )
        elif c.kind == "inactive" and p:
            inactivity = InactivityRule(days=float(c.key), points=float(p))
    for col, vals in values.items():
        profile[col] = ProfileRule(values=vals)
    for col, steps in thresholds.items():
        # Indicator increments -> points at each threshold reached (cumulative).
        total, cumulative = 0.0, {}
        for q in sorted(steps):
            total += steps[q]
            cumulative[round(q, 6)] = total
        if any(cumulative.values()):
            profile[col] = ProfileRule(at_least=cumulative)
    return RulesConfig(
        name="suggested",
        profile=profile,
        half_life_days=template.half_life_days,
        activities=activities,
        inactivity=inactivity,
    )
