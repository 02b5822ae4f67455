"""Walk-forward backtest: the evaluation repeated at several origins, so that no single test
window decides.

Origin k (k = 0 .. origins - 1) ends `k x test_days` before the training set's newest
snapshot: the evaluation's procedure (`fit_models`: split by time, audit, fit, calibrate on
the validation period) runs on the snapshots known by then and is tested on the next
`test_days`. Origin 0 is the evaluation itself. The test windows do not overlap, and each
model was trained only on what had matured before its window. Fewer origins run when the
data is too short for more, and the backtest says so.

Per origin and pooled over every origin's test rows: ROC AUC, PR AUC and ECE of the model
and the points rules (calibrated on each origin's validation period), and the wins of the
model's top N against the rules' N MQLs (capacity-matched). The model-minus-rules AUC
difference is pooled and paired, with a 95 % interval from the one bootstrap over leads
(`stats.bootstrap`) across every origin's rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from crm.errors import LeadscoreError
from crm.loading import Dataset
from features.definitions import FeatureSpec
from rules.config import RulesConfig
from rules.scorer import batch_rule_inputs
from stats.bootstrap import lead_resample_weights, percentile_interval, weighted_auc
from stats.metrics import expected_calibration_error
from stats.ranking import top_share
from training.config import TrainConfig
from training.fit import TrainResult, fit_models, fit_rules


@dataclass
class Backtest:
    """What the walk-forward backtest found (`rows`: every origin's test rows)."""

    origins: list[dict]
    rows: pd.DataFrame  # origin, lead_id, as_of, label, p_model (, rule_score, mql, p_rules)
    pooled: dict[str, dict]  # scorer -> point metrics on every origin's rows
    difference: list[float] | None  # pooled paired AUC, model - rules: [point, low, high]
    asked: int
    notes: list[str] = field(default_factory=list)

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


def _metrics(y: np.ndarray, ranking: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC and PR AUC of a ranking (points or probabilities), ECE of its probabilities."""
    both = 0 < y.sum() < len(y)
    return {
        "roc_auc": float(roc_auc_score(y, ranking)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, ranking)) if both else float("nan"),
        "ece": float(expected_calibration_error(y, p)),
    }


def _capacity(rows: pd.DataFrame) -> dict[str, float]:
    """Wins of the rules' MQLs, and of as many of the model's best (tie-aware)."""
    if "mql" not in rows:
        return {}
    n = int(rows["mql"].sum())
    y = rows["label"].to_numpy(dtype=np.float64)
    return {
        "rules": float(y[rows["mql"].to_numpy(dtype=bool)].sum()),
        "model": float(top_share(rows["p_model"].to_numpy(), n) @ y),
        "mqls": float(n),
    }


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
    on_step: Callable[[str], None] | None = None,
) -> Backtest:
    """The backtest of `df` (a training set) at `origins` origins (default: the config's).

    Args:
        evaluated: the evaluation already fitted on all of `df` (origin 0), if at hand.
        rules: marketing's points rules, calibrated per origin; None for the model only.
    """
    step = on_step or (lambda _: None)
    asked = config.backtest_origins if origins is None else origins
    quiet = config.model_copy(update={"bootstrap": 0})
    end = df["as_of"].max()
    frames, summaries, notes = [], [], []
    for k in range(asked):
        cut = end - pd.Timedelta(days=k * config.test_days)
        part = df[df["as_of"] <= cut]
        step(f"backtest origin {k + 1} of {asked}")
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
        if rules is not None:
            split = result.split
            base = part.reset_index(drop=True) if result is not evaluated else df
            val = base[split.validation]
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
        y = test["label"].to_numpy()
        p = test["p_model"].to_numpy()
        metrics = {"model": _metrics(y, p, p)}
        if "p_rules" in test:
            metrics["rules"] = _metrics(
                y, test["rule_score"].to_numpy(dtype=float), test["p_rules"].to_numpy()
            )
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
    if not frames:
        raise LeadscoreError("the backtest ran no origin: " + "; ".join(notes))
    rows = pd.concat(frames, ignore_index=True)
    y = rows["label"].to_numpy()
    p = rows["p_model"].to_numpy()
    pooled = {"model": _metrics(y, p, p)}
    difference = None
    if "p_rules" in rows and rows["p_rules"].notna().all():
        rule_score = rows["rule_score"].to_numpy(dtype=float)
        pooled["rules"] = _metrics(y, rule_score, rows["p_rules"].to_numpy())
        draws = bootstrap if bootstrap is not None else config.bootstrap
        point = pooled["model"]["roc_auc"] - pooled["rules"]["roc_auc"]
        deltas = [
            weighted_auc(y, rows["p_model"].to_numpy(), w) - weighted_auc(y, rule_score, w)
            for w in lead_resample_weights(rows["lead_id"].to_numpy(), y, draws, config.seed)
        ]
        difference = [point, *percentile_interval(deltas, point)]
    if len(frames) < asked and not notes:
        notes.append(f"the backtest ran {len(frames)} of {asked} origins")
    return Backtest(summaries, rows, pooled, difference, asked, notes)
