"""The model registry's state machine: the promotion rule, the champion/challenger aliases
and their history, versions' states, promotion and rollback.

A version's state tag is "pending" from registration until its aliases have moved
("ready"), and "failed" when its run failed or its process died (seen by the next training
or listing: `reap_dead_runs`). Every move of `champion` goes through `move_champion`, which
keeps the alias history on the versions.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Collection

import pandas as pd

from crm.errors import LeadscoreError
from features.definitions import FeatureSpec
from stats.metrics import evaluate
from training.fit import TrainResult
from training.scratch import process_alive
from training.store import store_lock

CHAMPION, CHALLENGER = "champion", "challenger"
STATE = "leadscore.state"
# The champion's alias history, as version tags (see move_champion).
PREVIOUS_CHAMPION = "leadscore.previous_champion"
CHAMPION_SINCE = "leadscore.champion_since"
CHAMPION_UNTIL = "leadscore.champion_until"
CHAMPION_BY = "leadscore.champion_by"


def beats(auc: float, log_loss: float, champion_auc: float, champion_log_loss: float) -> bool:
    """The promotion rule: no worse on both, strictly better on at least one."""
    no_worse = auc >= champion_auc and log_loss <= champion_log_loss
    return no_worse and (auc > champion_auc or log_loss < champion_log_loss)


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


def champion_metrics(
    champion, scorer, result: TrainResult, features_for: Callable[[FeatureSpec], pd.DataFrame]
) -> dict:
    """The champion's test metrics on this run's test rows (its own features for them)."""
    keys = result.test[["lead_id", "as_of"]]
    frame = features_for(scorer.spec)
    rows = keys.merge(frame, on=["lead_id", "as_of"], how="left", validate="one_to_one")
    if rows["label"].isna().any():
        raise LeadscoreError(
            f"champion v{champion.version} cannot be scored on the current test rows (feature spec {scorer.spec.version})"
        )
    # The champion's evaluated model: its shipped refit may have seen these rows.
    model = scorer.for_evaluation
    p = model.score(model.frame_batch(rows), reasons=0).probability
    return evaluate(result.test["label"].to_numpy(), p, bootstrap=0)


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
