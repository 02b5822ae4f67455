"""What a training run shows in MLflow, as MLflow users expect it: a run name, the datasets
as run inputs, train / validation / test metrics, LightGBM's learning curve per round,
descriptions on the run, the registered model and each version, and the logged model's
environment (pinned requirements and the code it runs).

`leadscore.training.tracking` calls these; they hold no registry logic.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.scoring.shipping import Shipment, ship
from leadscore.training.fit import TrainResult

# The module MLflow runs when it loads a leadscore model (models from code).
PYFUNC_ENTRY_MODULE = "leadscore.scoring.pyfunc_entry"

MODEL_DESCRIPTION = (
    "leadscore: the probability that a lead is won within the horizon, from its CRM "
    "profile and behaviour history at a point in time. LightGBM, calibrated on a later "
    "period, evaluated out of time; the points rules' scores and worded reasons come with "
    "each score. The `champion` alias is the version served; `challenger` the latest "
    "trained. Each version's description says what it was trained on and how it compared."
)
# Metrics logged for the train / validation rows and the learning curve.
FIT_METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "ece")


def model_shipment() -> Shipment:
    """The logged model's code (our packages its entry reaches, under the `leadscore`
    namespace) and its pinned requirements (what that code imports), derived from the code
    (`leadscore.scoring.shipping`): it loads wherever they install, with no `leadscore`
    requirement to resolve, and runs the code it was trained with."""
    return ship(PYFUNC_ENTRY_MODULE)


def model_requirements() -> list[str]:
    """The logged model's pip requirements: every third-party distribution its code imports,
    pinned to the version it was trained with."""
    return list(model_shipment().requirements)


def code_paths(scratch: Path) -> list[str]:
    """The model's code, staged in `scratch` as one `leadscore` folder (MLflow copies it to
    the model's `code/` and puts that first on the loading process's path)."""
    return [str(model_shipment().stage(Path(scratch)))]


def dataset_name(source: str) -> str:
    return Path(str(source).rstrip("/")).name or "dataset"


def run_name(result: TrainResult, source: str, now: datetime | None = None) -> str:
    """`<dataset> · LightGBM · data to <date> · <trained at>`: what, on what, when."""
    now = now or datetime.now(UTC)
    end = pd.Timestamp(result.test["as_of"].max()).date() if len(result.test) else "?"
    return f"{dataset_name(source)} · LightGBM · data to {end} · {now:%Y-%m-%d %H:%M}"


def log_datasets(training_set: pd.DataFrame, result: TrainResult, source: str) -> None:
    """The training set's three periods as run inputs (source, digest, schema; context
    train / validation / test), so that the run page lists what it learned from."""
    import warnings

    import mlflow

    split = result.split
    name = dataset_name(source)
    for context, mask in (
        ("train", split.train),
        ("validation", split.validation),
        ("test", split.test),
    ):
        part = training_set[mask]
        # Not for our users: MLflow's hints on how it read a local path, and on integer
        # columns in an inferred schema (the schema is a record here, never enforced).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            data = mlflow.data.from_pandas(
                part, source=str(source), name=f"{name}-{context}", targets="label"
            )
            data.schema = dataset_schema(part)
            mlflow.log_input(data, context=context)


def dataset_schema(frame: pd.DataFrame):
    """MLflow's schema of `frame`, inferred from its witness rows (`_witness`) instead of
    every value: MLflow's inference visits each cell in Python (4 s for a small training
    set's three periods), and a column's type and whether it is required are all it keeps."""
    import warnings

    import mlflow

    with warnings.catch_warnings():  # the integer-column hint: the schema is never enforced
        warnings.simplefilter("ignore", UserWarning)
        return mlflow.data.from_pandas(_schema_friendly(_witness(frame))).schema


def _witness(frame: pd.DataFrame) -> pd.DataFrame:
    """Two rows per column, in its dtype: its first value that is set, then its first
    missing one (the set one again where none is missing, a missing one where none is set)."""
    if not len(frame):
        return frame
    rows = {}
    for col in frame.columns:
        missing = frame[col].isna().to_numpy()
        first_set = int(np.argmin(missing)) if len(missing) else 0
        first_missing = int(np.argmax(missing)) if missing.any() else first_set
        rows[col] = frame[col].iloc[[first_set, first_missing]].reset_index(drop=True)
    return pd.DataFrame(rows, columns=frame.columns)


def _schema_friendly(frame: pd.DataFrame) -> pd.DataFrame:
    """Text and category columns as object: MLflow's schema inference knows those."""
    out = frame.copy()
    for col in out.columns:
        dtype = out[col].dtype
        if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
            out[col] = out[col].astype(object)
    return out


def fit_metrics(result: TrainResult) -> dict[str, float]:
    """train_* and validation_* metrics of the calibrated model (NaN ones left out)."""
    out = {}
    for part, values in result.fit_metrics.items():
        for key in FIT_METRICS:
            value = values.get(key)
            if value is not None and value == value:
                out[f"{part}_{key}"] = float(value)
    return out


def log_learning_curve(run_id: str, result: TrainResult) -> int:
    """LightGBM's metric per boosting round, as MLflow metric histories
    (`lgbm_train_binary_logloss`, `lgbm_validation_auc`, ...; step = round). Returns the
    number of points logged."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    stamp = int(datetime.now(UTC).timestamp() * 1000)
    points = [
        Metric(f"lgbm_{part}_{metric}", float(v), stamp, step)
        for part, by_metric in result.learning_curve.items()
        for metric, values in by_metric.items()
        for step, v in enumerate(values, start=1)
    ]
    client = MlflowClient()
    for i in range(0, len(points), 1000):  # MLflow's batch limit
        client.log_batch(run_id, metrics=points[i : i + 1000])
    return len(points)


def _gate_table(gate: dict) -> str:
    """The champion gate as a table: both models on the same rows, and the differences."""
    k = len(gate["origins"])
    rows = (
        f"the {gate['rows']:,} test rows ({gate['positives']:,} won), which the champion had "
        "seen (it was trained on newer data)"
        if gate["champion_had_seen_them"]
        else f"{gate['rows']:,} rows ({gate['positives']:,} won) of {k} backtest "
        f"origin{'s' if k != 1 else ''} the champion had not seen"
    )
    lines = [
        f"Champion gate, against champion v{gate['version']}'s evaluated model on {rows}:",
        "",
        f"| | this model | champion v{gate['version']} | difference [95% CI] |",
        "|---|---|---|---|",
    ]
    for key, label in (("roc_auc", "ROC AUC"), ("log_loss", "log loss")):
        point, low, high = gate[f"{key}_difference"]
        interval = f" [{low:+.4f}, {high:+.4f}]" if np.isfinite(low) else ""
        lines.append(
            f"| {label} | {gate['challenger'][key]:.4f} | {gate['champion'][key]:.4f} | "
            f"{point:+.4f}{interval} |"
        )
    return "\n".join(lines)


def _metric_line(label: str, m: dict) -> str:
    ci = m.get("roc_auc_ci")
    interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and ci[0] == ci[0] else ""

    def cell(key: str) -> str:
        value = m.get(key)
        return "-" if value is None or value != value else f"{value:.4f}"

    return (
        f"| {label} | {m['roc_auc']:.3f}{interval} | {cell('log_loss')} | {cell('brier')} | "
        f"{cell('ece')} |"
    )


def rules_metrics(comparison) -> dict | None:
    """The points rules' headline test metrics from a `leadscore.training.report.Comparison`."""
    if comparison is None:
        return None
    head = comparison.headline.set_index("scorer")
    if "rules" not in head.index:
        return None
    r = head.loc["rules"]
    return {
        "roc_auc": float(r["roc_auc"]),
        "roc_auc_ci": [float(r["roc_auc_low"]), float(r["roc_auc_high"])],
        "brier": float(r["brier"]),
        "ece": float(r["ece"]),
    }


def description(
    result: TrainResult,
    source: str,
    training_set: pd.DataFrame,
    *,
    rules: dict | None = None,
    gate: dict | None = None,
    outcome: str | None = None,
) -> str:
    """The Markdown shown on the run and on its model version: the do-not-trust banners
    first, what it was trained on, its test metrics next to the points rules, the champion
    gate (challenger and champion on the same rows), the fit on train and validation, and the audit's exclusions.

    Args:
        rules: the points rules' test metrics on the same rows, when they were compared.
        gate: the champion gate it met (`leadscore.training.registry.champion_gate`).
        outcome: the promotion decision, in words.
    """
    lines = [f"**Do not trust this model:** {line}" for line in result.untrusted]
    split, m = result.split, result.metrics["model"]
    lines.append(
        f"Trained on `{source}`: {len(training_set):,} snapshots of "
        f"{training_set['lead_id'].nunique():,} leads, as of "
        f"{pd.Timestamp(training_set['as_of'].min()).date()} to "
        f"{pd.Timestamp(training_set['as_of'].max()).date()}; train "
        f"{int(split.train.sum()):,} / validation {int(split.validation.sum()):,} / test "
        f"{int(split.test.sum()):,} (test from {split.test_start.date()}). "
        f"{result.params['features_used']} features, {result.params['best_iteration']} "
        f"rounds, {result.calibration['method']} calibration."
    )
    shipped = result.shipped
    if shipped is not None:
        lines.append(
            "The figures below describe the evaluated procedure (the model trained on the "
            "train period and tested after it). **The model that ships** is refit on every "
            f"matured snapshot: {shipped['rows']:,} snapshots ({shipped['leads_won']:,} won "
            f"leads) as of {shipped['first_as_of'][:10]} to {shipped['last_as_of'][:10]}, "
            f"{shipped['rounds']} rounds, {shipped['calibration']['method']} calibration by "
            f"{shipped['calibration']['fitted_by']}."
        )
    table = [
        f"Out-of-time test, {m['rows']:,} rows ({m['positives']:,} won):",
        "",
        "| scorer | ROC AUC [95% CI] | log loss | Brier | ECE |",
        "|---|---|---|---|---|",
        _metric_line("this model", m),
    ]
    if rules is not None:
        table.append(_metric_line("points rules (same period)", rules))
    for name, other in result.metrics.items():
        if name != "model":
            table.append(_metric_line(name, other))
    lines.append("\n".join(table))
    if gate is not None:
        lines.append(_gate_table(gate))
    fit = result.fit_metrics
    if fit:
        lines.append(
            "Fit: ROC AUC "
            + ", ".join(f"{part} {v['roc_auc']:.3f}" for part, v in fit.items())
            + f", test {m['roc_auc']:.3f} (validation also fitted the calibration)."
        )
    if outcome:
        lines.append(f"Promotion: {outcome}.")
    excluded = result.leakage.excluded
    lines.append(
        "Excluded by the leakage audit: " + ", ".join(excluded) + "."
        if excluded
        else "The leakage audit excluded no feature."
    )
    return "\n\n".join(lines)
