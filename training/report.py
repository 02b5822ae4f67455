"""The marketing report: the model next to the points rules (and a learned scorecard), on
the same out-of-time test leads.

`compare(...)` computes everything into a `Comparison` (plain tables);
`leadscore.training.report_page.write_report` renders one self-contained HTML page (SVG plots inline, no scripts, no web fonts) and a CSV
of the scored rows next to it. Every number in the page comes from the CSV's columns, so a
reader can recompute any of them.

A row is a lead at one point in its life (a snapshot at age 0, 3, 7 ... days while still
open), exactly the rows of the training's out-of-time test set; "won" means a won deal
closed within the horizon after that point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from leadscore.crm.dataset import Dataset
from leadscore.crm.errors import LeadscoreError
from leadscore.crm.lead_index import lead_positions
from leadscore.crm.times import days_us, timestamps_us
from leadscore.features.batch import build_training_set
from leadscore.features.labels import Timeline
from leadscore.rules.config import RulesConfig, check_rules
from leadscore.rules.scorer import RuleScorer, batch_rule_inputs
from leadscore.scoring.scorer import LeadScorer
from leadscore.stats.metrics import (
    gains_curve,
)
from leadscore.stats.ranking import day_index, top_share, top_share_by_day
from leadscore.training.config import TrainConfig
from leadscore.training.fit import fit_rules
from leadscore.training.kpis import (
    grade_table,
    handoff_speed,
    no_sales_touch,
    processing_rate,
    sales_touches,
    speed_to_lead,
)
from leadscore.training.learned import (
    DEFAULT_MQL_SHARE,
    canonical,
    learn_points,
    learned_columns,
    mql_share_of,
)
from leadscore.training.report_tables import (
    SCORERS,
    calibration_table,
    capacity_table,
    deals_at_creation,
    decile_table,
    example_leads,
    funnel_table,
    headline_table,
    interval_table,
    opportunity_stage_absent,
    quadrant_table,
    segment_table,
    sources_table,
)
from leadscore.training.splits import Split, split_training_set
from leadscore.training.trust import does_not_beat_rules, untrusted_model

THIN_POSITIVES = 100  # fewer won rows than this in test: the report says the data is thin
DEGENERATE_SHARE = 0.95  # a scorer giving this share of the test rows one score barely ranks


@dataclass
class Comparison:
    rows: pd.DataFrame  # the CSV: one row per test snapshot
    headline: pd.DataFrame  # scorer x metric, with intervals
    differences: dict[str, list[float]]  # model - rules: AUC, PR AUC, Brier [point, low, high]
    deciles: pd.DataFrame  # scorer, decile, rows, wins, win_rate, lift, capture
    gains: dict[str, tuple[np.ndarray, np.ndarray]]  # scorer -> (share worked, share of wins)
    # rules' MQLs vs as many top model (learned, lead age) leads, rows without an open deal,
    # matched day by day: on each day, among the leads open that day
    capacity: pd.DataFrame
    quadrants: pd.DataFrame  # rule MQL x model top-N (day by day), rows without an open deal
    capacity_all: pd.DataFrame  # pooled over the window, every row (open deals included)
    quadrants_all: pd.DataFrame
    examples: dict[str, list[dict]]  # quadrant -> a few leads with reasons
    calibration: pd.DataFrame  # scorer, bin, mean predicted, observed
    sources: pd.DataFrame
    funnel: pd.DataFrame
    meta: dict
    warnings: list[str] = field(default_factory=list)
    verdict: list[str] = field(default_factory=list)  # shown first: do not trust / keep rules
    learned_rules: RulesConfig | None = None
    backtest_rows: pd.DataFrame | None = None  # every backtest origin's rows (the CSV's too)
    rule_scorer: RuleScorer | None = None  # the rules with their fitted calibration
    # Marketing's KPIs (leadscore.training.kpis): wins per grade A-D of the model and of the rules;
    # win rate by the delay to the first sales touch; MQLs touched by sales within N days.
    grades: pd.DataFrame = field(default_factory=pd.DataFrame)
    speed: pd.DataFrame = field(default_factory=pd.DataFrame)
    processing: pd.DataFrame = field(default_factory=pd.DataFrame)
    # from creation to hand-off, over the score history (batch runs and the event stream)
    handoff_speed: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the model's Venn-Abers intervals per grade against the wins (empty without intervals)
    intervals: pd.DataFrame = field(default_factory=pd.DataFrame)
    # per segment (a model calibrated per segment): evaluation, calibration and verdict
    segments: pd.DataFrame = field(default_factory=pd.DataFrame)
    # accounts (`leadscore.training.accounts.account_tables`): the test accounts per scorer, the
    # capacity-matched accounts, the most engaged open accounts; empty without accounts
    accounts: pd.DataFrame = field(default_factory=pd.DataFrame)
    account_capacity: pd.DataFrame = field(default_factory=pd.DataFrame)
    account_engaged: pd.DataFrame = field(default_factory=pd.DataFrame)
    # The hand-off loop with sales (`leadscore.jobs.loop.kpis`, attached by the compare job
    # when the data has a lead_status table): the KPIs by lever and the rejected leads.
    loop: Any = None


def compare(
    dataset: Dataset,
    scorer: LeadScorer,
    rules: RulesConfig | None,
    config: TrainConfig | None = None,
    *,
    training_set: pd.DataFrame | None = None,
    split: Split | None = None,
    rule_scorer: RuleScorer | None = None,
    backtest=None,
    backtest_source: str | None = None,
    learned: bool = True,
    model_label: str = "model",
    bootstrap: int = 200,
    rules_file: str = "rules.yaml",
    rules_absent: str = "no points rules were given",
    handoffs: pd.DataFrame | None = None,
) -> Comparison:
    """Score the out-of-time test rows with the model, the rules and a learned scorecard.

    Args:
        rules: marketing's points rules; None when none fit this data: the report is then
            model vs learned points, and its rules sections say why (`rules_absent`).
        training_set: the training set built with `scorer.spec` (built when None).
        split: its train / validation / test split, as training made it (`TrainResult`;
            made again from `config` when None).
        rule_scorer: `rules` with their calibration already fitted (`leadscore.training.fit.fit_rules`,
            as training packs them with the model); fitted on the validation rows when None.
        learned: also fit a learned points scorecard on the train period.
        handoffs: each lead's hand-off time (lead_id, handed_off_at: its first score above
            the hand-off line in the score history), for the time-to-hand-off table.
        backtest: the walk-forward backtest of the same training set
            (`leadscore.training.backtest.Backtest`): with two origins or more, the "keep the rules"
            verdict rests on its pooled paired difference, not on one window.
        backtest_source: where the backtest comes from, in words, for the page.
    """
    config = config or TrainConfig()
    warnings = [] if rules is None else check_rules(rules, dataset, file=rules_file)
    # The model's leakage audit (carried by the scorer) is the one list of columns nothing
    # fitted may use; marketing's rules are theirs, but their figures are flattered when
    # they score such a column.
    audit = scorer.info.get("leakage") or {}
    if audit.get("strong"):
        listed = ", ".join(
            f"{f} (AUC {audit['auc'][f]:.2f})" for f in audit["strong"] if f in audit.get("auc", {})
        )
        warnings.append(
            f"strong alone on the train period: {listed}; the model uses them: check that each "
            "is known before the outcome"
        )
    if rules is not None:
        flagged = [c for c in rules.profile if c in set(audit.get("excluded", []))]
        if flagged:
            warnings.append(
                f"the rules score {', '.join(flagged)}, which the leakage audit excluded from "
                "the model (recorded after the outcome, or an identifier): their figures here "
                "are flattered"
            )
    df = training_set
    if df is None:
        df = build_training_set(dataset, spec=scorer.spec)[0]
    split = split if split is not None else split_training_set(df, scorer.spec, config)
    # In one canonical order (as_of, lead): sums over rows then add up the same way whatever
    # order the training set came in, and the page is byte-identical.
    train, val, test = (canonical(df[mask]) for mask in (split.train, split.validation, split.test))
    if not len(test) or test["label"].nunique() < 2:
        raise LeadscoreError("the test period needs both won and not-won leads to compare scorers")
    if val["label"].nunique() < 2:
        raise LeadscoreError(
            "the validation period needs won and not-won leads to calibrate the rules"
        )
    y = test["label"].to_numpy().astype(int)

    x_test = None
    if rules is None:
        rule_scorer = None
    else:
        if rule_scorer is None or rule_scorer.config is not rules:
            rule_scorer = fit_rules(rules, dataset, val)
        x_test = batch_rule_inputs(rules, dataset, test["lead_id"], test["as_of"])

    # Held-out rows are scored by the evaluated model (a refit that ships has seen them).
    evaluated = scorer.for_evaluation
    record = evaluated.score(evaluated.frame_batch(test), reasons=0)
    p_model = record.probability
    rows = pd.DataFrame(
        {
            "lead_id": test["lead_id"].to_numpy(),
            "as_of": test["as_of"].to_numpy(),
            "source": _sources(dataset, test["lead_id"]),
            "probability": p_model,
            "score": record.score.astype(int),
            "grade": record.grade,
            "label": y,
            "revenue": _revenue(dataset, test, scorer.spec.horizon_days),
            "opportunity": _opportunity(dataset, test, scorer.spec.horizon_days),
            **(
                {"accepted": _accepted(dataset, test, scorer.spec.horizon_days)}
                if dataset.lead_status is not None
                else {}
            ),
            "open_deal": test["open_deals"].to_numpy() > 0
            if "open_deals" in test
            else np.zeros(len(test), dtype=bool),
        }
    )
    if record.p_low is not None:
        rows["p_low"], rows["p_high"], rows["review"] = record.p_low, record.p_high, record.review
    if evaluated.segments is not None:
        rows["segment"] = test[evaluated.segments.column].astype(object).to_numpy()
        raw = evaluated.raw_scores(evaluated.encode_frame(test))
        rows["probability_global"] = evaluated.calibrator(raw)
    if rule_scorer is not None:
        rule_score = rule_scorer.rule_scores(x_test)
        rows["rule_score"] = rule_score
        rows["rule_grade"] = rule_scorer.grade(rule_score)
        rows["mql"] = rule_scorer.mql(rule_score)
        rows["rule_probability"] = rule_scorer.predict_proba(x_test)[:, 1]
    else:
        warnings.insert(0, f"points rules absent: {rules_absent}")
    learned_rules = None
    if learned:
        if train["label"].nunique() < 2:
            warnings.append(
                "learned points skipped: the train period has no won (or no lost) leads"
            )
        else:
            suggestion = learn_points(
                dataset,
                train,
                val,
                # exactly the columns the model's leakage audit allowed: the model's own
                learned_columns(dataset, scorer.features),
                config,
                mql_share=mql_share_of(rows["mql"].to_numpy())
                if "mql" in rows
                else DEFAULT_MQL_SHARE,
            )
            learned_rules = suggestion.rules
            learned_scorer = fit_rules(learned_rules, dataset, val)
            x_learned = batch_rule_inputs(learned_rules, dataset, test["lead_id"], test["as_of"])
            rows["learned_score"] = learned_scorer.rule_scores(x_learned)
            rows["learned_probability"] = learned_scorer.predict_proba(x_learned)[:, 1]

    rankings = {"model": rows["probability"].to_numpy()}
    probabilities = {"model": rows["probability"].to_numpy()}
    if rule_scorer is not None:
        rankings["rules"] = rows["rule_score"].to_numpy()
        probabilities["rules"] = rows["rule_probability"].to_numpy()
    if "learned_score" in rows:
        rankings["learned"] = rows["learned_score"].to_numpy()
        probabilities["learned"] = rows["learned_probability"].to_numpy()
    if evaluated.age_hazard.oldest is not None and "lead_age_days" in test:
        # Lead age alone (the life table the model learned from): how much of a pooled
        # ranking is the age mix rather than skill.
        rows["lead_age_probability"] = evaluated.age_hazard.rate(
            test["lead_age_days"].to_numpy(dtype=np.float64)
        )
        rankings["lead_age"] = probabilities["lead_age"] = rows["lead_age_probability"].to_numpy()

    headline, differences = headline_table(rows, rankings, probabilities, bootstrap, config.seed)
    points = {"rules": rules, "learned": learned_rules}
    for name, ranking in rankings.items():
        warnings += degenerate_scorer(name, ranking, points.get(name))
    warnings[:0] = below_lead_age(headline)
    if int(y.sum()) < THIN_POSITIVES:
        warnings.append(
            f"thin data: only {int(y.sum())} won rows in the test period; every figure below is "
            "uncertain (see the intervals) and small differences mean nothing"
        )
    shipped = scorer.info.get("shipped") if scorer.evaluated is not None else None
    verdict = untrusted_model(
        shipped["leads_won"]
        if shipped
        else int(train.loc[train["label"] == 1, "lead_id"].nunique()),
        scorer.booster.num_trees(),
        p_model,
        **({"learned_from": "every matured snapshot (the model that ships)"} if shipped else {}),
    )
    basis = _verdict_difference(differences, backtest)
    keep_rules = does_not_beat_rules(*basis)
    if keep_rules:
        verdict.append(keep_rules)
    no_opportunities = opportunity_stage_absent(dataset)  # why the data has no such stage
    # Deals opened with their leads say nothing of a hand-off: every row is then a hand-off
    # decision (else none would be: every row has an open deal).
    with_leads = deals_at_creation(dataset)
    rows["hand_off"] = True if with_leads else ~rows["open_deal"].to_numpy()
    if with_leads and rule_scorer is not None:
        warnings.append(
            f"{with_leads}; the hand-off comparison counts every row, open deals included, "
            "and the funnel has no opportunity stage"
        )
    touches = sales_touches(dataset)  # once: speed to lead and the processing rate
    common = {
        "rows": rows,
        "headline": headline,
        "differences": differences,
        "deciles": decile_table(rows, rankings),
        "gains": {name: gains_curve(y, r) for name, r in rankings.items()},
        "calibration": calibration_table(y, probabilities),
        "meta": {
            "model": model_label,
            "rules": rules.version if rules is not None else None,
            "rules_source": rules_file if rules is not None else None,
            "rules_absent": None if rules is not None else rules_absent,
            "mql_threshold": rules.mql_threshold if rules is not None else None,
            "test_rows": int(len(rows)),
            "test_leads": int(rows["lead_id"].nunique()),
            "test_positives": int(y.sum()),
            "test_from": split.test_start.isoformat(),
            "test_to": pd.Timestamp(rows["as_of"].max()).isoformat(),
            "horizon_days": scorer.spec.horizon_days,
            "rules_calibration": rule_scorer.calibrator_.method if rule_scorer else None,
            "dataset": str(dataset.path),
            "opportunity_stage_absent": no_opportunities,
            "deals_at_creation": with_leads,
            "no_sales_touch": no_sales_touch(dataset, touches),
            "leakage": audit,
            "shipped": shipped,
            "flat": dataset.is_flat,
            "backtest": backtest_summary(backtest),
            "backtest_source": backtest_source,
            "outcome_column": dataset.label_column if dataset.is_flat else None,
            "interval_review_width": evaluated.review_width,
            "segment_column": evaluated.segments.column if evaluated.segments else None,
            # what "use the model / keep the rules" rests on (`_verdict_difference`)
            "verdict_basis": {"difference": basis[0], "where": basis[1], "metric": basis[2]},
        },
        "warnings": warnings,
        "verdict": verdict,
        "learned_rules": learned_rules,
        "backtest_rows": _backtest_rows(backtest),
        "rule_scorer": rule_scorer,
        "grades": grade_table(rows),
        "speed": speed_to_lead(dataset, rows, touches),
        "processing": processing_rate(dataset, rows, touches),
        "handoff_speed": handoff_speed(dataset, handoffs),
        "intervals": interval_table(rows),
        "segments": _segments(rows, evaluated, bootstrap, config.seed),
    }
    if rule_scorer is None:
        empty = pd.DataFrame()
        return Comparison(
            **common,
            capacity=empty,
            quadrants=empty,
            capacity_all=empty,
            quadrants_all=empty,
            examples={},
            sources=sources_table(rows, no_opportunities is None),
            funnel=funnel_table(rows, no_opportunities is None),
        )
    n_mql = int(rows["mql"].sum())
    if n_mql == 0:
        warnings.append(
            f"no test lead reaches the MQL threshold ({rules.mql_threshold:g} points): the "
            "capacity-matched comparison and the quadrants are empty"
        )
    # The MQL decision is made before sales open a deal: rows with an open deal at as_of
    # are already with sales (and `open_deals` tells the model so), so the hand-off
    # comparison is on the other rows first (`hand_off`), and on every row second.
    decision = rows["hand_off"].to_numpy()
    n_decision = int(rows["mql"].to_numpy()[decision].sum())
    # the model's pick on each day: as many of that day's decision rows as the rules' MQLs
    rows["model_top_n"] = 0.0
    rows.loc[decision, "model_top_n"] = top_share_by_day(
        rows["probability"].to_numpy()[decision],
        rows["mql"].to_numpy()[decision],
        day_index(rows["as_of"].to_numpy()[decision]),
    )
    rows["model_top_n_all"] = top_share(rows["probability"].to_numpy(), n_mql)
    decided = rows[decision]
    decided_rankings = {name: r[decision] for name, r in rankings.items()}
    return Comparison(
        **common,
        capacity=capacity_table(decided, decided_rankings, n_decision, same_day=True),
        quadrants=quadrant_table(decided),
        capacity_all=capacity_table(rows, rankings, n_mql),
        quadrants_all=quadrant_table(rows, top_column="model_top_n_all"),
        examples=example_leads(rows, test, evaluated, rule_scorer, x_test),
        sources=sources_table(rows, no_opportunities is None),
        funnel=funnel_table(rows, no_opportunities is None),
    )


def below_lead_age(headline: pd.DataFrame) -> list[str]:
    """A line for each scorer that ranks the test rows worse than lead age alone (the
    simplest baseline: the life table's win rate at each age), said first in the report:
    a scorecard below it adds nothing a lead's age does not already say."""
    h = headline.set_index("scorer")
    if "lead_age" not in h.index:
        return []
    age = h.loc["lead_age", "roc_auc"]
    return [
        f"{who} the test rows worse than lead age alone (pooled ROC AUC "
        f"{h.loc[name, 'roc_auc']:.3f} against {age:.3f}): {advice}"
        for name, who, advice in (
            ("model", "the model ranks", "do not trust its grades"),
            ("rules", "the points rules rank", "a lead's age alone would hand off better"),
            ("learned", "the learned points rank", "do not use them"),
        )
        if name in h.index and h.loc[name, "roc_auc"] < age
    ]


def _verdict_difference(differences: dict, backtest) -> tuple[list[float], str, str]:
    """What "use the model / keep the rules" rests on: the same-day ROC AUC difference
    (model - rules, among the leads open on the same day) pooled over the backtest's
    origins when it has two or more, else on this test window; the pooled ROC AUC only
    where no day has both outcomes."""
    origins = len(backtest.origins) if backtest is not None else 0
    candidates = []
    if origins > 1:
        where = f"pooled over {origins} backtest origins"
        candidates += [
            (backtest.same_day_difference, where, "same-day ROC AUC"),
            (backtest.difference, where, "ROC AUC"),
        ]
    candidates += [
        (differences.get("same_day_auc"), "here", "same-day ROC AUC"),
        (differences.get("roc_auc"), "here", "ROC AUC"),
    ]
    for difference, where, metric in candidates:
        if difference is not None and np.isfinite(difference[0]):
            return list(difference), where, metric
    return [np.nan] * 3, "here", "ROC AUC"


# --- per-row facts ---------------------------------------------------------------------


def _segments(rows: pd.DataFrame, evaluated, bootstrap: int, seed: int) -> pd.DataFrame:
    """The per-segment table, with which model serves each segment when segments have
    champions of their own."""
    if evaluated.segments is None:
        return pd.DataFrame()
    table = segment_table(rows, evaluated.segments.evidence, bootstrap, seed)
    if evaluated.segment_champions and len(table):
        own = set(evaluated.segment_champions)
        table.insert(
            1,
            "served_by",
            ["its own model" if s in own else "shared model" for s in table["segment"]],
        )
    return table


def _sources(dataset: Dataset, lead_ids: pd.Series) -> np.ndarray:
    pos = lead_positions(lead_ids.astype("str"), dataset.leads["lead_id"])
    return dataset.leads["source"].astype("object").to_numpy()[pos]


def _backtest_rows(backtest) -> pd.DataFrame | None:
    """The older origins' test rows in the CSV's columns (origin 0's are the report's own)."""
    if backtest is None or len(backtest.origins) < 2:
        return None
    older = backtest.rows[backtest.rows["origin"] > 0]
    renamed = {
        "p_model": "probability",
        "p_rules": "rule_probability",
        "p_learned": "learned_probability",
        "p_lead_age": "lead_age_probability",
    }
    return older.rename(columns=renamed).reset_index(drop=True)


def backtest_summary(backtest) -> dict | None:
    """The backtest for the page: its origins and pooled figures (None without one)."""
    return None if backtest is None else backtest.summary()


def degenerate_scorer(name: str, ranking: np.ndarray, rules: RulesConfig | None) -> list[str]:
    """A warning when a scorer ranks nothing on the test rows (one score for every row: an
    AUC of 0.5 with no interval is no comparison), or nearly nothing."""
    values, counts = np.unique(np.asarray(ranking, dtype=np.float64), return_counts=True)
    label = SCORERS[name].lower()
    if len(values) == 1:
        where = ""
        if name != "model" and rules is not None and values[0] >= rules.cap:
            where = f", the cap of {rules.cap:g} points"
        return [
            f"{label} give every test row the same score ({values[0]:g}{where}): they rank "
            "nothing, and their figures below are no comparison"
        ]
    top = counts.max() / counts.sum()
    if top >= DEGENERATE_SHARE:
        return [
            f"{label} give {top:.0%} of the test rows the same score ({values[counts.argmax()]:g}): "
            "they barely rank, and capacity-matched figures rest on ties"
        ]
    return []


def _row_deals(dataset: Dataset, test: pd.DataFrame, horizon_days: float, **which):
    """The test rows' deals inside their horizon (`Timeline.deals_within`): (row, deal)
    pairs and the timeline (empty when the export is flat)."""
    timeline = Timeline.of_dataset(dataset)
    lead = lead_positions(test["lead_id"].astype("str"), dataset.leads["lead_id"])
    as_of_us = timestamps_us(test["as_of"].reset_index(drop=True))
    rows, deals = timeline.deals_within(lead, as_of_us, days_us(horizon_days), **which)
    return rows, deals, timeline


def _revenue(dataset: Dataset, test: pd.DataFrame, horizon_days: float) -> np.ndarray:
    """Amount of the won deals closed within the horizon after each row's as_of (NaN for
    every row when the data has no deal amounts: a flat export, say)."""
    if dataset.is_flat or not dataset.deals["amount"].notna().any():
        return np.full(len(test), np.nan)
    rows, deals, timeline = _row_deals(dataset, test, horizon_days, won=True)
    out = np.zeros(len(test))
    np.add.at(out, rows, np.nan_to_num(timeline.deal_amount[deals], nan=0.0))
    return out


def _accepted(dataset: Dataset, test: pd.DataFrame, horizon_days: float) -> np.ndarray:
    """Sales accepted the lead (a lead_status change to the accepted stage) within the
    horizon after the row's as_of: the funnel's accepted stage."""
    status = dataset.lead_status
    accepted = status.loc[status["stage"].astype(str) == "accepted", ["lead_id", "changed_at"]]
    rows = pd.DataFrame(
        {
            "row": np.arange(len(test)),
            "lead_id": test["lead_id"].astype(str).to_numpy(),
            "as_of": pd.to_datetime(test["as_of"], utc=True).to_numpy(),
        }
    )
    pairs = rows.merge(accepted.assign(lead_id=accepted["lead_id"].astype(str)), on="lead_id")
    at = pd.to_datetime(pairs["changed_at"], utc=True)
    as_of = pd.to_datetime(pairs["as_of"], utc=True)
    inside = (at > as_of) & (at <= as_of + pd.Timedelta(days=horizon_days))
    out = np.zeros(len(test), dtype=bool)
    out[pairs.loc[inside.to_numpy(), "row"].to_numpy()] = True
    return out


def _opportunity(dataset: Dataset, test: pd.DataFrame, horizon_days: float) -> np.ndarray:
    """A deal (opportunity) was created within the horizon after the row's as_of."""
    out = np.zeros(len(test), dtype=bool)
    if dataset.is_flat or not len(dataset.deals):
        return out
    rows, _, _ = _row_deals(dataset, test, horizon_days, when="created")
    out[rows] = True
    return out
