"""The model that ships: after the evaluation, refit on every matured snapshot.

The evaluated model learns from the train period only (the last validation and test days,
and a horizon of purge, are held out), so its newest example is about 300 days before the
data's end, and the oldest leads of the data (whose snapshots fall late) are barely in it.
The model that is registered and served is refit with the evaluated settings on every
snapshot of the training set (each one matured: `as_of + horizon <= data end`), with the
boosting rounds scaled to the rows, and calibrated by time-ordered cross-fitting: for each
of the last `CALIBRATION_WINDOWS` windows of `validation_days`, a booster with the same
settings is fitted on what had matured before the window (a horizon of purge) and scores
the window; the calibrator is fitted on those out-of-time scores.

The evaluated model travels with the shipped one (`LeadScorer.evaluated`): reports and the
champion gate score held-out rows with the evaluated procedure, never with a model that has
seen them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import lightgbm as lgb
import numpy as np
import pandas as pd

from leadscore.scoring.encoding import encode_frame
from leadscore.scoring.scorer import LeadScorer
from leadscore.training.calibration import calibrated, fit_calibration
from leadscore.training.config import TrainConfig
from leadscore.training.fit import TrainResult, age_hazard_info, lightgbm_params
from leadscore.training.sampling import fit_rows
from leadscore.training.trust import untrusted_model

CALIBRATION_WINDOWS = 2
MAX_ROUNDS_FACTOR = 3.0  # the refit's rounds grow with its rows, at most this many times


@dataclass(frozen=True)
class Shipped:
    """What the shipped model learned from, for the CLI, the report and the MLflow run."""

    rows: int
    positives: int
    leads_won: int
    first_as_of: pd.Timestamp
    last_as_of: pd.Timestamp
    rounds: int
    calibration: dict  # method, cross-fitted log loss, windows

    def to_dict(self) -> dict:
        return {
            "rows": self.rows,
            "positives": self.positives,
            "leads_won": self.leads_won,
            "first_as_of": self.first_as_of.isoformat(),
            "last_as_of": self.last_as_of.isoformat(),
            "rounds": self.rounds,
            "calibration": self.calibration,
        }


def scaled_rounds(best: int, rows: int, evaluated_rows: int, max_rounds: int) -> int:
    """Boosting rounds for `rows` rows, from the best round on `evaluated_rows` rows: in
    proportion to the square root of the rows (more data supports more rounds, but not in
    proportion: the learning rate stays), within [best, MAX_ROUNDS_FACTOR x best] and
    `max_rounds`."""
    factor = math.sqrt(rows / max(evaluated_rows, 1))
    factor = min(max(factor, 1.0), MAX_ROUNDS_FACTOR)
    return int(max(1, min(max_rounds, round(best * factor))))


def _fit(
    df: pd.DataFrame, rows: np.ndarray, config: TrainConfig, categories, features, categorical,
    params, rounds,
) -> lgb.Booster:  # fmt: skip
    """A booster on the rows at `rows` of `df`, sampled by lead past `max_fit_rows`
    (`leadscore.training.sampling`): only the rows it learns from are encoded."""
    y = df["label"].to_numpy().astype(int)
    chosen = fit_rows(df["lead_id"], y, rows, config.max_fit_rows, config.seed)
    x = encode_frame(df.iloc[chosen.rows], features, categories)
    data = lgb.Dataset(
        x,
        y[chosen.rows],
        weight=chosen.weights,
        feature_name=list(features),
        categorical_feature=[features.index(c) for c in categorical],
        free_raw_data=False,
    )
    return lgb.train(params, data, num_boost_round=rounds)


def _probability(booster, df, features, categories, calibrator, segments) -> np.ndarray:
    """The calibrated probability of every row of `df` by the refit (in chunks: a million
    snapshots are not encoded at once)."""
    parts = []
    for lo in range(0, len(df), 200_000):
        part = df.iloc[lo : lo + 200_000]
        raw = booster.predict(encode_frame(part, features, categories), raw_score=True)
        values = part[segments.column] if segments is not None else None
        parts.append(calibrated(calibrator, segments, raw, values))
    return np.concatenate(parts) if parts else np.zeros(0)


def refit_production(
    df: pd.DataFrame,
    evaluated: TrainResult,
    config: TrainConfig,
    *,
    on_step: Callable[[str], None] | None = None,
) -> tuple[LeadScorer, Shipped]:
    """The shipped scorer (refit on every row of `df`, the training set the evaluation
    split), with the evaluated scorer attached, and what it learned from."""
    step = on_step or (lambda _: None)
    base = evaluated.scorer
    spec, features = base.spec, list(base.features)
    categorical = [f for f in features if f in spec.categorical]
    categories = {c: sorted(str(v) for v in df[c].dropna().unique()) for c in categorical}
    y = df["label"].to_numpy().astype(int)
    params, _ = lightgbm_params(config, int(y.sum()))
    best = int(base.info.get("best_iteration") or base.booster.current_iteration())
    evaluated_rows = int(evaluated.split.train.sum())
    as_of = df["as_of"]
    purge = pd.Timedelta(days=spec.horizon_days if spec.history else 0.0)
    width = pd.Timedelta(days=config.validation_days)
    end = as_of.max()

    column = base.segments.column if base.segments is not None else None
    raw_parts, y_parts, seg_parts, windows = [], [], [], []
    for k in range(CALIBRATION_WINDOWS):
        stop = end - k * width
        start = stop - width
        window = ((as_of > start) & (as_of <= stop)).to_numpy()
        before = (as_of + purge <= start).to_numpy()
        if window.sum() == 0 or len(np.unique(y[before])) < 2:
            continue
        step(f"calibration: out-of-time window {k + 1}")
        rounds = scaled_rounds(best, int(before.sum()), evaluated_rows, config.lightgbm.max_rounds)
        booster = _fit(df, np.flatnonzero(before), config, categories, features, categorical,
                       params, rounds)  # fmt: skip
        # The window is scored whole: calibration sees every held-out row.
        x_window = encode_frame(df[window], features, categories)
        raw_parts.append(booster.predict(x_window, raw_score=True))
        y_parts.append(y[window])
        if column is not None:
            seg_parts.append(df.loc[window, column])
        windows.append(
            {
                "start": start.isoformat(),
                "end": stop.isoformat(),
                "rows": int(window.sum()),
                "positives": int(y[window].sum()),
                "trained_rows": int(before.sum()),
            }
        )
    raw = np.concatenate(raw_parts) if raw_parts else np.zeros(0)
    labels = np.concatenate(y_parts) if y_parts else np.zeros(0, dtype=int)
    if len(np.unique(labels)) < 2:  # too little time for a window: the evaluated calibration
        calibrator, losses, how = base.calibrator, {}, "the evaluated model's (validation rows)"
        interval, segments = base.interval, base.segments
    else:
        fitted = fit_calibration(
            raw, labels, config, pd.concat(seg_parts, ignore_index=True) if column else None
        )
        calibrator, losses = fitted.calibrator, fitted.losses
        interval, segments = fitted.interval, fitted.segments
        how = f"time-ordered cross-fitting on {len(windows)} windows"

    step("refit on every matured snapshot")
    rounds = scaled_rounds(best, len(df), evaluated_rows, config.lightgbm.max_rounds)
    booster = _fit(df, np.arange(len(df)), config, categories, features, categorical, params,
                   rounds)  # fmt: skip
    shipped = Shipped(
        rows=int(len(df)),
        positives=int(y.sum()),
        leads_won=int(df.loc[y == 1, "lead_id"].nunique()),
        first_as_of=pd.Timestamp(as_of.min()),
        last_as_of=pd.Timestamp(end),
        rounds=rounds,
        calibration={
            "method": calibrator.method,
            "fitted_by": how,
            "cross_fitted_log_loss": losses,
            "windows": windows,
        },
    )
    info = {
        **base.info,
        "shipped": shipped.to_dict(),
        # What the shipped model knows ends at its newest snapshot (monitoring compares
        # today's pipeline with the pipeline then, and checks matured outcomes after it).
        "trained_to": shipped.last_as_of.isoformat(),
        # The life table of every matured snapshot it learned from, and its calibration by
        # age against it.
        **age_hazard_info(
            df, _probability(booster, df, features, categories, calibrator, segments), spec
        ),
    }
    scorer = LeadScorer(
        spec, booster, features, categories, calibrator, base.grades, info, rules=base.rules,
        interval=interval, segments=segments, evaluated=base,
    )  # fmt: skip
    return scorer, shipped


def ship(
    result: TrainResult,
    df: pd.DataFrame,
    config: TrainConfig,
    *,
    on_step: Callable[[str], None] | None = None,
) -> TrainResult:
    """`result` with the model that ships: the refit (`refit_production`), its evaluated
    model attached, what it learned from in `shipped`, and the trust banners counted on
    what it learned from. With `config.refit` off, `result` as it is."""
    if not config.refit:
        return result
    scorer, shipped = refit_production(df, result, config, on_step=on_step)
    untrusted = untrusted_model(
        shipped.leads_won,
        scorer.booster.num_trees(),
        result.test["p_model"].to_numpy(),
        learned_from="every matured snapshot (the model that ships)",
    )
    scorer.info["untrusted"] = untrusted
    return replace(result, scorer=scorer, shipped=shipped.to_dict(), untrusted=untrusted)
