"""Walk-forward backtest: the evaluation repeated at several origins, so that no single test
window decides.

Origin k (k = 0 .. origins - 1) ends `k x test_days` before the training set's newest
snapshot: the evaluation's procedure (`fit_models`: split by time, audit, fit, calibrate on
the validation period) runs on the snapshots known by then and is tested on the next
`test_days`. Origin 0 is the evaluation itself. The test windows do not overlap, and each
model was trained only on what had matured before its window. Fewer origins run when the
data is too short for more, and the backtest says so.

Per origin and pooled over every origin's test rows: ROC AUC, PR AUC and ECE of the model,
the points rules (calibrated on each origin's validation period) and the learned points
(learned on each origin's train period, as `compare` learns them), and the wins of the
model's and the learned points' top N against the rules' N MQLs (capacity-matched). The model-minus-rules AUC
difference is pooled and paired, with a 95 % interval from the one bootstrap over leads
(`leadscore.stats.bootstrap`) across every origin's rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from leadscore.crm.dataset import Dataset
from leadscore.crm.errors import LeadscoreError
from leadscore.features.definitions import FeatureSpec
from leadscore.rules.config import RulesConfig
from leadscore.rules.scorer import batch_rule_inputs
from leadscore.stats.bootstrap import lead_resample_weights, percentile_interval, weighted_auc
from leadscore.stats.metrics import expected_calibration_error
from leadscore.stats.ranking import day_index, same_day_auc, top_share
from leadscore.training.config import TrainConfig
from leadscore.training.fit import TrainResult, fit_models, fit_rules
from leadscore.training.learned import (
    DEFAULT_MQL_SHARE,
    learn_points,
    learned_columns,
    mql_share_of,
)


@dataclass
class Backtest:
    """What the walk-forward backtest found (`rows`: every origin's test rows)."""

    origins: list[dict]
    # origin, lead_id, as_of, label, p_model (, rule_score, mql, p_rules, learned_score,
    # p_learned)
    rows: pd.DataFrame
    pooled: dict[str, dict]  # scorer -> point metrics on every origin's rows
    difference: list[float] | None  # pooled paired AUC, model - rules: [point, low, high]
    asked: int
    notes: list[str] = field(default_factory=list)
    # the origins' capacity-matched wins added up (each origin at its own rules' MQLs),
    # when every origin has them
    capacity_wins: dict[str, float] = field(default_factory=dict)
    # the same-day ROC AUC (among the leads open on the same day of an origin), model -
    # rules, every origin's rows: [point, low, high]; what the verdict rests on
    same_day_difference: list[float] | None = None

    def summary(self) -> dict:
        """Its origins and pooled figures, for the report, the CLI and `backtest.json`."""
        return {
            "origins": self.origins,
            "pooled": self.pooled,
            "capacity_wins": self.capacity_wins,
            "difference": self.difference,
            "same_day_difference": self.same_day_difference,
            "asked": self.asked,
            "notes": self.notes,
            "rows": int(len(self.rows)),
            "positives": int(self.rows["label"].sum()),
        }

    def pooled_metrics(self) -> dict[str, float]:
        """MLflow metrics of every origin's rows pooled (finite values only)."""
        out = {
            f"backtest_pooled_{key}_{scorer}": value
            for scorer, m in self.pooled.items()
            for key, value in m.items()
        }
        out.update({f"backtest_pooled_capacity_wins_{k}": v for k, v in self.capacity_wins.items()})
        for name, difference in (
            ("auc_difference", self.difference),
            ("same_day_auc_difference", self.same_day_difference),
        ):
            for suffix, value in zip(("", "_low", "_high"), difference or (), strict=True):
                out[f"backtest_pooled_{name}{suffix}"] = value
        return {k: float(v) for k, v in out.items() if np.isfinite(v)}

    def metrics_by_step(self) -> dict[str, list[tuple[int, float]]]:
        """MLflow metrics with one value per origin (step = origin, 0 the newest)."""
        out: dict[str, list[tuple[int, float]]] = {}
        for o in self.origins:
            for scorer, m in o["metrics"].items():
                for key in ("roc_auc", "pr_auc", "ece"):
                    if np.isfinite(m[key]):
                        out.setdefault(f"backtest_{key}_{scorer}", []).append((o["origin"], m[key]))
            for scorer, wins in o.get("capacity_wins", {}).items():
                out.setdefault(f"backtest_capacity_wins_{scorer}", []).append((o["origin"], wins))
        return out


def stored_backtest(run_id: str) -> Backtest | None:
    """The backtest a training run logged (`backtest.json` and `backtest_rows.csv` of its
    MLflow run), or None when it logged none (one origin, or a run before backtests)."""
    import json
    import tempfile

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory() as folder:
        try:
            summary_path = MlflowClient().download_artifacts(run_id, "backtest.json", folder)
            rows_path = MlflowClient().download_artifacts(run_id, "backtest_rows.csv", folder)
        except (MlflowException, OSError):
            return None
        with open(summary_path) as f:
            summary = json.load(f)
        rows = pd.read_csv(rows_path, dtype={"lead_id": str})
    rows["as_of"] = pd.to_datetime(rows["as_of"], utc=True, format="ISO8601")
    return Backtest(
        origins=summary["origins"],
        rows=rows,
        pooled=summary["pooled"],
        difference=summary.get("difference"),
        asked=int(summary["asked"]),
        notes=list(summary.get("notes") or []),
        capacity_wins=dict(summary.get("capacity_wins") or {}),
        same_day_difference=summary.get("same_day_difference"),
    )


def table_rows(summary: dict) -> list[dict]:
    """The backtest as a table (`Backtest.summary`): per origin, then pooled, a row per
    scorer: its ROC AUC, PR AUC and ECE, and its wins at the rules' MQLs (capacity-matched;
    pooled, each origin at its own MQLs)."""
    out = []
    pooled = {
        "origin": "pooled",
        "test_from": None,
        "rows": summary["rows"],
        "positives": summary["positives"],
        "metrics": summary["pooled"],
        "capacity_wins": summary.get("capacity_wins") or {},
    }
    for o in [*summary["origins"], pooled]:
        capacity = o["capacity_wins"]
        window = f"{o['test_from'][:10]} to {o['test_to'][:10]}" if o["test_from"] else ""
        for scorer in _COLUMNS:
            m = o["metrics"].get(scorer)
            if m is None:
                continue
            out.append(
                {
                    "origin": str(o["origin"]),
                    "test window": window,
                    "rows": o["rows"],
                    "wins": o["positives"],
                    "scorer": scorer,
                    "ROC AUC": m["roc_auc"],
                    "same-day ROC AUC": m.get("same_day_auc", float("nan")),
                    "PR AUC": m["pr_auc"],
                    "ECE": m["ece"],
                    "MQLs": capacity.get("mqls", float("nan")),
                    "wins at the MQLs": capacity.get(scorer, float("nan")),
                }
            )
    return out


def _metrics(
    y: np.ndarray, ranking: np.ndarray, p: np.ndarray, day: np.ndarray
) -> dict[str, float]:
    """ROC AUC (pooled, and among the leads open on the same day) and PR AUC of a ranking
    (points or probabilities), ECE of its probabilities."""
    both = 0 < y.sum() < len(y)
    return {
        "roc_auc": float(roc_auc_score(y, ranking)) if both else float("nan"),
        "same_day_auc": same_day_auc(y, ranking, day),
        "pr_auc": float(average_precision_score(y, ranking)) if both else float("nan"),
        "ece": float(expected_calibration_error(y, p)),
    }


# scorer -> (its ranking column, its probability column) in a backtest's rows
_COLUMNS = {
    "model": ("p_model", "p_model"),
    "rules": ("rule_score", "p_rules"),
    "learned": ("learned_score", "p_learned"),
    "lead_age": ("p_lead_age", "p_lead_age"),
}


def _all_metrics(rows: pd.DataFrame) -> dict[str, dict]:
    """`_metrics` of every scorer the rows have (all of them scored)."""
    y = rows["label"].to_numpy()
    day = _days(rows)
    out = {}
    for scorer, (ranking, probability) in _COLUMNS.items():
        if ranking in rows and rows[probability].notna().all():
            out[scorer] = _metrics(
                y, rows[ranking].to_numpy(dtype=float), rows[probability].to_numpy(), day
            )
    return out


def _days(rows: pd.DataFrame) -> np.ndarray:
    """Each row's day within its origin: the leads open on one day of one origin's test."""
    day = day_index(rows["as_of"].to_numpy())
    if "origin" in rows:
        day = day * 1_000 + rows["origin"].to_numpy(dtype=np.int64)
    return day


def _capacity(rows: pd.DataFrame) -> dict[str, float]:
    """Wins of the rules' MQLs, and of as many of the model's (and the learned points')
    best rows (tie-aware)."""
    if "mql" not in rows:
        return {}
    n = int(rows["mql"].sum())
    y = rows["label"].to_numpy(dtype=np.float64)
    out = {"rules": float(y[rows["mql"].to_numpy(dtype=bool)].sum())}
    for scorer in ("model", "learned", "lead_age"):
        ranking = _COLUMNS[scorer][0]
        if ranking in rows:
            out[scorer] = float(top_share(rows[ranking].to_numpy(dtype=float), n) @ y)
    out["mqls"] = float(n)
    return out


def _learned_points(test, train, val, result, dataset, config, notes, k) -> None:
    """Learned points fitted on one origin's train period (`leadscore.training.learned`, as `compare`
    does), their scores and probabilities added to its test rows; a note when they cannot
    be learned there."""
    if train["label"].nunique() < 2 or val["label"].nunique() < 2:
        notes.append(f"origin {k}: no learned points (a period without won or lost leads)")
        return
    share = mql_share_of(test["mql"].to_numpy()) if "mql" in test else DEFAULT_MQL_SHARE
    try:
        suggestion = learn_points(
            dataset, train, val, learned_columns(dataset, result.scorer.features), config,
            mql_share=share,
        )  # fmt: skip
        scorer = fit_rules(suggestion.rules, dataset, val)
    except LeadscoreError as exc:
        notes.append(f"origin {k}: no learned points ({exc})")
        return
    x = batch_rule_inputs(suggestion.rules, dataset, test["lead_id"], test["as_of"])
    test["learned_score"] = scorer.rule_scores(x)
    test["p_learned"] = scorer.predict_proba(x)[:, 1]


def walk_forward(
    df: pd.DataFrame,
    spec: FeatureSpec,
    config: TrainConfig,
    dataset: Dataset,
    rules: RulesConfig | None,
    *,
    evaluated: TrainResult | None = None,
    origins: int | None = None,
    bootstrap: int | None = None,
    learned: bool = True,
    on_step: Callable[[str], None] | None = None,
    on_origin: Callable[[str], None] | None = None,
) -> Backtest:
    """The backtest of `df` (a training set) at `origins` origins (default: the config's).

    Args:
        evaluated: the evaluation already fitted on all of `df` (origin 0), if at hand.
        rules: marketing's points rules, calibrated per origin; None for the model only.
        learned: also learn points on each origin's train period (`leadscore.training.learned`).
        on_origin: told a line as each origin starts and ends (its rows, boosting rounds,
            seconds, and an estimate of what is left).
    """
    step = on_step or (lambda _: None)
    asked = config.backtest_origins if origins is None else origins
    quiet = config.model_copy(update={"bootstrap": 0})
    end = df["as_of"].max()
    frames, summaries, notes = [], [], []
    say = on_origin or (lambda _: None)
    durations: list[float] = []
    for k in range(asked):
        cut = end - pd.Timedelta(days=k * config.test_days)
        part = df[df["as_of"] <= cut]
        step(f"backtest origin {k + 1} of {asked}")
        started = time.perf_counter()
        reused = k == 0 and evaluated is not None
        say(
            f"backtest origin {k + 1} of {asked}: snapshots up to {cut.date()}, "
            f"{len(part):,} rows" + (" (the evaluation's fit, reused)" if reused else "")
        )
        try:
            result = (
                evaluated
                if (k == 0 and evaluated is not None)
                else fit_models(part.reset_index(drop=True), spec, quiet)
            )
        except LeadscoreError as exc:
            notes.append(
                f"the backtest ran {k} of {asked} origins: the data before "
                f"{cut.date()} is too short for another ({exc})"
            )
            break
        test = result.test[["lead_id", "as_of", "label", "p_model"]].copy()
        test.insert(0, "origin", k)
        if "age_hazard" in result.scorer.info and "lead_age_days" in result.test:
            # lead age alone, from the life table of this origin's own train rows
            age = result.test["lead_age_days"].to_numpy(dtype=float)
            test["p_lead_age"] = result.scorer.age_hazard.rate(age)
        split = result.split
        base = part.reset_index(drop=True) if result is not evaluated else df
        val = base[split.validation]
        if rules is not None:
            try:
                scorer = fit_rules(rules, dataset, val)
            except LeadscoreError as exc:
                notes.append(f"origin {k}: the rules are not calibrated ({exc})")
                scorer = None
            if scorer is not None:
                x = batch_rule_inputs(rules, dataset, test["lead_id"], test["as_of"])
                score = scorer.rule_scores(x)
                test["rule_score"] = score
                test["mql"] = scorer.mql(score)
                test["p_rules"] = scorer.predict_proba(x)[:, 1]
        if learned:
            _learned_points(test, base[split.train], val, result, dataset, config, notes, k)
        y = test["label"].to_numpy()
        metrics = _all_metrics(test)
        summaries.append(
            {
                "origin": k,
                "test_from": pd.Timestamp(test["as_of"].min()).isoformat() if len(test) else None,
                "test_to": pd.Timestamp(test["as_of"].max()).isoformat() if len(test) else None,
                "trained_before": result.split.validation_start.isoformat(),
                "rows": int(len(test)),
                "positives": int(y.sum()),
                "metrics": metrics,
                "capacity_wins": _capacity(test),
            }
        )
        frames.append(test)
        seconds = time.perf_counter() - started
        if not reused:
            durations.append(seconds)
        left = asked - k - 1
        estimate = (
            f"; about {left * sum(durations) / len(durations):,.0f} s left for {left} more"
            if left and durations
            else ""
        )
        say(
            f"backtest origin {k + 1} of {asked} done in {seconds:,.1f} s: "
            f"{int(result.params.get('best_iteration', 0)):,} rounds, {len(test):,} test rows"
            + estimate
        )
    if not frames:
        raise LeadscoreError("the backtest ran no origin: " + "; ".join(notes))
    rows = pd.concat(frames, ignore_index=True)
    y = rows["label"].to_numpy()
    pooled = _all_metrics(rows)
    difference = same_day = None
    if "rules" in pooled:
        rule_score = rows["rule_score"].to_numpy(dtype=float)
        draws = bootstrap if bootstrap is not None else config.bootstrap
        point = pooled["model"]["roc_auc"] - pooled["rules"]["roc_auc"]
        deltas = [
            weighted_auc(y, rows["p_model"].to_numpy(), w) - weighted_auc(y, rule_score, w)
            for w in lead_resample_weights(rows["lead_id"].to_numpy(), y, draws, config.seed)
        ]
        difference = [point, *percentile_interval(deltas, point)]
        same_day = _same_day_difference(rows, rule_score, draws, config.seed)
    if len(frames) < asked and not notes:
        notes.append(f"the backtest ran {len(frames)} of {asked} origins")
    capacity = {}
    if all(o["capacity_wins"] for o in summaries):
        shared = set.intersection(*(set(o["capacity_wins"]) for o in summaries))
        capacity = {
            key: float(sum(o["capacity_wins"][key] for o in summaries)) for key in sorted(shared)
        }
    return Backtest(
        summaries, rows, pooled, difference, asked, notes, capacity,
        same_day_difference=same_day if difference is not None else None,
    )  # fmt: skip


def _same_day_difference(rows: pd.DataFrame, rule_score: np.ndarray, draws: int, seed: int):
    """Same-day ROC AUC, model minus rules, on every origin's rows: [point, low, high], the
    interval from the bootstrap over leads (a lead's snapshots resampled together)."""
    y, p, day = rows["label"].to_numpy(), rows["p_model"].to_numpy(), _days(rows)
    point = same_day_auc(y, p, day) - same_day_auc(y, rule_score, day)
    deltas = []
    for w in lead_resample_weights(rows["lead_id"].to_numpy(), y, draws, seed):
        idx = np.repeat(np.arange(len(y)), w)
        deltas.append(
            same_day_auc(y[idx], p[idx], day[idx]) - same_day_auc(y[idx], rule_score[idx], day[idx])
        )
    return [point, *percentile_interval(deltas, point)]
