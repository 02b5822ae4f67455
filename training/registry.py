"""The model registry's state machine: the champion gate (the promotion rule), the
champion/challenger aliases and their history, versions' states, promotion and rollback.

A version's state tag is "pending" from registration until its aliases have moved
("ready"), and "failed" when its run failed or its process died (seen by the next training
or listing: `reap_dead_runs`). Every move of `champion` goes through `move_champion`, which
keeps the alias history on the versions.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Collection

import numpy as np
import pandas as pd

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.times import utc
from leadscore.features.definitions import FeatureSpec
from leadscore.stats.bootstrap import lead_resample_weights, percentile_interval, weighted_auc
from leadscore.stats.metrics import EPS, point_metrics
from leadscore.training.fit import TrainResult
from leadscore.training.scratch import process_alive
from leadscore.training.store import store_lock

CHAMPION, CHALLENGER = "champion", "challenger"
STATE = "leadscore.state"
# The champion's alias history, as version tags (see move_champion).
PREVIOUS_CHAMPION = "leadscore.previous_champion"
CHAMPION_SINCE = "leadscore.champion_since"
CHAMPION_UNTIL = "leadscore.champion_until"
CHAMPION_BY = "leadscore.champion_by"


def beats(auc: float, log_loss: float, champion_auc: float, champion_log_loss: float) -> bool:
    """The promotion rule on points alone: no worse on both, strictly better on at least
    one (`gate_decision` without intervals)."""
    promoted, _ = gate_decision(
        [auc - champion_auc, np.nan, np.nan], [log_loss - champion_log_loss, np.nan, np.nan]
    )
    return promoted


def gate_decision(
    auc_difference: list[float], log_loss_difference: list[float]
) -> tuple[bool, str]:
    """The champion gate's rule on the paired differences, challenger minus champion, each
    [estimate, low, high] (a 95 % interval; NaN bounds: the estimate alone decides).

    The challenger is the fresher model: it ships unless it is surely worse (its ROC AUC
    interval wholly below the champion's, or its log loss interval wholly above), or has the
    very same figures (nothing to gain from moving the alias). A difference within the noise
    goes to the fresher model; without intervals this is `beats`. Returns (promote, why)."""
    auc, _, auc_high = auc_difference
    loss, loss_low, _ = log_loss_difference
    auc_high = auc_high if np.isfinite(auc_high) else auc
    loss_low = loss_low if np.isfinite(loss_low) else loss
    if abs(auc) <= _TIE and abs(loss) <= _TIE:
        return False, "the same figures as the champion"
    worse = [name for name, bad in (("ROC AUC", auc_high < 0), ("log loss", loss_low > 0)) if bad]
    if worse:
        return False, "worse on " + " and ".join(worse)
    return True, "not worse"


_TIE = 1e-12


def current_champion(client, name: str):
    """The version the `champion` alias points at, or None."""
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


def gate_rows(result: TrainResult) -> pd.DataFrame:
    """The challenger's out-of-time rows: every walk-forward origin's (its model at each
    origin trained only on what had matured before that origin's window), else the test
    rows; columns origin, lead_id, as_of, label, p_model."""
    backtest = result.backtest
    if backtest is not None and len(backtest.rows):
        return backtest.rows[["origin", "lead_id", "as_of", "label", "p_model"]]
    rows = result.test[["lead_id", "as_of", "label", "p_model"]].copy()
    rows.insert(0, "origin", 0)
    return rows


def champion_gate(
    version: str,
    scorer,
    result: TrainResult,
    features_for: Callable[[FeatureSpec], pd.DataFrame],
    *,
    bootstrap: int,
    seed: int = 0,
) -> dict:
    """The champion gate: the challenger against champion `version` (`scorer`) on the same
    rows, like with like.

    The champion is judged by its evaluated model (its shipped refit may have learned these
    rows), on the challenger's rows of every backtest origin that it had not seen (as_of on
    or after its own test window's start): each origin's model was trained only before its
    window, so both sides are out of time. A champion trained on newer data than all of them
    is compared on the test rows, and the gate says it had seen them. The champion's own
    features are computed for those rows (at the challenger's snapshot ages and horizon: the
    features do not depend on them). Pooled ROC AUC and log loss of both; their paired
    differences (challenger - champion) with a 95 % interval from the lead-level bootstrap
    (`leadscore.stats.bootstrap`, `bootstrap` draws); the decision is `gate_decision`'s.
    """
    evaluated = scorer.for_evaluation
    rows = gate_rows(result)
    start = evaluated.info.get("test_start")
    unseen = (rows["as_of"] >= utc(start)).to_numpy() if start else np.ones(len(rows), dtype=bool)
    seen = not unseen.any()
    rows = rows[rows["origin"] == 0] if seen else rows[unseen]
    rows = rows.reset_index(drop=True)
    ours = result.scorer.spec
    spec = scorer.spec.model_copy(
        update={
            "snapshot_ages_days": ours.snapshot_ages_days,
            "spread_from_days": ours.spread_from_days,
            "horizon_days": ours.horizon_days,
        }
    )
    frame = features_for(spec)
    merged = rows[["lead_id", "as_of"]].merge(
        frame, on=["lead_id", "as_of"], how="left", validate="one_to_one"
    )
    if merged["label"].isna().any():
        raise LeadscoreError(
            f"champion v{version} cannot be scored on the challenger's rows: "
            f"{int(merged['label'].isna().sum()):,} of them have no features under its "
            f"feature spec {scorer.spec.version}"
        )
    y = rows["label"].to_numpy().astype(int)
    p_new = rows["p_model"].to_numpy(dtype=np.float64)
    p_old = evaluated.score(evaluated.frame_batch(merged), reasons=0).probability
    challenger, champion = point_metrics(y, p_new), point_metrics(y, p_old)
    loss_new, loss_old = _row_log_loss(y, p_new), _row_log_loss(y, p_old)
    auc_point = challenger["roc_auc"] - champion["roc_auc"]
    loss_point = challenger["log_loss"] - champion["log_loss"]
    auc_draws, loss_draws = [], []
    for w in lead_resample_weights(rows["lead_id"].to_numpy(), y, bootstrap, seed):
        auc_draws.append(weighted_auc(y, p_new, w) - weighted_auc(y, p_old, w))
        loss_draws.append(float(w @ (loss_new - loss_old)) / max(float(w.sum()), 1.0))
    auc_difference = [auc_point, *percentile_interval(auc_draws, auc_point)]
    loss_difference = [loss_point, *percentile_interval(loss_draws, loss_point)]
    promoted, why = gate_decision(auc_difference, loss_difference)
    origins = sorted(int(o) for o in rows["origin"].unique())
    return {
        "version": str(version),
        "rows": int(len(rows)),
        "positives": int(y.sum()),
        "origins": origins,
        "champion_had_seen_them": seen,
        "challenger": challenger,
        "champion": champion,
        "roc_auc_difference": auc_difference,
        "log_loss_difference": loss_difference,
        "promoted": promoted,
        "why": why,
    }


def gate_reason(gate: dict, prefix: str = "") -> str:
    """The gate in one line, for the CLI, the run and the version's description."""
    auc, loss = gate["roc_auc_difference"], gate["log_loss_difference"]
    k = len(gate["origins"])
    where = (
        f"the {gate['rows']:,} test rows ({gate['positives']:,} won), which the champion had "
        "seen: it was trained on newer data"
        if gate["champion_had_seen_them"]
        else f"{gate['rows']:,} rows ({gate['positives']:,} won) of {k} backtest "
        f"origin{'s' if k != 1 else ''} it had not seen"
    )
    then = "the fresher model ships" if gate["promoted"] else "the champion stays"
    return (
        f"{prefix}challenger - champion v{gate['version']} on {where}: ROC AUC "
        f"{_signed(auc, 4)}, log loss {_signed(loss, 4)}: {gate['why']}, {then}"
    )


def _signed(d: list[float], digits: int) -> str:
    point, low, high = d
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{point:+.{digits}f}"
    return f"{point:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def _row_log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = np.clip(p, EPS, 1 - EPS)
    return -(y * np.log(q) + (1 - y) * np.log1p(-q))


def move_champion(client, name: str, version: str, *, by: str, rollback: bool = False) -> None:
    """Every move of `champion` goes through here, and leaves its history on the versions
    (version tags: the registry keeps no alias history of its own). The new champion gets
    `PREVIOUS_CHAMPION` (the one it replaced; a rollback keeps the target's own, so that a
    second rollback goes one further back), `CHAMPION_SINCE` and `CHAMPION_BY`; the old one
    gets `CHAMPION_UNTIL`. The tags are written first and the alias last: a process killed
    in between leaves the alias where it was."""
    current = current_champion(client, name)
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
        current = current_champion(client, name)
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
            if host != socket.gethostname() or not pid or process_alive(int(pid)):
                continue  # still training (or on another machine: not ours to judge)
            client.set_terminated(v.run_id, "KILLED")
        elif status == "FINISHED":  # it completed; only its last tag was not written
            client.set_model_version_tag(name, v.version, STATE, "ready")
            continue
        client.set_model_version_tag(name, v.version, STATE, "failed")
        marked.append(str(v.version))
    return marked
