"""Leakage audit before fitting: features too good to be true, and declared leaky columns.

Two tests, on the train rows only:

- a feature that alone separates the classes with AUC >= `leakage_auc` (0.95 by default)
  is almost always a recording of the outcome. Text columns are scored through an
  out-of-fold target encoding, so an id-like column cannot score high by memorising rows;
- a text feature that pins the outcome both ways, with a sizeable group of leads almost
  all won under one value and another almost all lost under another value (shrunk
  log-odds at least `leakage_log_odds` above and below the base rate), is a disposition
  written by sales after contact ("Closed by Horizzon" / "Already a student", "High in
  Relevance" / "Worst"). A real profile attribute known when the lead arrives moves the
  odds one way or the other for some values; it rarely settles the outcome in both
  directions. This catches columns like X Education's `Lead Quality`, whose AUC alone
  (0.80) is nowhere near a threshold an honest strong feature would not also reach;
- a profile column whose *missingness* nearly settles the outcome (blank on almost every
  lead that never closed, filled once a deal closed; or filled almost only on won leads):
  the present/missing indicator is tested on its own, one-sided (either group nearly all
  won or nearly all lost, shrunk log-odds beyond `leakage_missing_log_odds`) and two-sided
  (the indicator alone reaching `leakage_auc`);
- id-like profile columns (`leadscore.crm.columns`: one value per lead, hashes) are excluded too;
- a profile column that holds the lead's status in the CRM (named `status`, `lead_status`,
  or most values lead statuses such as "Working - Contacted", "Unqualified":
  `leadscore.crm.lead_status.status_like_columns`) is sales' reaction to our hand-off, never
  a feature: excluded always, even with `allow_leaky`. (The `lead_status` table itself is
  never read by the feature engines.)

Text features are target-encoded out of fold with folds that keep a lead's snapshots
together, so that neither an id nor a high-cardinality code scores by memorising the
lead's other snapshots. Behaviour features are computed point in time by our own engines;
the missingness and id tests apply to the profile columns, which come from the export.

The report is the one list of what any fitted thing may use: the model, the learned
scorecard and the calibrations all take `allowed_profile_columns` from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from leadscore.crm.columns import id_like_reason
from leadscore.crm.lead_status import status_like_columns

# How a warning about a column no flag may keep ends (`allow_leaky` keeps the others).
ALWAYS_EXCLUDED = ": never a feature, excluded even with --allow-leaky"
PRIOR_ROWS = 10.0  # pseudo-rows at the base rate: a value's win rate is shrunk towards it


@dataclass(frozen=True)
class PinnedValue:
    """A value of a text feature under which the outcome is (nearly) settled."""

    value: str
    rows: int
    win_rate: float
    log_odds_shift: float  # shrunk log-odds minus the base rate's


@dataclass(frozen=True)
class MissingSplit:
    """The outcome among rows where a column is missing, and where it is present."""

    missing_rows: int
    missing_win_rate: float
    present_rows: int
    present_win_rate: float
    auc: float  # of the missing/present indicator alone
    side: str  # which group settles the outcome: "missing" or "present"


@dataclass(frozen=True)
class LeakageReport:
    single_feature_auc: dict[str, float]
    flagged: list[str]  # by any test
    declared: list[str]  # by dataset.yaml
    excluded: list[str]  # what nothing fitted may use
    pinned: dict[str, tuple[PinnedValue, PinnedValue]] = field(default_factory=dict)
    missing: dict[str, MissingSplit] = field(default_factory=dict)
    id_like: dict[str, str] = field(default_factory=dict)
    # Strong alone, below the leakage threshold: listed, not excluded (a call's duration, a
    # score entered by sales: known before the outcome, or not?).
    strong: list[str] = field(default_factory=list)
    # Profile columns holding the CRM's lead status: column -> why (always excluded).
    status_like: dict[str, str] = field(default_factory=dict)

    def allowed(self, columns: list[str]) -> list[str]:
        """The columns (profile columns or features) that the audit lets a fit use."""
        excluded = set(self.excluded)
        return [c for c in columns if c not in excluded]

    def to_dict(self) -> dict:
        """Plain JSON: the MLflow artifact, the scorer's info, the report."""
        return {
            "auc": self.single_feature_auc,
            "flagged": self.flagged,
            "declared": self.declared,
            "excluded": self.excluded,
            "id_like": self.id_like,
            "pinned": {f: [asdict(v) for v in values] for f, values in self.pinned.items()},
            "missing": {f: asdict(v) for f, v in self.missing.items()},
            "strong": self.strong,
            "status_like": self.status_like,
            "warnings": self.warnings(),
        }

    def warnings(self) -> list[str]:
        out = []
        for f in self.flagged:
            auc = self.single_feature_auc.get(f, float("nan"))
            if f in self.status_like:
                out.append(
                    f"column {f!r} holds the lead's status in the CRM ({self.status_like[f]})"
                    + ALWAYS_EXCLUDED
                )
            elif f in self.id_like:
                out.append(f"column {f!r} looks like an identifier ({self.id_like[f]})")
            elif f in self.missing:
                m = self.missing[f]
                out.append(
                    f"column {f!r}: whether it is filled settles the outcome on train "
                    f"(missing: {m.missing_win_rate:.1%} won of {m.missing_rows:,} rows; "
                    f"present: {m.present_win_rate:.1%} won of {m.present_rows:,}; "
                    f"AUC of missing-or-not alone {m.auc:.3f}): likely filled after the outcome"
                )
            elif f in self.pinned:
                won, lost = self.pinned[f]
                out.append(
                    f"feature {f!r} settles the outcome both ways on train: {won.value!r} "
                    f"{won.win_rate:.0%} won ({won.rows:,} rows), {lost.value!r} "
                    f"{lost.win_rate:.0%} won ({lost.rows:,} rows); AUC alone {auc:.3f}: "
                    "likely entered after contact"
                )
            else:
                out.append(
                    f"feature {f!r} alone reaches AUC {auc:.3f} on train: likely leaks the outcome"
                )
        out += [f"column {c!r} is declared leaky in dataset.yaml" for c in self.declared]
        return out

    def strong_notice(self) -> str | None:
        """The line that lists the strong single features (None when there are none)."""
        if not self.strong:
            return None
        listed = ", ".join(f"{f} (AUC {self.single_feature_auc[f]:.2f})" for f in self.strong)
        return (
            f"strong alone on train: {listed}; kept, but check that each is known before the "
            "outcome (a value recorded after contact or after the deal would flatter the model)"
        )


def lead_folds(lead_ids: np.ndarray, n_splits: int) -> np.ndarray:
    """A fold number per row from a hash of its lead id: a lead's snapshots share a fold,
    and the folds do not depend on row order."""
    hashed = pd.util.hash_array(np.asarray(lead_ids).astype(str).astype(object))
    return (hashed % np.uint64(n_splits)).astype(np.int64)


def single_feature_auc(
    x: pd.Series, y: np.ndarray, lead_ids: np.ndarray | None = None, n_splits: int = 5
) -> float:
    """max(AUC, 1 - AUC) of one feature on its own (missing values as their own level).

    Text is target-encoded out of fold, the folds grouping rows by lead (each row its own
    lead when `lead_ids` is None)."""
    if isinstance(x.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(x):
        if y.min() == y.max():
            return 0.5
        codes = pd.Categorical(x.astype("object")).codes
        ids = np.arange(len(x)) if lead_ids is None else lead_ids
        fold = lead_folds(ids, n_splits)
        score = np.zeros(len(x))
        for k in range(n_splits):
            fit, held = fold != k, fold == k
            if not held.any() or not fit.any():
                continue
            rates = pd.Series(y[fit]).groupby(codes[fit]).mean()
            score[held] = pd.Series(codes[held]).map(rates).fillna(y[fit].mean()).to_numpy()
    else:
        values = x.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.all(np.isnan(values)):
            return 0.5
        score = np.where(np.isnan(values), np.nanmin(values) - 1.0, values)
    if np.unique(score).size < 2 or y.min() == y.max():
        return 0.5
    auc = roc_auc_score(y, score)
    return float(max(auc, 1.0 - auc))


def missing_split(
    x: pd.Series, y: np.ndarray, *, log_odds: float, min_rows: int
) -> MissingSplit | None:
    """The missing/present indicator of a column when it nearly settles the outcome: one
    group (with at least `min_rows` rows) nearly all won or nearly all lost (shrunk
    log-odds at least `log_odds` from the base rate's)."""
    base = float(y.mean())
    missing = x.isna().to_numpy()
    n_missing = int(missing.sum())
    if not 0.0 < base < 1.0 or n_missing < min_rows or len(x) - n_missing < min_rows:
        return None
    rows = np.array([n_missing, len(x) - n_missing], dtype=np.float64)
    wins = np.array([y[missing].sum(), y[~missing].sum()], dtype=np.float64)
    rate = (wins + PRIOR_ROWS * base) / (rows + PRIOR_ROWS)
    shift = np.log(rate / (1 - rate)) - np.log(base / (1 - base))
    side = int(np.argmax(np.abs(shift)))
    if abs(shift[side]) < log_odds:
        return None
    auc = roc_auc_score(y, missing.astype(float))
    return MissingSplit(
        missing_rows=n_missing,
        missing_win_rate=float(wins[0] / rows[0]),
        present_rows=int(rows[1]),
        present_win_rate=float(wins[1] / rows[1]),
        auc=float(max(auc, 1 - auc)),
        side=("missing", "present")[side],
    )


def pinned_values(
    x: pd.Series, y: np.ndarray, *, log_odds: float, min_rows: int
) -> tuple[PinnedValue, PinnedValue] | None:
    """The most-won and most-lost values of a text feature when both settle the outcome.

    A value counts with at least `min_rows` rows (missing is a value: "blank until sales
    fills it in"). Its win rate is shrunk towards the base rate by PRIOR_ROWS pseudo-rows;
    the feature is returned when one value's log-odds are at least `log_odds` above the
    base rate's and another's at least `log_odds` below.
    """
    base = float(y.mean())
    if not 0.0 < base < 1.0:
        return None
    codes = pd.Categorical(x.astype("object").where(x.notna(), "(missing)"))
    rows = np.bincount(codes.codes, minlength=len(codes.categories))
    wins = np.bincount(codes.codes, weights=y, minlength=len(codes.categories))
    keep = rows >= min_rows
    if keep.sum() < 2:
        return None
    rate = (wins + PRIOR_ROWS * base) / (rows + PRIOR_ROWS)
    shift = np.log(rate / (1 - rate)) - np.log(base / (1 - base))
    shift = np.where(keep, shift, 0.0)
    hi, lo = int(np.argmax(shift)), int(np.argmin(shift))
    if shift[hi] < log_odds or shift[lo] > -log_odds:
        return None

    def value(i: int) -> PinnedValue:
        return PinnedValue(
            str(codes.categories[i]), int(rows[i]), float(wins[i] / rows[i]), float(shift[i])
        )

    return value(hi), value(lo)


def audit_leakage(
    train: pd.DataFrame,
    features: list[str],
    declared: list[str],
    *,
    threshold: float,
    allow_leaky: bool,
    strong_threshold: float = 0.80,
    log_odds: float = 2.5,
    missing_log_odds: float = 3.5,
    profile: list[str] | None = None,
    keep: list[str] = (),
    min_rows: int = 30,
    min_share: float = 0.005,
) -> LeakageReport:
    """Flag features by every test (module docstring); exclude them and the declared ones.

    Args:
        threshold: single-feature AUC from which a feature is flagged.
        log_odds: the both-ways shift from which a text feature is flagged.
        missing_log_odds: the shift of the missing (or present) group from which a profile
            column's missingness is flagged.
        profile: the profile columns among `features` (missingness and id tests); all
            features when None.
        keep: profile columns never called id-like (dataset.yaml `columns.keep`).
        min_rows, min_share: a value needs max(min_rows, min_share * rows) rows to count.
    """
    y = train["label"].to_numpy().astype(int)
    lead_ids = train["lead_id"].to_numpy() if "lead_id" in train else None
    aucs = {f: single_feature_auc(train[f], y, lead_ids) for f in features}
    support = max(min_rows, int(np.ceil(min_share * len(train))))
    profile = list(features) if profile is None else [c for c in profile if c in features]
    per_lead = train.drop_duplicates("lead_id") if lead_ids is not None else train
    id_like = {}
    for col in profile:
        if col in keep or col == "source":
            continue
        reason = id_like_reason(col, per_lead[col])
        if reason is not None:
            id_like[col] = reason
    missing = {}
    for col in profile:
        found = missing_split(train[col], y, log_odds=missing_log_odds, min_rows=support)
        if found is not None:
            missing[col] = found
    status_like = status_like_columns(per_lead, [c for c in profile if c not in keep])
    pinned = {}
    for f in features:
        x = train[f]
        if isinstance(x.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(x):
            found = pinned_values(x, y, log_odds=log_odds, min_rows=support)
            if found is not None:
                pinned[f] = found
    flagged = [
        f
        for f in features
        if aucs[f] >= threshold or f in pinned or f in missing or f in id_like or f in status_like
    ]
    declared = [c for c in declared if c in features]
    excluded = (
        list(status_like)  # sales' reaction to the hand-off: never a feature
        if allow_leaky
        else sorted(set(flagged) | set(declared), key=features.index)
    )
    strong = sorted(
        (f for f in features if strong_threshold <= aucs[f] < threshold and f not in flagged),
        key=lambda f: -aucs[f],
    )
    return LeakageReport(
        aucs, flagged, declared, excluded, pinned, missing, id_like, strong, status_like
    )


def audit_training_set(
    train: pd.DataFrame,
    spec,
    config,
    *,
    declared: list[str] = (),
    keep: list[str] = (),
    allow_leaky: bool = False,
) -> LeakageReport:
    """The audit of a training set's train rows with a `TrainConfig`'s thresholds: the one
    call behind `train` (the model) and `rules suggest` (the learned points)."""
    cap = config.max_rows_baseline_and_audit
    sample = train if len(train) <= cap else train.sample(cap, random_state=config.seed)
    return audit_leakage(
        sample,
        spec.feature_names,
        list(declared),
        threshold=config.leakage_auc,
        strong_threshold=config.strong_auc,
        allow_leaky=allow_leaky,
        log_odds=config.leakage_log_odds,
        missing_log_odds=config.leakage_missing_log_odds,
        profile=[*spec.categorical, *spec.numeric_profile],
        keep=list(keep),
    )
