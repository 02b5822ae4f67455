"""MLflow: log a training run, register its model, and move aliases (champion/challenger).

Tracking and registry use MLflow's own default (`sqlite:///mlflow.db` in the working folder)
or `MLFLOW_TRACKING_URI`. Promotion rule: the new version becomes `champion` when there is
none, or when on the same test rows it beats the champion: an AUC at least as high and a
log loss at least as low, one of them strictly (a tie keeps the champion). Aliases move only after every other step has succeeded, so a run
that fails never moves one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Callable, Collection
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

import scoring
from crm.errors import LeadscoreError
from features.definitions import FeatureSpec
from scoring.mlflow_model import SCORER_ARTIFACT, LeadScoringModel, load_registered_scorer
from scoring.mlflow_runs import start_run
from stats.metrics import calibration_bins, gains_curve
from training import run_log
from training.config import TrainConfig
from training.fit import TrainResult

CHAMPION, CHALLENGER = "champion", "challenger"
# A version's state tag: "pending" from registration until its aliases have moved ("ready");
# "failed" when its run failed, or its process died (seen by the next training or listing).
STATE = "leadscore.state"
# The champion's alias history, as version tags (see move_champion).
PREVIOUS_CHAMPION = "leadscore.previous_champion"
CHAMPION_SINCE = "leadscore.champion_since"
CHAMPION_UNTIL = "leadscore.champion_until"
CHAMPION_BY = "leadscore.champion_by"
SCRATCH_PREFIX = "leadscore-scratch-"
# Logged by path ("models from code"): MLflow runs it at load time; importing it here would
# run its set_model call at import time.
PYFUNC_ENTRY = Path(scoring.__file__).parent / "pyfunc_entry.py"


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
    return out


def _figures(result: TrainResult):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = {}
    test = result.test
    y = test["label"].to_numpy()
    scorers = [c[2:] for c in test.columns if c.startswith("p_")]

    fig, ax = plt.subplots(figsize=(5, 5))
    for name in scorers:
        points = calibration_bins(y, test[f"p_{name}"].to_numpy())
        ax.plot(
            [b["mean_predicted"] for b in points],
            [b["observed"] for b in points],
            marker="o",
            label=name,
        )
    top = float(max(test[[f"p_{n}" for n in scorers]].max().max(), y.mean() * 2))
    ax.plot([0, top], [0, top], "k--", lw=1)
    ax.set(
        xlabel="predicted probability (decile mean)",
        ylabel="observed win rate",
        title="Calibration (test)",
    )
    ax.legend()
    figs["calibration_curve.png"] = fig

    fig, ax = plt.subplots(figsize=(5, 5))
    for name in scorers:
        ax.plot(*gains_curve(y, test[f"p_{name}"].to_numpy()), label=name)
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="random")
    ax.set(
        xlabel="share of leads worked (best first)",
        ylabel="share of wins captured",
        title="Gains (test)",
    )
    ax.legend()
    figs["gains_chart.png"] = fig

    booster = result.scorer.booster
    gain = (
        pd.Series(booster.feature_importance("gain"), index=booster.feature_name())
        .sort_values()
        .tail(20)
    )
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.barh(gain.index, gain.to_numpy())
    ax.set(xlabel="total gain", title="Feature importance (top 20)")
    fig.tight_layout()
    figs["feature_importance.png"] = fig
    return figs, plt


def input_example(payloads: list[dict], as_of: str) -> pd.DataFrame:
    """The pyfunc model's input: one JSON payload per row and its as_of."""
    return pd.DataFrame(
        {"lead": [json.dumps(p, default=str) for p in payloads], "as_of": [as_of] * len(payloads)}
    )


@contextmanager
def store_lock(uri: str):
    """An exclusive lock on a local sqlite store (a `.lock` file next to it), so that two
    trainings do not race on its schema migration nor on moving the aliases. Other stores
    (a tracking server) are not locked: the alias move re-checks the champion instead."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    path = Path(uri[len("sqlite:///") :])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def registry_messages_quiet():
    """MLflow announces a registration ("Successfully registered model", "Created version")
    with print() to its log stream, not through its logger: hold that stream while its
    logger is quieter than INFO (`leadscore` without --verbose), as for its INFO lines.
    MLflow's warnings in that call are held too."""
    import logging

    from mlflow.utils import logging_utils

    stream = logging_utils.MLFLOW_LOGGING_STREAM
    if logging.getLogger("mlflow").getEffectiveLevel() <= logging.INFO:
        yield
        return
    enabled = stream.enabled
    stream.enabled = False
    try:
        yield
    finally:
        stream.enabled = enabled


@contextmanager
def scratch_dir():
    """A temporary folder named after this process: removed on exit, and swept by a later
    run when this process was killed before it could remove it."""
    folder = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sweep_scratch() -> list[Path]:
    """Remove the scratch folders of processes that no longer run; returns them."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name[len(SCRATCH_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_runs(client, name: str) -> list[str]:
    """Versions left `pending` by a training that failed or died: their run is ended as
    FAILED (or KILLED, when its process on this machine is gone) and the version tagged
    `failed`. Returns the versions marked."""
    from mlflow.exceptions import MlflowException

    marked = []
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return marked
    for v in versions:
        # Only versions this code marked pending: older ones never had a state, and their
        # runs are not worth a look each time.
        if v.tags.get(STATE) != "pending" or not v.run_id:
            continue
        run = client.get_run(v.run_id)
        status = run.info.status
        if status == "RUNNING":
            host, pid = run.data.tags.get("leadscore.host"), run.data.tags.get("leadscore.pid")
            if host != socket.gethostname() or not pid or _alive(int(pid)):
                continue  # still training (or on another machine: not ours to judge)
            client.set_terminated(v.run_id, "KILLED")
        elif status == "FINISHED":  # it completed; only its last tag was not written
            client.set_model_version_tag(name, v.version, STATE, "ready")
            continue
        client.set_model_version_tag(name, v.version, STATE, "failed")
        marked.append(str(v.version))
    return marked


def log_and_register(
    result: TrainResult,
    *,
    config: TrainConfig,
    feature_config: dict,
    training_set: pd.DataFrame,
    source: str,
    example_payloads: list[dict],
    features_for: Callable[[FeatureSpec], pd.DataFrame],
    before_aliases: Callable[[], None] | None = None,
    report_dir: Path | None = None,
    data_columns: Collection[str] | None = None,
    require_trusted: bool = False,
    rules_metrics: dict | None = None,
) -> RunOutcome:
    """Log everything about one training run, register its model, then move aliases.

    Args:
        features_for: builds the training set with another feature spec (the champion's),
            so that both models are compared on the same test rows.
        before_aliases: called right before aliases move (tests inject failures here).
        report_dir: a folder logged as the run's `report/` artifacts.
        data_columns: the dataset's lead columns (the champion's lineage check; default:
            the training set's columns).
        require_trusted: never promote a model with a "do not trust" banner (`retrain`,
            unattended); `train` leaves that call to the data scientist who reads it.
        rules_metrics: the points rules' test metrics (`run_log.rules_metrics`), quoted in
            the run's and the version's descriptions.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    uri = mlflow.get_tracking_uri()
    with store_lock(uri):  # one process creates or migrates the store's schema
        client = MlflowClient()
        client.search_experiments(max_results=1)
        mlflow.set_experiment(config.experiment)
        reap_dead_runs(client, config.model_name)
    sweep_scratch()
    spec = result.scorer.spec
    # Lineage first, before anything is logged or registered: a champion trained on other
    # data (other columns) cannot be compared with this run on the same rows.
    champion = _champion(client, config.model_name)
    champion_scorer = None
    if champion is not None:
        champion_scorer = load_registered_scorer(champion.name, champion.version)
        columns = data_columns if data_columns is not None else training_set.columns
        history = spec.history if data_columns is not None else "lead_age_days" in training_set
        check_lineage(champion_scorer, champion.version, config.model_name, columns, history)
    version = None
    describe = partial(run_log.description, result, source, training_set, rules=rules_metrics)
    with (
        start_run(
            config.experiment, run_name=run_log.run_name(result, source), description=describe()
        ) as run,
        scratch_dir() as tmp,
    ):
        mlflow.set_tags(
            {
                "feature_set_version": spec.version,
                "leadscore.source": source,
                "leadscore.host": socket.gethostname(),
                "leadscore.pid": str(os.getpid()),
            }
        )
        params = _flat("train", config.model_dump(), {})
        params.update(_flat("features", feature_config, {}))
        params.update({f"lightgbm.effective.{k}": v for k, v in result.params.items()})
        params["calibration.method"] = result.calibration["method"]
        params["features.excluded_by_leakage_audit"] = ",".join(result.leakage.excluded) or "-"
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({**_metrics_for_mlflow(result), **run_log.fit_metrics(result)})
        run_log.log_learning_curve(run.info.run_id, result)
        run_log.log_datasets(training_set, result, source)
        mlflow.log_dict(dataset_fingerprint(training_set, source), "dataset_fingerprint.json")
        mlflow.log_dict(result.split.describe(training_set), "split.json")
        mlflow.log_dict(
            {k: {x: v for x, v in m.items()} for k, m in result.metrics.items()}, "metrics.json"
        )
        mlflow.log_dict(result.leakage.to_dict(), "leakage_audit.json")
        mlflow.log_dict(spec.model_dump(), "feature_spec.json")
        if len(result.by_age):
            mlflow.log_table(result.by_age, "auc_by_age.json")
        if result.warnings:
            mlflow.log_text("\n".join(result.warnings), "warnings.txt")
        mlflow.set_tag("leadscore.trusted", str(not result.untrusted).lower())
        if report_dir is not None:  # the marketing report (model vs points rules)
            mlflow.log_artifacts(str(report_dir), "report")
        figs, plt = _figures(result)
        for name, fig in figs.items():
            mlflow.log_figure(fig, name)
            plt.close(fig)

        scorer_dir = result.scorer.save(Path(tmp) / SCORER_ARTIFACT)
        example = input_example(example_payloads, result.test["as_of"].max().isoformat())
        model = LeadScoringModel()
        model.scorer = result.scorer
        with warnings.catch_warnings():  # MLflow's hint about integer columns: score is an int
            warnings.simplefilter("ignore", UserWarning)
            signature = infer_signature(example, model.predict(None, example))
        with registry_messages_quiet():
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(PYFUNC_ENTRY),
                artifacts={SCORER_ARTIFACT: str(scorer_dir)},
                signature=signature,
                input_example=example,
                registered_model_name=config.model_name,
                # Pinned third-party requirements, and our code shipped with the model: it
                # loads wherever they install (`mlflow models serve` builds that environment).
                pip_requirements=run_log.model_requirements(),
                code_paths=run_log.code_paths(),
            )
        version = str(info.registered_model_version)
        if not client.get_registered_model(config.model_name).description:
            client.update_registered_model(config.model_name, run_log.MODEL_DESCRIPTION)
        client.set_model_version_tag(config.model_name, version, STATE, "pending")
        try:
            return _finish(client, run, version, result, config, source, champion,
                           champion_scorer, features_for, before_aliases,
                           require_trusted, describe)  # fmt: skip
        except BaseException:
            client.set_model_version_tag(config.model_name, version, STATE, "failed")
            raise


def _finish(
    client, run, version, result, config, source, champion, champion_scorer, features_for,
    before_aliases, require_trusted=False, describe=None,
) -> RunOutcome:  # fmt: skip
    """Tags, the champion comparison and the alias move of a registered version."""
    import mlflow

    spec = result.scorer.spec
    auc, ll = result.metrics["model"]["roc_auc"], result.metrics["model"]["log_loss"]
    window = f"{result.split.test_start.isoformat()}..{result.test['as_of'].max().isoformat()}"
    for key, value in {
        "test_roc_auc": auc,
        "test_log_loss": ll,
        "test_window": window,
        "feature_set_version": spec.version,
        "run_id": run.info.run_id,
        "source": source,
    }.items():
        client.set_model_version_tag(config.model_name, version, key, str(value))

    promoted, reason, champ_metrics, champ_version = True, "no champion yet", None, None
    if champion is not None:
        champ_metrics = _champion_metrics(champion, champion_scorer, result, features_for)
        champ_version = str(champion.version)
        mlflow.log_metrics(
            {
                "champion_test_roc_auc": champ_metrics["roc_auc"],
                "champion_test_log_loss": champ_metrics["log_loss"],
            }
        )
        promoted = beats(auc, ll, champ_metrics["roc_auc"], champ_metrics["log_loss"])
        reason = (
            f"challenger AUC {auc:.4f} vs champion v{champion.version} {champ_metrics['roc_auc']:.4f}, "
            f"log loss {ll:.4f} vs {champ_metrics['log_loss']:.4f} on the same {len(result.test):,} test rows"
        )
    kept = "" if promoted else "not better"
    if require_trusted and result.untrusted and promoted:
        promoted, kept = False, "untrusted"
        reason = "not promoted: do not trust this model (" + "; ".join(result.untrusted) + ")"
    mlflow.set_tags(
        {"promoted": str(promoted), "promotion_reason": reason, "registered_version": version}
    )
    if before_aliases is not None:
        before_aliases()
    pause = float(os.environ.get("LEADSCORE_FAULT_PAUSE_BEFORE_ALIASES", "0") or 0)
    if pause:  # fault injection for the kill test: a window to kill the training in
        time.sleep(pause)
    # Last: aliases move only when everything above succeeded, as a compare-and-set:
    # under the store's lock, a champion that changed since the comparison (another
    # training promoted meanwhile) is compared again before anything moves.
    with store_lock(mlflow.get_tracking_uri()):
        current = _champion(client, config.model_name)
        before = str(champion.version) if champion is not None else None
        now = str(current.version) if current is not None else None
        if promoted and now is not None and now != before:
            scorer = load_registered_scorer(current.name, current.version)
            champ_metrics = _champion_metrics(current, scorer, result, features_for)
            champ_version = now
            promoted = beats(auc, ll, champ_metrics["roc_auc"], champ_metrics["log_loss"])
            reason = (
                f"re-checked against champion v{now} promoted meanwhile: AUC {auc:.4f} vs "
                f"{champ_metrics['roc_auc']:.4f}, log loss {ll:.4f} vs "
                f"{champ_metrics['log_loss']:.4f}"
            )
            mlflow.set_tags({"promoted": str(promoted), "promotion_reason": reason})
            kept = "" if promoted else "not better"
        if describe is not None:  # the run's and the version's description, final figures
            text = describe(
                champion=(champ_version, champ_metrics) if champ_metrics is not None else None,
                outcome=("champion: " if promoted else "challenger only: ") + reason,
            )
            mlflow.set_tag("mlflow.note.content", text)
            client.update_model_version(config.model_name, version, description=text)
        client.set_registered_model_alias(config.model_name, CHALLENGER, version)
        if promoted:
            move_champion(client, config.model_name, version, by=f"training run {run.info.run_id}")
        client.set_model_version_tag(config.model_name, version, STATE, "ready")
    return RunOutcome(run.info.run_id, version, promoted, reason, champ_metrics, kept)


def beats(auc: float, log_loss: float, champion_auc: float, champion_log_loss: float) -> bool:
    """The promotion rule: no worse on both, strictly better on at least one."""
    no_worse = auc >= champion_auc and log_loss <= champion_log_loss
    return no_worse and (auc > champion_auc or log_loss < champion_log_loss)


def _champion(client, name: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def check_lineage(
    scorer, version: str, model_name: str, columns: Collection[str], history: bool
) -> None:
    """Refuse, in one line, a champion whose features this data cannot compute (`columns`:
    the data's lead columns; `history`: whether it has an activity history)."""
    needed = [*scorer.spec.categorical, *scorer.spec.numeric_profile]
    missing = [c for c in needed if c not in set(columns)]
    if scorer.spec.history and not history:
        missing.append("(activity history)")
    if missing:
        raise LeadscoreError(
            f"champion v{version} of {model_name!r} was trained on other data: this dataset has "
            f"no {', '.join(missing)}; train into another registered model with "
            "--model-name NAME (nothing was logged or registered)"
        )


def _champion_metrics(
    champion, scorer, result: TrainResult, features_for: Callable[[FeatureSpec], pd.DataFrame]
) -> dict:
    from stats.metrics import evaluate

    keys = result.test[["lead_id", "as_of"]]
    frame = features_for(scorer.spec)
    rows = keys.merge(frame, on=["lead_id", "as_of"], how="left", validate="one_to_one")
    if rows["label"].isna().any():
        raise LeadscoreError(
            f"champion v{champion.version} cannot be scored on the current test rows (feature spec {scorer.spec.version})"
        )
    p = scorer.predict_proba(scorer.encode_frame(rows))
    return evaluate(result.test["label"].to_numpy(), p, bootstrap=0)


def move_champion(client, name: str, version: str, *, by: str, rollback: bool = False) -> None:
    """Every move of `champion` goes through here, and leaves its history on the versions
    (version tags: the registry keeps no alias history of its own). The new champion gets
    `PREVIOUS_CHAMPION` (the one it replaced; a rollback keeps the target's own, so that a
    second rollback goes one further back), `CHAMPION_SINCE` and `CHAMPION_BY`; the old one
    gets `CHAMPION_UNTIL`. The tags are written first and the alias last: a process killed
    in between leaves the alias where it was."""
    current = _champion(client, name)
    old = str(current.version) if current is not None else None
    if old == str(version):
        return
    now = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
    if not rollback:
        client.set_model_version_tag(name, version, PREVIOUS_CHAMPION, old or "")
    client.set_model_version_tag(name, version, CHAMPION_SINCE, now)
    client.set_model_version_tag(name, version, CHAMPION_BY, by)
    if old is not None:
        client.set_model_version_tag(name, old, CHAMPION_UNTIL, now)
    client.set_registered_model_alias(name, CHAMPION, version)


def promote(name: str, version: str) -> None:
    """Move `champion` to a version explicitly (a data scientist's decision)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        client.get_model_version(name, version)
    except MlflowException as exc:
        raise LeadscoreError(f"model {name!r} has no version {version}") from exc
    with store_lock(client.tracking_uri):
        move_champion(client, name, version, by="leadscore promote")


def rollback(name: str) -> tuple[str, str]:
    """Move `champion` back to the champion it replaced (its `PREVIOUS_CHAMPION` tag);
    returns (from, to). A previous champion that has since failed or was deleted is refused."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    with store_lock(client.tracking_uri):
        current = _champion(client, name)
        if current is None:
            raise LeadscoreError(f"model {name!r} has no champion to roll back")
        previous = current.tags.get(PREVIOUS_CHAMPION)
        if not previous:
            raise LeadscoreError(
                f"{name} v{current.version} is champion with no earlier champion recorded: "
                "nothing to roll back to (`leadscore promote VERSION` moves it explicitly)"
            )
        try:
            target = client.get_model_version(name, previous)
        except MlflowException as exc:
            raise LeadscoreError(
                f"the previous champion, {name} v{previous}, is no longer registered"
            ) from exc
        if target.tags.get(STATE) == "failed":
            raise LeadscoreError(f"the previous champion, {name} v{previous}, is marked failed")
        move_champion(
            client, name, previous, by=f"leadscore rollback from v{current.version}", rollback=True
        )
    return str(current.version), str(previous)


def list_versions(name: str) -> list[dict]:
    """Registered versions, newest first, with aliases and key metrics."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        aliases = client.get_registered_model(name).aliases or {}
    except MlflowException:
        return []
    reap_dead_runs(client, name)
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    rows = []
    for v in sorted(
        client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version), reverse=True
    ):
        window = v.tags.get("test_window", "")
        rows.append(
            {
                "version": str(v.version),
                "aliases": ",".join(sorted(by_version.get(str(v.version), []))),
                "created": pd.Timestamp(v.creation_timestamp, unit="ms", tz="UTC").strftime(
                    "%Y-%m-%d %H:%M"
                ),
                "test_auc": _rounded(v.tags.get("test_roc_auc")),
                "test_log_loss": _rounded(v.tags.get("test_log_loss")),
                "test_window": "..".join(part[:10] for part in window.split(".."))
                if window
                else "",
                "feature_set": v.tags.get("feature_set_version", ""),
                "champion": _period(v.tags),
                "state": v.tags.get(STATE, "ready"),
                "run": (v.run_id or "")[:8],
            }
        )
    return rows


def _period(tags: dict) -> str:
    """When a version was champion (the alias history's tags), e.g. `11-20..11-23 (after v2)`."""
    since = tags.get(CHAMPION_SINCE)
    if not since:
        return ""
    until = tags.get(CHAMPION_UNTIL, "")
    if until and until < since:  # champion again since (a rollback): the old end is past
        until = ""
    after = tags.get(PREVIOUS_CHAMPION)
    return f"{since[:16].replace('T', ' ')}..{until[:16].replace('T', ' ')}" + (
        f" (after v{after})" if after else ""
    )


def _rounded(text: str | None) -> str:
    try:
        return f"{float(text):.4f}"
    except (TypeError, ValueError):
        return ""
