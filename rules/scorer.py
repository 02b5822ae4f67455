"""The rule-based points score: what marketing runs today, as a scorer we can compare with.

A lead's points at `as_of`, from `conf/rules.yaml` (`RulesConfig`):

    points = base_points
           + profile points (per value of a text column, or per threshold of a number)
           + per activity type: points x (decayed) count of its activities up to as_of,
             capped per type (`max`), decayed with `half_life_days` unless `decay: false`
           + the inactivity penalty when nothing engaging happened for `inactivity.days`
    score  = points clipped to [floor, cap] and rounded; MQL when score >= mql_threshold;
             grade A/B/C/D from the score cut-offs.

"Engaging" means an activity type with positive points (a call from sales is not the lead
engaging). Decay: an activity `d` days before as_of counts `0.5 ** (d / half_life_days)`.

One computation serves batch and online: `rule_inputs` turns (lead, time, type) event
arrays and the rows to score into the inputs the rules read; the batch path feeds it the
dataset's activities, the online path the payload's, in the same order, so both give the
same floating-point sums. `RuleScorer` follows the scikit-learn estimator contract: `fit`
maps points to probabilities (a calibrator fitted on validation rows), `predict_proba`
returns them, so that rules and model can be compared on calibration too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from leadscore.crm.dataset import Dataset
from leadscore.crm.errors import LeadscoreError, PayloadError
from leadscore.crm.lead_index import lead_positions
from leadscore.crm.times import US_PER_DAY, timestamps_us
from leadscore.features.carried import Carried
from leadscore.features.online import (
    PayloadEvents,
    _category,
    _number,
    payload_as_ofs,
    payload_events,
)
from leadscore.rules.config import ProfileRule, RulesConfig
from leadscore.stats.calibration import Calibrator, choose_calibrator

INACTIVE = "days_inactive"
_ACTIVITY = "activity:"
# Rows x events processed at once by the batch path (bounds memory, not results).
_PAIRS_PER_CHUNK = 4_000_000
# Entity rows whose events the batch path reads from the activity table at once.
_ROWS_PER_CHUNK = 250_000


@dataclass(frozen=True)
class ActivityTable:
    types: list[str]
    index: dict[str, int]
    points: np.ndarray
    max: np.ndarray  # inf: no cap
    decays: np.ndarray
    engaging: np.ndarray


_TABLES: dict[int, tuple[RulesConfig, ActivityTable]] = {}


def activity_table(rules: RulesConfig) -> ActivityTable:
    """The activity rules as arrays, cached per config object (a server builds them once;
    the cache holds the config, so its id cannot be reused while cached)."""
    hit = _TABLES.get(id(rules))
    if hit is not None and hit[0] is rules:
        return hit[1]
    acts = rules.activities
    table = ActivityTable(
        types=list(acts),
        index={t: i for i, t in enumerate(acts)},
        points=np.array([r.points for r in acts.values()], dtype=np.float64),
        max=np.array([np.inf if r.max is None else r.max for r in acts.values()]),
        decays=np.array([r.decay for r in acts.values()], dtype=bool),
        engaging=np.array([r.points > 0 for r in acts.values()], dtype=bool),
    )
    if len(_TABLES) >= 16:
        _TABLES.clear()
    _TABLES[id(rules)] = (rules, table)
    return table


def rule_inputs(
    rules: RulesConfig,
    *,
    profile: Mapping[str, Any],
    row_lead: np.ndarray,
    created_us: np.ndarray,
    as_of_us: np.ndarray,
    event_lead: np.ndarray,
    event_t: np.ndarray,
    event_kind: Sequence[Any] | None = None,
    event_rule: np.ndarray | None = None,
    carried: Sequence[Carried | None] | None = None,
) -> dict[str, np.ndarray]:
    """What the rules read, for each row to score: the batch and online paths both end here.

    Args:
        profile: column -> one value per row (text or number).
        row_lead: for each row, the lead whose events it sees (rows may share a lead).
        created_us, as_of_us: per row, µs since the epoch.
        event_lead, event_t, event_kind: the events, lead numbered as in `row_lead`.
        event_rule: instead of `event_kind`, each event's position among the rules'
            activity types (-1: a type without a rule), as the batch path has them.
        carried: per row, its lead's folded older activities (`leadscore.features.carried`), or None.

    Returns:
        column -> array: the profile columns as given, `activity:<type>` (decayed count, or
        count for `decay: false`, of the type's events at or before as_of) and
        `days_inactive` (days since the last engaging event, or since creation).
    """
    n = len(row_lead)
    table = activity_table(rules)
    types = table.types
    out: dict[str, np.ndarray] = {c: profile[c] for c in rules.profile}
    sums = np.zeros((n, len(types)))
    last = np.asarray(created_us, dtype=np.float64).copy()
    if types and n:
        index = table.index
        kind = (
            np.asarray(event_rule, dtype=np.int64)
            if event_rule is not None
            else np.fromiter(map(index.get, event_kind, repeat(-1)), np.int64, len(event_kind))
        )
        keep = kind >= 0
        lead, t, kind = np.asarray(event_lead)[keep], np.asarray(event_t)[keep], kind[keep]
        # Same order in both paths: by lead, time, type (ties are interchangeable).
        order = np.lexsort((kind, t, lead))
        lead, t, kind = lead[order], t[order].astype(np.int64), kind[order]
        n_leads = int(max(lead.max(initial=-1), np.max(row_lead, initial=-1))) + 1
        per_lead = np.bincount(lead, minlength=n_leads)
        start = np.concatenate([[0], np.cumsum(per_lead)[:-1]])
        decays, engaging = table.decays, table.engaging
        half_life_us = rules.half_life_days * US_PER_DAY
        pairs = per_lead[row_lead]
        bounds = np.searchsorted(np.cumsum(pairs), np.arange(0, pairs.sum(), _PAIRS_PER_CHUNK))
        for lo, hi in zip(bounds, [*bounds[1:], n], strict=False):
            _accumulate(
                sums, last, lo, hi, row_lead, as_of_us, start, pairs, lead, t, kind,
                decays, engaging, half_life_us,
            )  # fmt: skip
    if carried is not None and types:
        _add_carried(rules, table, sums, last, carried, as_of_us)
    for j, name in enumerate(types):
        out[_ACTIVITY + name] = sums[:, j]
    out[INACTIVE] = (np.asarray(as_of_us, dtype=np.float64) - last) / US_PER_DAY
    return out


def _add_carried(rules, table, sums, last, carried, as_of_us) -> None:
    """Folded activities into the rules' sums (decayed, or counted for `decay: false`) and
    into the last engaging time."""
    engaging = [t for t, e in zip(table.types, table.engaging, strict=True) if e]
    for i, c in enumerate(carried):
        if c is None or not c.types:
            continue
        decayed = c.sums_for(table.types, rules.half_life_days, int(as_of_us[i]))
        sums[i] += np.where(table.decays, decayed, c.counts(table.types))
        last[i] = np.fmax(last[i], c.last(engaging))


def _accumulate(sums, last, lo, hi, row_lead, as_of_us, start, pairs, lead, t, kind,
                decays, engaging, half_life_us) -> None:  # fmt: skip
    """Rows lo..hi: every (row, event of its lead) pair, summed per (row, type)."""
    rows = np.arange(lo, hi)
    counts = pairs[lo:hi]
    if not counts.sum():
        return
    row = np.repeat(rows, counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    event = np.repeat(start[row_lead[lo:hi]], counts) + offsets
    as_of = np.asarray(as_of_us, dtype=np.int64)[row]
    past = t[event] <= as_of
    row, event, as_of = row[past], event[past], as_of[past]
    k = kind[event]
    weight = np.where(decays[k], np.exp2((t[event] - as_of) / half_life_us), 1.0)
    width = sums.shape[1]
    block = np.bincount((row - lo) * width + k, weights=weight, minlength=(hi - lo) * width)
    sums[lo:hi] += block.reshape(hi - lo, width)
    hit = engaging[k]
    np.maximum.at(last, row[hit], t[event[hit]].astype(np.float64))


def batch_rule_inputs(
    rules: RulesConfig, dataset: Dataset, lead_ids: Sequence[str], as_of: pd.Series | Sequence
) -> dict[str, np.ndarray]:
    """Rule inputs for rows of a dataset named by lead id and as_of (a training set's rows,
    say); `entity_rule_inputs` when the entity rows are at hand."""
    leads = dataset.leads
    pos = lead_positions(pd.Series(list(lead_ids), dtype="str"), leads["lead_id"])
    if (pos < 0).any():
        raise LeadscoreError(f"{int((pos < 0).sum())} rows name leads that are not in the dataset")
    as_of_us = timestamps_us(pd.Series(pd.to_datetime(as_of, utc=True)))
    return entity_rule_inputs(rules, dataset, pos, as_of_us)


def entity_rule_inputs(
    rules: RulesConfig, dataset: Dataset, lead: np.ndarray, as_of_us: np.ndarray
) -> dict[str, np.ndarray]:
    """Rule inputs for entity rows (`leadscore.features.labels`: each row's lead position in the
    dataset's leads and its as_of in µs), the batch path of `rule_inputs`."""
    leads = dataset.leads
    pos = np.asarray(lead, dtype=np.int64)
    profile = {}
    for col in rules.profile:
        values = leads[col].iloc[pos]
        profile[col] = (
            values.to_numpy(dtype=np.float64, na_value=np.nan)
            if pd.api.types.is_numeric_dtype(values)
            else values.astype("object").to_numpy()
        )
    created_us = timestamps_us(leads["created_at"])[pos]
    as_of_us = np.asarray(as_of_us)
    acts = dataset.activity_table
    kinds = list(rules.activities)
    if not kinds or acts.empty or not len(pos):
        return rule_inputs(
            rules, profile=profile, row_lead=pos, created_us=created_us, as_of_us=as_of_us,
            event_lead=np.zeros(0, np.int64), event_t=np.zeros(0, np.int64),
            event_rule=np.zeros(0, np.int64),
        )  # fmt: skip
    rule_of = np.array([table_index(rules).get(t, -1) for t in acts.types], dtype=np.int64)
    # Rows in chunks of a lead range each: only those leads' events are read at a time.
    order = np.argsort(pos, kind="stable")
    out: dict[str, np.ndarray] = {}
    for lo in range(0, len(pos), _ROWS_PER_CHUNK):
        rows = order[lo : lo + _ROWS_PER_CHUNK]
        events = acts.events((int(pos[rows[0]]), int(pos[rows[-1]])), kinds)
        part = rule_inputs(
            rules, profile={c: v[rows] for c, v in profile.items()}, row_lead=pos[rows],
            created_us=created_us[rows], as_of_us=as_of_us[rows], event_lead=events["lead"],
            event_t=events["t_us"], event_rule=rule_of[events["code"].astype(np.int64)],
        )  # fmt: skip
        for c, v in part.items():
            if c not in out:
                out[c] = np.empty(len(pos), dtype=v.dtype)
            out[c][rows] = v
    return out


def table_index(rules: RulesConfig) -> dict[str, int]:
    """Each activity type with a rule -> its position among the rules' types."""
    return activity_table(rules).index


def payload_rule_inputs(
    rules: RulesConfig,
    leads: Sequence[Mapping[str, Any]],
    as_ofs: Sequence[Any],
    *,
    strict: bool = False,
    parsed: tuple[np.ndarray, PayloadEvents] | None = None,
    carried: Sequence[Carried | None] | None = None,
) -> dict[str, np.ndarray]:
    """Rule inputs for lead payloads (the CRM's JSON), each at its own as_of; `carried`:
    per lead, its folded older activities (`leadscore.features.carried`), or None.

    `parsed`: the as_ofs (µs) and events the featurizer already parsed from these same
    payloads (`OnlineBatch.as_of_us`, `.events`), so they are not parsed twice.
    """
    if parsed is None:
        as_of_us = payload_as_ofs(as_ofs)
        events = payload_events(leads, as_of_us, strict=strict)
    else:
        as_of_us, events = parsed
    profile: dict[str, Any] = {}
    for col, rule in rules.profile.items():
        raw = [
            lead.get("source") if col == "source" else (lead.get("profile") or {}).get(col)
            for lead in leads
        ]
        if rule.at_least is not None:
            numbers = np.empty(len(raw))
            for i, v in enumerate(raw):
                try:
                    numbers[i] = _number(v, "source" if col == "source" else f"profile.{col}")
                except PayloadError as exc:
                    raise PayloadError(exc.field, exc.problem, i) from exc
            profile[col] = numbers
        else:
            profile[col] = np.array([_category(v, col) for v in raw], dtype=object)
    return rule_inputs(
        rules,
        profile=profile,
        row_lead=np.arange(len(leads)),
        created_us=events.created_us,
        as_of_us=as_of_us,
        event_lead=events.lead,
        event_t=events.t,
        event_kind=events.kinds,
        carried=carried,
    )


class RuleScorer(ClassifierMixin, BaseEstimator):
    """Points, score, MQL flag and grade from rules; probabilities once fitted.

    `X` is what `batch_rule_inputs` / `payload_rule_inputs` return (a mapping of column ->
    array; a DataFrame with those columns works too).
    """

    def __init__(self, rules: RulesConfig | None = None, calibration: str = "auto") -> None:
        self.rules = rules
        self.calibration = calibration

    @property
    def config(self) -> RulesConfig:
        """The rules in force (the defaults when none were given)."""
        return self._rules

    @property
    def _rules(self) -> RulesConfig:
        return self.rules if self.rules is not None else RulesConfig()

    # --- points ----------------------------------------------------------------------

    def contributions(self, X: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Points per rule (profile column, activity type, inactivity), before the cap."""
        rules = self._rules
        out = {col: _profile_points(rule, X[col]) for col, rule in rules.profile.items()}
        activity = self._activity_points(X)
        out.update((kind, activity[:, j]) for j, kind in enumerate(activity_table(rules).types))
        if rules.inactivity is not None:
            out[INACTIVE] = self._inactivity_points(X)
        return out

    def _activity_points(self, X: Mapping[str, Any]) -> np.ndarray:
        """(rows, activity types): points x (decayed) count, capped per type."""
        table = activity_table(self._rules)
        n = len(X[INACTIVE])
        if not table.types:
            return np.zeros((n, 0))
        counts = np.column_stack(
            [np.asarray(X[_ACTIVITY + t], dtype=np.float64) for t in table.types]
        )
        return np.clip(counts * table.points, -table.max, table.max)

    def _inactivity_points(self, X: Mapping[str, Any]) -> np.ndarray:
        rule = self._rules.inactivity
        return np.where(np.asarray(X[INACTIVE], dtype=np.float64) > rule.days, rule.points, 0.0)

    def points(self, X: Mapping[str, Any]) -> np.ndarray:
        """Points clipped to [floor, cap] (not rounded): the same sum as `contributions`,
        in fewer array operations (this runs per request)."""
        rules = self._rules
        total = self._activity_points(X).sum(axis=1) + rules.base_points
        for col, rule in rules.profile.items():
            total += _profile_points(rule, X[col])
        if rules.inactivity is not None:
            total += self._inactivity_points(X)
        return np.clip(total, rules.floor, rules.cap)

    def rule_scores(self, X: Mapping[str, Any]) -> np.ndarray:
        """The rule score marketing sees: points rounded half up to a whole number.
        (`score(X, y)` stays scikit-learn's: the accuracy of `predict`, i.e. of the MQL
        decision.)"""
        return np.floor(self.points(X) + 0.5).astype(np.int64)

    def mql(self, score: np.ndarray) -> np.ndarray:
        return np.asarray(score) >= self._rules.mql_threshold

    def grade(self, score: np.ndarray) -> np.ndarray:
        g = self._rules.grades
        s = np.asarray(score)
        return np.where(s >= g.A, "A", np.where(s >= g.B, "B", np.where(s >= g.C, "C", "D")))

    # --- estimator contract ----------------------------------------------------------

    def fit(self, X: Mapping[str, Any], y: Any) -> RuleScorer:
        """Fit the points -> probability calibration (on validation rows: the points
        themselves are set by marketing, not learnt)."""
        y = np.asarray(y).astype(int)
        if len(np.unique(y)) < 2:
            raise LeadscoreError("calibrating the rules needs won and not-won rows")
        self.classes_ = np.array([0, 1])
        self.calibrator_, self.calibration_losses_ = choose_calibrator(
            self.points(X), y, self.calibration
        )
        return self

    def predict_proba(self, X: Mapping[str, Any]) -> np.ndarray:
        if not hasattr(self, "calibrator_"):
            raise LeadscoreError("the rule scorer is not fitted: call fit on validation rows first")
        p = self.calibrator_(self.points(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Mapping[str, Any]) -> np.ndarray:
        """1 for an MQL (score at or above the threshold): the rules' own decision."""
        return self.mql(self.rule_scores(X)).astype(int)

    # --- what a prediction record carries --------------------------------------------

    def score_columns(
        self, X: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """What a prediction record carries of the rules, per row: rule score, rule grade,
        MQL flag, and once fitted the probability of the rule score (as the endpoint
        serves it; None before `fit`)."""
        score = self.rule_scores(X)
        p = self.calibrator_(score.astype(float)) if hasattr(self, "calibrator_") else None
        return score, self.grade(score).astype(str), self.mql(score), p

    # --- persistence -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rules": self._rules.model_dump(mode="json")}
        if hasattr(self, "calibrator_"):
            out["calibrator"] = self.calibrator_.__dict__
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleScorer:
        scorer = cls(RulesConfig.model_validate(data["rules"]))
        if "calibrator" in data:
            scorer.classes_ = np.array([0, 1])
            scorer.calibrator_ = Calibrator(**data["calibrator"])
        return scorer


def _profile_points(rule: ProfileRule, values: Any) -> np.ndarray:
    if rule.at_least is not None:
        x = np.asarray(values, dtype=np.float64)
        thresholds = np.array(sorted(rule.at_least), dtype=np.float64)
        pts = np.array([rule.other] + [rule.at_least[k] for k in sorted(rule.at_least)])
        out = pts[np.searchsorted(thresholds, np.nan_to_num(x, nan=-np.inf), side="right")]
        return np.where(np.isnan(x), rule.missing, out)
    lookup = rule.values or {}
    return np.fromiter(
        (
            rule.missing
            if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
            else lookup.get(str(v), rule.other)
            for v in np.asarray(values, dtype=object)
        ),
        np.float64,
        len(values),
    )
