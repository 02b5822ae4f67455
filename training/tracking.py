"""MLflow: log a training run, register its model, and move aliases (champion/challenger).

Tracking and registry use MLflow's own default (`sqlite:///mlflow.db` in the working folder)
or `MLFLOW_TRACKING_URI`. Promotion (`leadscore.training.registry.champion_gate`): the new version
becomes `champion` when there is none, or when it is not surely worse than the champion's
evaluated model on the same rows: the backtest origins' rows the champion had not seen,
pooled, with the paired ROC AUC and log-loss differences' lead-level bootstrap intervals
(the very same figures keep the champion).

A registration runs in phases, each callable on its own (`Registration`): log the run,
register the version (state "pending"), compare it with the champion, move the aliases.
Aliases move only in the last phase, after every other has succeeded; a failure in any
phase marks the run FAILED and the version "failed", and moves nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import warnings
from collections.abc import Callable, Collection
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.crm.csv_out import csv_ready, json_ready
from leadscore.crm.errors import LeadscoreError
from leadscore.features.definitions import FeatureSpec
from leadscore.scoring.mlflow_model import SCORER_ARTIFACT, LeadScoringModel, load_registered_scorer
from leadscore.scoring.mlflow_runs import start_run
from leadscore.scoring.shipping import package_folder
from leadscore.training import run_log
from leadscore.training.config import TrainConfig
from leadscore.training.figures import training_figures
from leadscore.training.fit import TrainResult
from leadscore.training.registry import (
    CHALLENGER,
    CHAMPION,
    STATE,
    champion_gate,
    check_lineage,
    current_champion,
    gate_reason,
    move_champion,
    reap_dead_runs,
)
from leadscore.training.scratch import scratch_dir, sweep_scratch
from leadscore.training.store import registry_messages_quiet, store_lock

# Logged by path ("models from code"): MLflow runs it at load time; importing it here would
# run its set_model call at import time.
PYFUNC_ENTRY = package_folder("leadscore.scoring") / "pyfunc_entry.py"


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    version: str
    promoted: bool
    reason: str
    champion_metrics: dict | None
    # Why the champion stayed, for a scheduler: "" (promoted), "not better" or "untrusted".
    kept: str = ""


def dataset_fingerprint(df: pd.DataFrame, source: str) -> dict:
    """Row counts, date range and a content hash of the training set."""
    digest = hashlib.sha256(
        pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes()
    ).hexdigest()
    return {
        "source": source,
        "rows": int(len(df)),
        "leads": int(df["lead_id"].nunique()),
        "positives": int(df["label"].sum()),
        "as_of_min": df["as_of"].min().isoformat(),
        "as_of_max": df["as_of"].max().isoformat(),
        "sha256": digest,
    }


def _flat(prefix: str, value, out: dict) -> dict:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value
    return out


def _metrics_for_mlflow(result: TrainResult) -> dict[str, float]:
    out = {}
    for scorer, m in result.metrics.items():
        for key in (
            "roc_auc",
            "pr_auc",
            "brier",
            "log_loss",
            "ece",
            "lift_top_decile",
            "capture_top_decile",
        ):
            out[f"test_{key}_{scorer}"] = float(m[key])
        out[f"test_roc_auc_ci_low_{scorer}"] = float(m["roc_auc_ci"][0])
        out[f"test_roc_auc_ci_high_{scorer}"] = float(m["roc_auc_ci"][1])
    test = result.test
    if "interval_low_model" in test and len(test):  # the Venn-Abers intervals on the test rows
        width = test["interval_high_model"] - test["interval_low_model"]
        out["test_interval_width_mean_model"] = float(width.mean())
        out["test_interval_width_p90_model"] = float(width.quantile(0.9))
        out["test_review_share_model"] = float(test["review_model"].mean())
    if result.accounts is not None:  # the account model's test figures, per account scorer
        from leadscore.training.accounts import account_metric_names

        out.update(account_metric_names(result.accounts))
    return out


def input_example(payloads: list[dict], as_of: str) -> pd.DataFrame:
    """The pyfunc model's input: one JSON payload per row and its as_of."""
    return pd.DataFrame(
        {"lead": [json.dumps(p, default=str) for p in payloads], "as_of": [as_of] * len(payloads)}
    )


def log_scorer_model(scorer, example: pd.DataFrame, name: str, scratch: Path) -> str:
    """Log a scorer as the pyfunc model (the current entry point, our code shipped with it)
    into the active run, registered as a new version of `name`; returns the version."""
    import mlflow
    from mlflow.models import infer_signature

    scorer_dir = scorer.save(Path(scratch) / SCORER_ARTIFACT)
    model = LeadScoringModel()
    model.scorer = scorer
    with warnings.catch_warnings():  # MLflow's hint about integer columns: score is an int
        warnings.simplefilter("ignore", UserWarning)
        signature = infer_signature(example, model.predict(None, example))
    shipment = run_log.model_shipment()
    with registry_messages_quiet():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_ENTRY),
            artifacts={SCORER_ARTIFACT: str(scorer_dir)},
            signature=signature,
            input_example=example,
            registered_model_name=name,
            # Pinned third-party requirements, and our code shipped with the model: it
            # loads wherever they install (`mlflow models serve` builds that environment).
            pip_requirements=list(shipment.requirements),
            code_paths=[str(shipment.stage(Path(scratch) / "code"))],
        )
    return str(info.registered_model_version)


class Registration:
    """One training run logged and registered, phase by phase.

    Use as a context manager: entering prepares the store (creates or migrates its schema
    under a lock, marks versions of dead trainings failed, sweeps dead scratch folders),
    checks the champion's lineage and starts the MLflow run; leaving ends the run (FAILED
    on an exception, the version then tagged "failed"). Inside, call `log_run`,
    `register_version`, `compare_with_champion` and `move_aliases`, in that order
    (`log_and_register` does).
    """

    def __init__(
        self,
        result: TrainResult,
        *,
        config: TrainConfig,
        feature_config: dict,
        training_set: pd.DataFrame,
        source: str,
        example_payloads: list[dict],
        features_for: Callable[[FeatureSpec], pd.DataFrame],
        report_dir: Path | None = None,
        data_columns: Collection[str] | None = None,
        require_trusted: bool = False,
        rules_metrics: dict | None = None,
    ) -> None:
        self.result = result
        self.config = config
        self.feature_config = feature_config
        self.training_set = training_set
        self.source = source
        self.example_payloads = example_payloads
        self.features_for = features_for
        self.report_dir = report_dir
        self.data_columns = data_columns
        self.require_trusted = require_trusted
        self.rules_metrics = rules_metrics
        self.version: str | None = None
        self.promoted, self.reason, self.kept = True, "the first version, no champion before it", ""
        self.champion_metrics: dict | None = None
        self.champion_version: str | None = None
        self._stack = ExitStack()

    # --- the run's lifetime ----------------------------------------------------------

    def __enter__(self) -> Registration:
        import mlflow
        from mlflow import MlflowClient

        name = self.config.model_name
        with store_lock(mlflow.get_tracking_uri()):  # one process creates or migrates it
            self.client = MlflowClient()
            self.client.search_experiments(max_results=1)
            mlflow.set_experiment(self.config.experiment)
            reap_dead_runs(self.client, name)
        sweep_scratch()
        # Lineage first, before anything is logged or registered: a champion trained on
        # other data (other columns) cannot be compared with this run on the same rows.
        self.champion = current_champion(self.client, name)
        self.champion_scorer = None
        if self.champion is not None:
            self.champion_scorer = load_registered_scorer(name, self.champion.version)
            df = self.training_set
            columns = self.data_columns if self.data_columns is not None else df.columns
            history = (
                self.result.scorer.spec.history
                if self.data_columns is not None
                else "lead_age_days" in df
            )
            check_lineage(self.champion_scorer, self.champion.version, name, columns, history)
        self.describe = partial(
            run_log.description,
            self.result,
            self.source,
            self.training_set,
            rules=self.rules_metrics,
        )
        with ExitStack() as stack:
            self.run = stack.enter_context(
                start_run(
                    self.config.experiment,
                    run_name=run_log.run_name(self.result, self.source),
                    description=self.describe(),
                )
            )
            self.scratch = stack.enter_context(scratch_dir())
            self._stack = stack.pop_all()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and self.version is not None:
            self.client.set_model_version_tag(self.config.model_name, self.version, STATE, "failed")
        return bool(self._stack.__exit__(exc_type, exc, tb))

    # --- phases ----------------------------------------------------------------------

    def log_run(self) -> None:
        """Params, metrics, the learning curve, datasets, artifacts and figures."""
        import mlflow

        result, spec = self.result, self.result.scorer.spec
        mlflow.set_tags(
            {
                "feature_set_version": spec.version,
                "leadscore.source": self.source,
                "leadscore.host": socket.gethostname(),
                "leadscore.pid": str(os.getpid()),
            }
        )
        params = _flat("train", self.config.model_dump(by_alias=True), {})
        params.update(_flat("features", self.feature_config, {}))
        params.update({f"lightgbm.effective.{k}": v for k, v in result.params.items()})
        params["calibration.method"] = result.calibration["method"]
        params["features.excluded_by_leakage_audit"] = ",".join(result.leakage.excluded) or "-"
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({**_metrics_for_mlflow(result), **run_log.fit_metrics(result)})
        run_log.log_learning_curve(self.run.info.run_id, result)
        run_log.log_datasets(self.training_set, result, self.source)
        mlflow.log_dict(
            dataset_fingerprint(self.training_set, self.source), "dataset_fingerprint.json"
        )
        mlflow.log_dict(result.split.describe(self.training_set), "split.json")
        mlflow.log_dict(
            {k: {x: v for x, v in m.items()} for k, m in result.metrics.items()}, "metrics.json"
        )
        mlflow.log_dict(result.leakage.to_dict(), "leakage_audit.json")
        if result.segment_champions is not None:
            table = result.segment_champions.table
            mlflow.log_dict(
                {"column": result.segment_champions.column,
                 "segments": json.loads(table.to_json(orient="records"))},
                "segment_champions.json",
            )  # fmt: skip
            mlflow.log_metric("segment_champions", float(len(result.segment_champions.shipped)))
        if result.accounts is not None:
            mlflow.log_dict(
                {"split": result.accounts.split, "stats": result.accounts.stats,
                 "metrics": result.accounts.summary()},
                "accounts.json",
            )  # fmt: skip
        mlflow.log_dict(spec.model_dump(), "feature_spec.json")
        if result.backtest is not None:  # every origin, metrics as steps (0: the newest)
            backtest = result.backtest
            for key, values in backtest.metrics_by_step().items():
                for origin, value in values:
                    mlflow.log_metric(key, value, step=origin)
            mlflow.log_metrics(backtest.pooled_metrics())
            mlflow.log_dict(json_ready(backtest.summary()), "backtest.json")
            rows = csv_ready(backtest.rows, ["as_of"]).to_csv(index=False)
            mlflow.log_text(rows, "backtest_rows.csv")
        if result.shipped is not None:  # what the model that ships learned from
            mlflow.log_dict(result.shipped, "shipped.json")
            mlflow.log_metrics(
                {
                    "shipped_rows": float(result.shipped["rows"]),
                    "shipped_leads_won": float(result.shipped["leads_won"]),
                    "shipped_rounds": float(result.shipped["rounds"]),
                }
            )
            mlflow.set_tag("leadscore.shipped_trained_to", result.shipped["last_as_of"])
        if len(result.by_age):
            mlflow.log_table(result.by_age, "auc_by_age.json")
        if result.warnings:
            mlflow.log_text("\n".join(result.warnings), "warnings.txt")
        mlflow.set_tag("leadscore.trusted", str(not result.untrusted).lower())
        if self.report_dir is not None:  # the marketing report (model vs points rules)
            mlflow.log_artifacts(str(self.report_dir), "report")
        figs, plt = training_figures(result)
        for name, fig in figs.items():
            mlflow.log_figure(fig, name)
            plt.close(fig)

    def register_version(self) -> str:
        """Log the pyfunc model and register it as a new version, in state "pending"."""
        result, name = self.result, self.config.model_name
        example = input_example(self.example_payloads, result.test["as_of"].max().isoformat())
        self.version = log_scorer_model(result.scorer, example, name, Path(self.scratch))
        if not self.client.get_registered_model(name).description:
            self.client.update_registered_model(name, run_log.MODEL_DESCRIPTION)
        self.client.set_model_version_tag(name, self.version, STATE, "pending")
        return self.version

    def compare_with_champion(self) -> bool:
        """The version's tags, and whether it should become champion (and why)."""
        import mlflow

        result, name, version = self.result, self.config.model_name, self.version
        auc, ll = result.metrics["model"]["roc_auc"], result.metrics["model"]["log_loss"]
        window = f"{result.split.test_start.isoformat()}..{result.test['as_of'].max().isoformat()}"
        for key, value in {
            "test_roc_auc": auc,
            "test_log_loss": ll,
            "test_window": window,
            "feature_set_version": result.scorer.spec.version,
            "run_id": self.run.info.run_id,
            "source": self.source,
        }.items():
            self.client.set_model_version_tag(name, version, key, str(value))
        if self.champion is not None:
            self._gate(self.champion.version, self.champion_scorer)
        self.kept = "" if self.promoted else "not better"
        if self.require_trusted and result.untrusted and self.promoted:
            self.promoted, self.kept = False, "untrusted"
            self.reason = (
                "not promoted: do not trust this model (" + "; ".join(result.untrusted) + ")"
            )
        mlflow.set_tags(
            {
                "promoted": str(self.promoted),
                "promotion_reason": self.reason,
                "registered_version": version,
            }
        )
        return self.promoted

    def _gate(self, version, scorer, prefix: str = "") -> None:
        """The champion gate (`leadscore.training.registry.champion_gate`) against `version`: its
        figures logged to the run, the decision and its reason kept."""
        import mlflow

        gate = champion_gate(
            str(version),
            scorer,
            self.result,
            self.features_for,
            bootstrap=self.config.bootstrap,
            seed=self.config.seed,
        )
        self.champion_metrics, self.champion_version = gate, str(version)
        metrics = {
            "gate_rows": gate["rows"],
            "gate_origins": len(gate["origins"]),
            "champion_gate_roc_auc": gate["champion"]["roc_auc"],
            "champion_gate_log_loss": gate["champion"]["log_loss"],
            "challenger_gate_roc_auc": gate["challenger"]["roc_auc"],
            "challenger_gate_log_loss": gate["challenger"]["log_loss"],
        }
        for name in ("roc_auc", "log_loss"):
            d = gate[f"{name}_difference"]
            for suffix, value in zip(("", "_low", "_high"), d, strict=True):
                metrics[f"gate_{name}_difference{suffix}"] = value
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        self.promoted = gate["promoted"]
        self.reason = gate_reason(gate, prefix)
        self.kept = "" if self.promoted else "not better"

    def move_aliases(self) -> RunOutcome:
        """Last: the aliases move, as a compare-and-set. Under the store's lock, a champion
        that changed since the comparison (another training promoted meanwhile) is compared
        again before anything moves; then the final descriptions, `challenger`, `champion`
        when promoted, and the state "ready"."""
        import mlflow

        name, version = self.config.model_name, self.version
        with store_lock(mlflow.get_tracking_uri()):
            current = current_champion(self.client, name)
            before = str(self.champion.version) if self.champion is not None else None
            now = str(current.version) if current is not None else None
            if self.promoted and now is not None and now != before:
                scorer = load_registered_scorer(current.name, current.version)
                self._gate(
                    now, scorer, prefix=f"re-checked against champion v{now} promoted meanwhile: "
                )
                mlflow.set_tags({"promoted": str(self.promoted), "promotion_reason": self.reason})
            text = self.describe(
                gate=self.champion_metrics,
                outcome=("champion: " if self.promoted else "challenger only: ") + self.reason,
            )
            mlflow.set_tag("mlflow.note.content", text)
            self.client.update_model_version(name, version, description=text)
            self.client.set_registered_model_alias(name, CHALLENGER, version)
            if self.promoted:
                move_champion(self.client, name, version, by=f"training run {self.run.info.run_id}")
            self.client.set_model_version_tag(name, version, STATE, "ready")
        return RunOutcome(
            self.run.info.run_id,
            version,
            self.promoted,
            self.reason,
            self.champion_metrics,
            self.kept,
        )


def log_and_register(result: TrainResult, **options) -> RunOutcome:
    """Log everything about one training run, register its model, then move aliases: every
    phase of a `Registration` (see its arguments), in order."""
    with Registration(result, **options) as registration:
        registration.log_run()
        registration.register_version()
        registration.compare_with_champion()
        return registration.move_aliases()


@dataclass(frozen=True)
class Migration:
    source: str
    version: str  # the new version
    aliases: tuple[str, ...]  # moved from the old version to the new one


def migrate_model(source: str, name: str, *, experiment: str = "leadscore-migrations") -> Migration:
    """Re-log a model saved by an earlier layout (a registered version `models:/NAME/3`,
    or a model folder) with the current entry point and code, as a new version of `name`.

    Only the scorer's artifact is read (never the old entry file), so a model whose entry
    file no longer imports still migrates. The new version copies the old one's test tags
    and description; when the source is a version of `name`, its aliases (champion through
    `move_champion`, so the alias history is kept) move to the new version.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    from leadscore.scoring.mlflow_model import load_scorer

    client = MlflowClient()
    old = None
    if source.startswith("models:/"):
        parts = source[len("models:/") :].split("/")
        if len(parts) != 2 or not parts[1].isdigit():
            raise LeadscoreError(f"{source}: give a version as models:/NAME/VERSION")
        try:
            old = client.get_model_version(parts[0], parts[1])
        except MlflowException as exc:
            raise LeadscoreError(f"{source}: no such registered version") from exc
    with scratch_dir() as tmp:
        try:
            local = Path(
                mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(tmp))
            )
        except (MlflowException, OSError) as exc:
            raise LeadscoreError(f"{source}: cannot read the model ({type(exc).__name__})") from exc
        scorer = load_scorer(local / "artifacts" / SCORER_ARTIFACT)
        try:
            example = Model.load(str(local)).load_input_example(str(local))
        except (MlflowException, OSError, ValueError) as exc:
            raise LeadscoreError(f"{source}: not an MLflow model folder ({exc})") from exc
        if example is None:
            raise LeadscoreError(f"{source}: the model has no input example to log it with")
        with store_lock(mlflow.get_tracking_uri()):
            client.search_experiments(max_results=1)
        mlflow.set_experiment(experiment)
        with mlflow.start_run(run_name=f"migrate {source}") as run:
            mlflow.set_tags({"leadscore.migrated_from": source})
            version = log_scorer_model(scorer, example, name, tmp / "new")
    client.set_model_version_tag(name, version, "leadscore.migrated_from", source)
    moved: list[str] = []
    if old is not None:
        for key, value in old.tags.items():
            if key.startswith("test_") or key in ("feature_set_version", "source"):
                client.set_model_version_tag(name, version, key, value)
        note = f"Migrated from {source} (run {run.info.run_id}) to the current entry point."
        description = f"{old.description}\n\n{note}" if old.description else note
        client.update_model_version(name, version, description=description)
        if old.name == name:
            with store_lock(mlflow.get_tracking_uri()):
                for alias in sorted(old.aliases):
                    if alias == CHAMPION:
                        move_champion(
                            client, name, version, by=f"leadscore models migrate {source}"
                        )
                    else:
                        client.set_registered_model_alias(name, alias, version)
                    moved.append(alias)
    client.set_model_version_tag(name, version, STATE, "ready")
    return Migration(source, version, tuple(moved))


def runs_current_code(model_dir: Path) -> bool:
    """Whether a saved model runs the current layout: its entry imports the `leadscore`
    namespace and the code it carries is one `leadscore/` folder (a model of an earlier
    layout carries bare `stats/`, `features/`, ... or imports a module that is gone)."""
    entry = Path(model_dir) / "pyfunc_entry.py"
    code = Path(model_dir) / "code"
    shipped = sorted(p.name for p in code.iterdir()) if code.is_dir() else []
    return (
        entry.is_file()
        and "from leadscore.scoring.mlflow_model import" in entry.read_text()
        and shipped == ["leadscore"]
    )


def migrate_all(name: str) -> list[Migration]:
    """Migrate every version of `name` that runs an earlier layout (`runs_current_code`),
    oldest first; the versions of the current layout, and those migrated already, are left as
    they are. Returns the migrations made."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException as exc:
        raise LeadscoreError(f"{name}: cannot list its versions ({type(exc).__name__})") from exc
    if not versions:
        raise LeadscoreError(f"{name}: no registered version")
    # a version some other version was migrated from is done already
    moved_on = {v.tags.get("leadscore.migrated_from") for v in versions}
    done = []
    for version in sorted(versions, key=lambda v: int(v.version)):
        if version.tags.get(STATE) == "failed" or f"models:/{name}/{version.version}" in moved_on:
            continue
        with scratch_dir() as tmp:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"models:/{name}/{version.version}", dst_path=str(tmp)
                )
            )
            if runs_current_code(local):
                continue
        done.append(migrate_model(f"models:/{name}/{version.version}", name))
    return done
