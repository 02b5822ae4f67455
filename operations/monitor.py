"""Monitoring: has the population moved since the model learned it, are its probabilities
still right on outcomes that have matured, has conversion shifted by source, and so: ok,
watch or retrain.

Like for like. The model's training rows are snapshots at fixed lead ages, while the
scored population is the open pipeline (every open lead, of any age): comparing the two
would flag a "drift" that is only the difference in sampling. So the reference is the open
pipeline at the date the model's knowledge ends (`trained_to` of a refit, or an evaluated
model's validation start, kept in the model; moved back to the same weekday and time as the
monitored date, so weekly rhythms cancel), built from the same data by the same batch engine
as the monitored pipeline. Drift and source shifts compare the leads created within one
horizon of each date (the new business); the matured calibration covers every age.

- **Population drift** (`leadscore.operations.drift`): the PSI of each feature and of the score
  between the reference and the monitored pipeline (reference deciles for numbers,
  reference categories for categories, missing values as a bin of their own). Under no drift, PSI x n m / (n + m)
  follows a chi-square with bins - 1 degrees of freedom (PSI is, to second order, the
  two-sample chi-square statistic scaled by 1/n + 1/m), so the threshold at the current
  sample sizes is that chi-square's 1 - alpha quantile x (1/n + 1/m). A drift is flagged
  when the PSI is both beyond that threshold (not sampling noise) and at least
  `MATERIAL_PSI` (big enough to matter); `STRONG_PSI` is a strong drift. On small batches the
  first condition stops the false alarms of fixed 0.1/0.25 thresholds; on big ones the second
  stops alarms on shifts too small to matter.
- **Calibration on matured outcomes** (`leadscore.operations.matured`): the pipeline one horizon
  before the monitored date, scored now with what was known then, against what happened
  within the horizon: predicted vs actual by grade, by decile and by lead-age band, ECE with
  a bootstrap interval, ROC AUC, and observed / expected wins with its z-test.
- **Conversion by source**: the win rate within the horizon of the reference pipeline vs the
  matured one, per source, with a two-proportion z-test.
- **Verdict**: alpha is shared by every test of the run (Bonferroni: 5 % / tests), so that on
  data that has not drifted, a false alarm (watch or retrain) happens in at most ~5 % of
  runs. Retrain: the score drifted strongly, the matured wins are off the predicted by more
  than `MATERIAL_OE` (significantly), at least `STRONG_FEATURES` features drifted strongly,
  or at least `SHARE_FEATURES` of them drifted.
  Watch: any flagged drift or source shift, an age band whose matured wins are off, or an
  export cut short (no lead created lately while activities go on). Ok: none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from leadscore.crm.dataset import Dataset
from leadscore.crm.errors import LeadscoreError
from leadscore.crm.times import to_us, utc
from leadscore.features.batch import build_scoring_set
from leadscore.features.labels import won_within
from leadscore.operations.drift import (
    Drift,
    categorical_bins,
    drift_of,
    numeric_bins,
)
from leadscore.operations.matured import (
    AGE_BANDS,
    MIN_EXPECTED_FOR_RATIO,
    Matured,
    matured_calibration,
)
from leadscore.operations.pipeline import past_trained_ages
from leadscore.scoring.model_ref import ModelRef
from leadscore.scoring.scorer import LeadScorer

FAMILY_ALPHA = 0.05
MATERIAL_OE = 0.25  # matured wins vs predicted: off by more than 25 %
INCOMPLETE_DAYS = 14  # no lead created for this long, activities going on: a cut export
STRONG_FEATURES = 2
SHARE_FEATURES = 0.25  # ... or a quarter of them drifted: what the model learned is moving
MATERIAL_RATE_CHANGE = 0.25  # a source's win rate, relative
MIN_RATE_CHANGE = 0.01  # ... and absolute
# Fewer matured leads than this (or fewer expected wins than MIN_EXPECTED_FOR_RATIO) check
# nothing: the verdict says so instead of "as predicted".
MIN_MATURED_LEADS = 200
VERDICTS = ("ok", "watch", "retrain")


@dataclass
class MonitorReport:
    model: ModelRef
    as_of: pd.Timestamp
    reference_as_of: pd.Timestamp
    n_current: int
    n_reference: int
    alpha: float
    tests: int
    drift: list[Drift]
    matured: Matured | None
    sources: pd.DataFrame | None
    verdict: str
    reasons: list[str]
    notes: list[str] = field(default_factory=list)
    score_samples: dict[str, np.ndarray] = field(default_factory=dict)
    # The hand-off loop with sales over the last LOOP_DAYS before as_of (`leadscore.jobs.loop
    # .kpis`, attached by the monitor job when the data has a lead_status table).
    loop: Any = None

    def metrics(self) -> dict[str, float]:
        """Flat numbers for MLflow and the JSON summary."""
        out: dict[str, float] = {
            "verdict_level": float(VERDICTS.index(self.verdict)),
            "leads_current": float(self.n_current),
            "leads_reference": float(self.n_reference),
        }
        for d in self.drift:
            key = "score" if d.kind == "score" else d.name
            out[f"psi_{key}"] = d.psi
            out[f"psi_threshold_{key}"] = d.threshold
        if self.matured is not None:
            m = self.matured
            out.update(
                matured_leads=float(m.leads),
                matured_wins=float(m.wins),
                matured_expected_wins=m.expected,
                matured_observed_over_expected=m.wins / m.expected if m.expected else np.nan,
                matured_ece=m.ece,
                matured_ece_low=m.ece_interval[0],
                matured_ece_high=m.ece_interval[1],
            )
            if m.roc_auc is not None:
                out["matured_roc_auc"] = m.roc_auc
        # MLflow's metric names: letters, digits, _ - . / and spaces.
        return {re.sub(r"[^\w\-. /]", "_", k): float(v) for k, v in out.items() if np.isfinite(v)}


def _sources(reference: pd.DataFrame, matured: pd.DataFrame, alpha: float) -> pd.DataFrame:
    rows = []
    for source in sorted(set(reference["source"].dropna()) | set(matured["source"].dropna())):
        r = reference.loc[reference["source"] == source, "label"]
        m = matured.loc[matured["source"] == source, "label"]
        if len(r) == 0 or len(m) == 0:
            continue
        p1, p2 = r.mean(), m.mean()
        pooled = (r.sum() + m.sum()) / (len(r) + len(m))
        se = np.sqrt(pooled * (1 - pooled) * (1 / len(r) + 1 / len(m)))
        z = (p2 - p1) / se if se > 0 else 0.0
        p_value = float(2 * stats.norm.sf(abs(z)))
        change = abs(p2 - p1)
        shifted = (
            p_value < alpha
            and change >= MIN_RATE_CHANGE
            and change >= MATERIAL_RATE_CHANGE * max(p1, 1e-9)
        )
        rows.append(
            {
                "source": str(source),
                "reference_leads": len(r),
                "reference_rate": float(p1),
                "matured_leads": len(m),
                "matured_rate": float(p2),
                "p_value": p_value,
                "shifted": bool(shifted),
            }
        )
    return pd.DataFrame(rows)


def _ages_up_to(frame: pd.DataFrame, days: float) -> pd.DataFrame:
    """The rows whose lead is at most `days` old (a flat export has no age: every row)."""
    if "lead_age_days" not in frame.columns:
        return frame
    keep = frame["lead_age_days"].to_numpy(dtype=float) <= days + 1e-9
    return frame[keep].reset_index(drop=True)


def same_weekday_before(when: pd.Timestamp, limit: pd.Timestamp) -> pd.Timestamp:
    """The latest time at or before `limit` that is a whole number of weeks before `when`."""
    weeks = int(np.ceil((when - limit) / pd.Timedelta(days=7)))
    return when - pd.Timedelta(days=7 * max(weeks, 0))


def monitor(
    dataset: Dataset,
    scorer: LeadScorer,
    model: ModelRef,
    *,
    as_of: pd.Timestamp | None = None,
    reference_as_of: pd.Timestamp | None = None,
) -> MonitorReport:
    """The monitoring report of `dataset` at `as_of` (default: its end) for this model."""
    if dataset.is_flat:
        raise LeadscoreError(
            "monitoring needs dated data (when leads were created, when deals closed): this "
            "export is flat"
        )
    end = utc(dataset.data_end)
    when = utc(as_of) if as_of is not None else end
    info = scorer.info or {}
    # Where the model's knowledge ends: the refit that ships learned every matured snapshot
    # (`trained_to`); an evaluated model, what came before its validation period.
    knowledge_end = info.get("trained_to") or info.get("validation_start")
    if reference_as_of is None:
        if not knowledge_end:
            raise LeadscoreError(
                "this model does not record when its training data ends: give --reference-as-of"
            )
        reference_as_of = same_weekday_before(when, utc(knowledge_end))
    reference_as_of = utc(reference_as_of)
    if reference_as_of >= when:
        raise LeadscoreError(
            f"the reference ({reference_as_of.date()}) is not before the monitored date "
            f"({when.date()}): the model knows data later than what is monitored"
        )
    spec = scorer.spec
    horizon = float(spec.horizon_days)
    notes: list[str] = []
    current = build_scoring_set(dataset, spec, when)
    reference = build_scoring_set(dataset, spec, reference_as_of)
    if scorer.oldest_trained_age_days is not None and "lead_age_days" in current:
        beyond = scorer.beyond_trained_age(
            current["lead_age_days"].to_numpy(dtype=float), len(current)
        )
        note = past_trained_ages(scorer, beyond)
        if note:
            notes.append(note + "; the checks below include them, by age band")
    if current.empty or reference.empty:
        raise LeadscoreError(
            f"no open lead at {'the monitored date' if current.empty else 'the reference date'}"
        )
    # Like for like: the drift and source checks compare the leads each pipeline gained
    # within one horizon (the new business the model meets). The stock of older leads that
    # never closed only grows, and it was the new business of earlier runs; a lead older than
    # the CRM at the reference date has no counterpart there at all. The matured calibration
    # covers every age.
    crm_age = (reference_as_of - utc(dataset.leads["created_at"].min())) / pd.Timedelta(days=1)
    recent_days = min(horizon, crm_age)
    everyone = len(current)
    current, reference = _ages_up_to(current, recent_days), _ages_up_to(reference, recent_days)
    if len(current) < everyone:
        older = everyone - len(current)
        notes.append(
            f"the drift and source checks compare the leads created within {recent_days:,.0f} "
            f"days of each date (the new business); {older:,} older open leads "
            f"({older / everyone:.0%}) are in the matured calibration, by age band"
        )
    if current.empty or reference.empty:
        raise LeadscoreError(
            f"no lead created within {recent_days:,.0f} days of "
            f"{'the monitored date' if current.empty else 'the reference date'}"
        )
    p_cur = scorer.score(scorer.frame_batch(current), reasons=0).probability
    p_ref = scorer.score(scorer.frame_batch(reference), reasons=0).probability

    matured_as_of = when - pd.Timedelta(days=horizon)
    has_source = "source" in current.columns and "source" in reference.columns
    ref_outcomes_known = reference_as_of + pd.Timedelta(days=horizon) <= end
    matured_ok = matured_as_of > reference_as_of and matured_as_of >= utc(
        dataset.leads["created_at"].min()
    )
    n_sources = int(reference["source"].nunique()) if has_source else 0
    features = list(scorer.features)
    age_bands = len(AGE_BANDS) if "lead_age_days" in current.columns else 0
    tests = len(features) + 1 + ((1 + age_bands) if matured_ok else 0)
    tests += n_sources if (has_source and matured_ok and ref_outcomes_known) else 0
    alpha = FAMILY_ALPHA / tests

    drift = [
        drift_of(
            "score",
            "score",
            *numeric_bins(p_ref.astype(float), p_cur.astype(float)),
            alpha,
        )
    ]
    categorical = set(spec.categorical)
    for name in features:
        if name not in current.columns:
            continue
        if name in categorical or not pd.api.types.is_numeric_dtype(current[name]):
            rc, cc, labels = categorical_bins(reference[name], current[name])
            kind = "categorical"
        else:
            rc, cc, labels = numeric_bins(
                reference[name].to_numpy(dtype=float), current[name].to_numpy(dtype=float)
            )
            kind = "numeric"
        drift.append(drift_of(name, kind, rc, cc, labels, alpha))

    matured = None
    sources = None
    if matured_ok:
        # Outcomes the model may have learned from: the refit's labels run one horizon past
        # its newest snapshot (`trained_to`); an evaluated model's, up to its test start.
        if info.get("trained_to"):
            seen_to = utc(info["trained_to"]) + pd.Timedelta(days=horizon)
        else:
            seen_to = utc(info["test_start"]) if info.get("test_start") else None
        found = matured_calibration(scorer, dataset, matured_as_of, horizon, seen_to)
        if found is not None:
            matured, matured_rows = found
            if matured.in_training:
                notes.append(
                    f"the matured date ({matured_as_of.date()}) is before the end of the "
                    f"outcomes the model learned from ({seen_to.date()}): its calibration there "
                    "is not an out-of-sample check, and is left out of the verdict (monitor "
                    "a later export to check it)"
                )
            if has_source and ref_outcomes_known:
                ref_rows = reference.assign(
                    label=won_within(dataset, reference["lead_id"], reference_as_of, horizon)
                )
                sources = _sources(ref_rows, _ages_up_to(matured_rows, recent_days), alpha)
    else:
        notes.append(
            f"no matured outcome yet: one horizon ({horizon:g} days) before the monitored date "
            "is not after the reference; calibration and conversion shifts are not checked"
        )
    untested = [d.name for d in drift if d.status == "untested"]
    if untested:
        notes.append(
            f"not testable for drift ({len(untested)}): "
            + ", ".join(untested[:12])
            + (", ..." if len(untested) > 12 else "")
            + ": blank or one value on both sides, or no rows on a side"
        )
    stalled = incomplete_export(dataset, when)
    if stalled:
        notes.append(stalled + "; the drift checks are left out of the verdict")
    verdict, reasons = _verdict(drift, matured, sources, alpha, stalled)
    return MonitorReport(
        model=model,
        as_of=when,
        reference_as_of=reference_as_of,
        n_current=len(current),
        n_reference=len(reference),
        alpha=alpha,
        tests=tests,
        drift=drift,
        matured=matured,
        sources=sources,
        verdict=verdict,
        reasons=reasons,
        notes=notes,
        score_samples={"reference": p_ref, "current": p_cur},
    )


def incomplete_export(dataset: Dataset, when: pd.Timestamp) -> str | None:
    """Why the export looks cut short at `when`, or None: no lead created in the last
    `INCOMPLETE_DAYS` days while activities go on after the last creation. Every lead then
    looks older than at the reference, and the drift checks would flag the ages themselves."""
    created = dataset.leads["created_at"]
    created = created[created <= when]
    if created.empty or dataset.activity_table.empty:
        return None
    last_created = created.max()
    last_us = dataset.activity_table.last_us(int(to_us(when)))
    gap = (when - last_created) / pd.Timedelta(days=1)
    if gap <= INCOMPLETE_DAYS or last_us is None:
        return None
    last_activity = pd.Timestamp(last_us, unit="us", tz="UTC")
    if (last_activity - last_created) / pd.Timedelta(days=1) <= INCOMPLETE_DAYS / 2:
        return None
    return (
        f"no lead created since {last_created.date()} ({gap:,.0f} days before the monitored "
        f"date) while activities go on until {last_activity.date()}: an incomplete export?"
    )


def _verdict(drift, matured, sources, alpha, stalled=None) -> tuple[str, list[str]]:
    retrain, watch = [], []
    # A cut export ages every lead (and everything built on the ages, the score included)
    # for no reason of theirs: its drift checks say nothing, and the verdict says why.
    if stalled:
        watch.append(stalled)
    score = drift[0]
    features = [] if stalled else drift[1:]
    if score.status != "ok" and not stalled:
        (retrain if score.status == "strong drift" else watch).append(
            f"the score's distribution moved: PSI {score.psi:.3f} (noise threshold "
            f"{score.threshold:.3f} at these sizes)"
        )
    strong = [d for d in features if d.status == "strong drift"]
    moved = [d for d in features if d.status in ("drift", "strong drift")]
    if moved:
        listed = ", ".join(
            f"{d.name} ({d.psi:.2f})" for d in sorted(moved, key=lambda d: -d.psi)[:6]
        )
        line = f"{len(moved)} feature{'s' if len(moved) > 1 else ''} drifted: {listed}"
        many = len(strong) >= STRONG_FEATURES or len(moved) >= SHARE_FEATURES * len(features)
        (retrain if many else watch).append(line)
    if matured is not None and not matured.in_training and matured.expected > 0:
        ratio = matured.wins / matured.expected
        z_crit = stats.norm.isf(alpha / 2)
        if abs(matured.z) > z_crit and abs(ratio - 1) > MATERIAL_OE:
            retrain.append(
                f"matured outcomes are off the predictions: {matured.wins:,} wins against "
                f"{matured.expected:,.1f} predicted ({ratio:.2f}x) among the {matured.leads:,} "
                f"leads open at {matured.as_of.date()}"
            )
    if matured is not None and not matured.in_training and len(matured.by_age):
        # A band is off when it does not hold (materially) and the Poisson test says it is
        # not noise at the run's shared alpha.
        bands = matured.by_age
        off = bands[~bands["holds"] & (bands["p_value"] < alpha)]
        if len(off):
            watch.append(
                "matured calibration is off by lead age: "
                + "; ".join(
                    f"{r.group}: {r.wins:,.0f} wins for {r.expected_wins:,.1f} predicted"
                    for r in off.itertuples()
                )
            )
    if sources is not None and len(sources) and sources["shifted"].any():
        shifted = sources[sources["shifted"]]
        watch.append(
            "conversion shifted by source: "
            + ", ".join(
                f"{r.source} {r.reference_rate:.1%} -> {r.matured_rate:.1%}"
                for r in shifted.itertuples()
            )
        )
    if retrain:
        return "retrain", retrain + watch
    if watch:
        return "watch", watch
    if matured is None:
        checked = "no matured outcome to check yet"
    elif matured.in_training:
        checked = "matured outcomes not checked out of sample (the model learned them)"
    elif matured.expected < MIN_EXPECTED_FOR_RATIO or matured.leads < MIN_MATURED_LEADS:
        checked = (
            f"too few matured outcomes to check the calibration ({matured.leads:,} leads, "
            f"{matured.expected:,.1f} wins predicted, {matured.wins:,} won)"
        )
    else:
        checked = "matured outcomes as predicted"
    return "ok", [f"no drift beyond sampling noise, {checked}"]
