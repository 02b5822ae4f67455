"""Segment champions: one model per segment, only where the segment is better served by its
own model, decided per segment.

With `segments: {column: product_line, champions: true}`, each segment with enough won leads
in its train rows gets a model of its own (the whole procedure on its rows: audit, split,
fit, calibration and interval, and the refit that ships). The gate is per segment: on the
segment's test rows from the shared model's test start, the two evaluated models' log losses
are compared with a paired bootstrap over leads; the segment's own model serves the segment
only when its log loss is surely lower (the 95 % interval of the difference below zero).
Otherwise the shared model serves it: it learned from more data, and one model is simpler
to watch. The shared scorer routes each lead to its segment's champion
(`LeadScorer.segment_champions`), in every path: endpoint, batch, report, monitoring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from leadscore.crm.errors import LeadscoreError
from leadscore.features.definitions import FeatureSpec
from leadscore.scoring.scorer import LeadScorer
from leadscore.stats.bootstrap import lead_resample_weights, percentile_interval
from leadscore.stats.metrics import evaluate, point_metrics
from leadscore.training.config import TrainConfig
from leadscore.training.fit import TrainResult, fit_models
from leadscore.training.refit import ship


@dataclass
class SegmentChampions:
    column: str
    table: pd.DataFrame  # per segment: the gate's rows, figures and verdict
    shipped: dict[str, LeadScorer]  # segment -> its own model (the one that ships)


def log_loss_difference(
    y: np.ndarray, p_own: np.ndarray, p_shared: np.ndarray, lead_ids, bootstrap: int, seed: int
) -> list[float]:
    """Own - shared log loss on the same rows, with its 95 % interval (the one bootstrap over
    leads, stratified by outcome); the interval contains the estimate."""

    def loss(p: np.ndarray, w: np.ndarray) -> float:
        p = np.clip(p, 1e-15, 1 - 1e-15)
        return float(-np.sum(w * (y * np.log(p) + (1 - y) * np.log(1 - p))) / np.sum(w))

    ones = np.ones(len(y))
    estimate = loss(p_own, ones) - loss(p_shared, ones)
    draws = [
        loss(p_own, w) - loss(p_shared, w)
        for w in lead_resample_weights(np.asarray(lead_ids), y, bootstrap, seed)
    ]
    return [estimate, *percentile_interval(draws, estimate)]


def fit_segment_champions(
    df: pd.DataFrame,
    spec: FeatureSpec,
    config: TrainConfig,
    shared: TrainResult,
    *,
    declared_leaky: list[str] = (),
    keep_columns: list[str] = (),
    allow_leaky: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> SegmentChampions:
    """Fit each eligible segment's own model and gate it against the shared one."""
    step = on_step or (lambda _: None)
    column = config.segments.column
    alone = config.model_copy(update={"segments": None, "backtest_origins": 1})
    values = df[column].astype(object)
    shared_eval = shared.scorer.for_evaluation
    rows, shipped = [], {}
    before_validation = (df["as_of"] < shared.split.validation_start).to_numpy()
    for value in sorted(values.dropna().unique(), key=str):
        mask = (values == value).to_numpy()
        part = df[mask]
        row = {"segment": str(value), "rows": int(mask.sum())}
        wins = int(
            df.loc[mask & before_validation & (df["label"] == 1).to_numpy(), "lead_id"].nunique()
        )
        row["train_wins"] = wins
        if wins < config.segments.champion_min_wins:
            row["served_by"] = "shared model"
            row["why"] = (
                f"{wins} won leads before validation (< {config.segments.champion_min_wins})"
            )
            rows.append(row)
            continue
        step(f"segment {value}: its own model")
        try:
            own = fit_models(
                part.reset_index(drop=True), spec, alone, declared_leaky=list(declared_leaky),
                keep_columns=list(keep_columns), allow_leaky=allow_leaky,
            )  # fmt: skip
        except LeadscoreError as exc:
            row["served_by"] = "shared model"
            row["why"] = f"its own model cannot be fitted: {exc}"
            rows.append(row)
            continue
        test = own.test[own.test["as_of"] >= shared.split.test_start].reset_index(drop=True)
        gate = part.reset_index(drop=True).loc[
            own.split.test & (part["as_of"] >= shared.split.test_start).to_numpy()
        ]
        y = test["label"].to_numpy().astype(int)
        if len(y) == 0 or y.min() == y.max():
            row["served_by"] = "shared model"
            row["why"] = "its test rows have one outcome only: no gate"
            rows.append(row)
            continue
        p_own = test["p_model"].to_numpy()
        p_shared = shared_eval.score(shared_eval.frame_batch(gate), reasons=0).probability
        shared_m, own_m = point_metrics(y, p_shared), point_metrics(y, p_own)
        diff = log_loss_difference(
            y, p_own, p_shared, test["lead_id"].to_numpy(), config.bootstrap, config.seed
        )
        row.update(
            test_rows=int(len(y)),
            test_wins=int(y.sum()),
            shared_auc=shared_m["roc_auc"],
            own_auc=own_m["roc_auc"],
            shared_log_loss=shared_m["log_loss"],
            own_log_loss=own_m["log_loss"],
            log_loss_difference=f"{diff[0]:+.4f} [{diff[1]:+.4f}, {diff[2]:+.4f}]",
        )
        if diff[2] < 0:
            row["served_by"] = "its own model"
            row["why"] = "its own model's log loss is surely lower on its test rows"
            if config.refit:
                step(f"segment {value}: refit on every matured snapshot")
                own = ship(own, part.reset_index(drop=True), alone)
            shipped[str(value)] = own.scorer
        else:
            row["served_by"] = "shared model"
            row["why"] = "its own model is not surely better on its test rows"
        rows.append(row)
    return SegmentChampions(column, pd.DataFrame(rows), shipped)


def with_segment_champions(
    result: TrainResult, champions: SegmentChampions, df: pd.DataFrame, config: TrainConfig
) -> TrainResult:
    """The result whose scorer routes each segment to its champion (the shipped scorer to
    the shipped champions, the evaluated one to the evaluated ones), with the model's test
    figures recomputed as routed: what ships is what is reported."""
    if not champions.shipped:
        return replace(result, segment_champions=champions)
    routed = {"champion_column": champions.column}
    if result.scorer.evaluated is None:  # no refit: the evaluated model ships
        scorer = result.scorer.with_parts(**routed, segment_champions=champions.shipped)
        evaluated = scorer
    else:
        evaluated = result.scorer.evaluated.with_parts(
            **routed,
            segment_champions={
                value: champion.for_evaluation for value, champion in champions.shipped.items()
            },
        )
        scorer = result.scorer.with_parts(
            **routed, segment_champions=champions.shipped, evaluated=evaluated
        )
    test_rows = df[result.split.test]
    record = evaluated.score(evaluated.frame_batch(test_rows), reasons=0)
    p = record.probability
    test = result.test.copy()
    test["p_model"] = p
    if record.p_low is not None and "interval_low_model" in test:
        test["interval_low_model"], test["interval_high_model"] = record.p_low, record.p_high
        test["review_model"] = record.review
    metrics = dict(result.metrics)
    metrics["model"] = evaluate(
        test["label"].to_numpy().astype(int), p, bootstrap=config.bootstrap, seed=config.seed,
        groups=test["lead_id"].to_numpy(),
    )  # fmt: skip
    return replace(result, scorer=scorer, test=test, metrics=metrics, segment_champions=champions)
