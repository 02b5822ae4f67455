"""The account model: learned and evaluated at account level on the same point-in-time
principles as the lead model, then refit for shipping.

Account snapshots (`leadscore.features.accounts`) are split by as_of as lead snapshots are (test: the
last `test_days`; validation before it; train purged a horizon before validation). A
LightGBM booster learns from train, stops early and is calibrated (with its Venn-Abers
interval) on validation, and is tested on the test accounts next to what a team would do
without it: the product of its contacts' independent lead probabilities (1 - prod(1 - p):
the lead model's view of the account), the best contact's lead probability, and the points
rules (an account is handed over when one of its contacts reaches the MQL threshold;
capacity-matched: the model hands over as many accounts). The model that ships is refit on
every matured account snapshot, calibrated on a booster trained before the last validation
period (out of time), and carries the evaluated one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from leadscore.crm.dataset import Dataset
from leadscore.crm.errors import LeadscoreError
from leadscore.features.accounts import (
    ACCOUNT_ID,
    AccountSpec,
    account_frames,
    account_snapshot_rows,
    role_levels,
)
from leadscore.features.definitions import slug
from leadscore.rules.scorer import batch_rule_inputs
from leadscore.scoring.accounts import AccountScorer, open_account_scores
from leadscore.scoring.encoding import encode_frame
from leadscore.scoring.scorer import LeadScorer
from leadscore.stats.metrics import evaluate
from leadscore.training.calibration import fit_calibration
from leadscore.training.config import TrainConfig
from leadscore.training.fit import lightgbm_params
from leadscore.training.refit import scaled_rounds
from leadscore.training.report_tables import capacity_table
from leadscore.training.splits import time_split

# The account scorers compared on the test accounts (name -> what it is, for people).
ACCOUNT_SCORERS = {
    "model": "account model",
    "independent": "contacts as independent leads, 1 - prod(1 - p)",
    "best_contact": "best contact's lead probability",
    "rules": "points rules (best contact's points)",
    "oracle": "Bayes oracle (simulator)",
}


@dataclass
class AccountResult:
    scorer: AccountScorer  # the one that ships (its evaluated one attached when refit)
    stats: dict  # account snapshots: as_ofs, snapshots, positives, accounts, ...
    split: dict
    metrics: dict[str, dict]  # scorer -> evaluate(...) on the test accounts
    test: pd.DataFrame  # account_id, as_of, label, contacts, p_<scorer>, mql
    capacity: pd.DataFrame  # rules' MQL accounts vs as many top accounts by each scorer
    engaged: pd.DataFrame  # the most engaged open accounts at the data's end, scored
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """Figures for the CLI and MLflow: per scorer, test AUC, Brier and ECE."""
        return {
            name: {k: m[k] for k in ("roc_auc", "roc_auc_ci", "pr_auc", "brier", "ece")}
            for name, m in self.metrics.items()
        }


def account_features_used(spec: AccountSpec, excluded: list[str]) -> list[str]:
    """The account features a model may learn from: those the data supports, without the
    company columns the lead leakage audit excluded (nor their averages)."""
    bad = spec.unsupported()
    for column in excluded:
        bad |= {column, f"mean_{column}"}
        if column == spec.role_column:
            bad |= {spec.role_feature(v) for v in spec.role_levels}
    return [f for f in spec.names if f not in bad]


def _per_account(values: np.ndarray, row: np.ndarray, n: int, how: str) -> np.ndarray:
    if how == "independent":
        lose = np.zeros(n)
        np.add.at(lose, row, np.log1p(-np.clip(values, 0, 1 - 1e-12)))
        return -np.expm1(lose)
    out = np.full(n, -np.inf)
    np.maximum.at(out, row, values)
    return out


def _booster(x, y, features, categorical, params, rounds, valid=None):
    data = lgb.Dataset(
        x, y, feature_name=features,
        categorical_feature=[features.index(c) for c in categorical], free_raw_data=False,
    )  # fmt: skip
    if valid is None:
        return lgb.train(params, data, num_boost_round=rounds), rounds
    x_val, y_val, stop = valid
    booster = lgb.train(
        {**params, "metric": "binary_logloss"}, data, num_boost_round=rounds,
        valid_sets=[lgb.Dataset(x_val, y_val, reference=data)],
        callbacks=[lgb.early_stopping(stop, verbose=False)],
    )  # fmt: skip
    best = booster.best_iteration or booster.current_iteration()
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best)), best


def fit_accounts(
    dataset: Dataset,
    lead_scorer: LeadScorer,
    config: TrainConfig,
    *,
    excluded: list[str] = (),
    references: dict[str, Callable[[pd.DataFrame], np.ndarray]] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> AccountResult:
    """Build the account snapshots, fit, calibrate, test and refit the account model.

    Args:
        lead_scorer: the lead model of the same run (its evaluated model scores the test
            accounts' contacts for the comparisons; its rules, when packed, the points).
        excluded: lead features the leakage audit excluded (their company columns too).
        references: extra account scorers of the test frame (the simulator's oracle).
    """
    step = on_step or (lambda _: None)
    settings = config.accounts
    lead_spec = lead_scorer.spec
    if settings is None:
        raise LeadscoreError("accounts are switched off in the training config")
    role = settings.role_column
    if role is not None and role not in lead_spec.categorical:
        raise LeadscoreError(
            f"accounts.role_column {role!r}: not a text column of the leads' features "
            f"(text columns: {', '.join(lead_spec.categorical) or 'none'})"
        )
    spec = AccountSpec(lead_spec, role, role_levels(dataset, role))
    step("account snapshots")
    rows, stats = account_snapshot_rows(
        dataset, every_days=settings.every_days, horizon_days=lead_spec.horizon_days
    )
    if not len(rows.rows):
        raise LeadscoreError("accounts: no account snapshot has a matured horizon")
    df, contacts = account_frames(dataset, spec, rows)
    split = time_split(
        df, test_days=config.test_days, validation_days=config.validation_days,
        horizon_days=lead_spec.horizon_days,
    )  # fmt: skip
    features = account_features_used(spec, list(excluded))
    categorical = [f for f in features if f in spec.categorical_names]
    train, test = df[split.train], df[split.test]
    categories = {c: sorted(str(v) for v in train[c].dropna().unique()) for c in categorical}
    y = df["label"].to_numpy().astype(int)
    params, small = lightgbm_params(config, int(y[split.train].sum()))
    warnings = []
    if small:
        warnings.append(
            f"accounts: {int(y[split.train].sum())} winning account snapshots in train: the "
            "account model is regularised harder and its figures are uncertain"
        )
    x = encode_frame(df, features, categories)
    step("account model: LightGBM")
    booster, best = _booster(
        x[split.train], y[split.train], features, categorical, params,
        config.lightgbm.max_rounds,
        valid=(x[split.validation], y[split.validation], config.lightgbm.early_stopping_rounds),
    )  # fmt: skip
    calibration_config = config.model_copy(update={"segments": None})
    fitted = fit_calibration(
        booster.predict(x[split.validation], raw_score=True), y[split.validation],
        calibration_config,
    )  # fmt: skip
    info = {
        "interval_review_width": config.interval_review_width,
        "every_days": settings.every_days,
        "best_iteration": int(best),
        "validation_start": split.validation_start.isoformat(),
        "test_start": split.test_start.isoformat(),
        "stats": stats,
    }
    evaluated = AccountScorer(
        spec, booster, features, categories, fitted.calibrator, fitted.interval,
        lead_scorer.grades, info,
    )  # fmt: skip

    step("account model: test")
    test_rows = np.flatnonzero(split.test)
    out = test[[ACCOUNT_ID, "as_of", "label", "contacts"]].reset_index(drop=True)
    out["p_model"], low, high = evaluated.predict_interval(x[test_rows])
    # the interval on the test accounts (not a scorer: no p_ prefix)
    out["interval_low_model"], out["interval_high_model"] = low, high
    members = contacts["row"].isin(test_rows).to_numpy()
    member_rows = np.searchsorted(test_rows, contacts.loc[members, "row"].to_numpy())
    lead_p = lead_scorer.for_evaluation.score(
        lead_scorer.for_evaluation.frame_batch(contacts[members]), reasons=0
    ).probability
    out["p_independent"] = _per_account(lead_p, member_rows, len(test_rows), "independent")
    out["p_best_contact"] = _per_account(lead_p, member_rows, len(test_rows), "max")
    rules = lead_scorer.rules
    if rules is not None and hasattr(rules, "calibrator_"):
        inputs = batch_rule_inputs(
            rules.config, dataset, contacts.loc[members, "lead_id"], contacts.loc[members, "as_of"]
        )
        points, _, mql, rule_p = rules.score_columns(inputs)
        out["p_rules"] = _per_account(rule_p, member_rows, len(test_rows), "max")
        out["rule_points"] = _per_account(points.astype(float), member_rows, len(test_rows), "max")
        out["mql"] = _per_account(mql.astype(float), member_rows, len(test_rows), "max") > 0
    for name, fn in (references or {}).items():
        out[f"p_{name}"] = np.asarray(fn(out), dtype=np.float64)
    y_test = out["label"].to_numpy()
    metrics = {
        name.removeprefix("p_"): evaluate(
            y_test,
            out[name].to_numpy(),
            bootstrap=config.bootstrap,
            seed=config.seed,
            groups=out[ACCOUNT_ID].to_numpy(),
        )  # fmt: skip
        for name in out.columns
        if name.startswith("p_")
    }
    capacity = pd.DataFrame()
    if "mql" in out:
        table = out.assign(revenue=np.nan)
        rankings = {
            ACCOUNT_SCORERS.get(c.removeprefix("p_"), c): table[c].to_numpy()
            for c in out.columns
            if c.startswith("p_") and c not in ("p_rules", "p_oracle")
        }
        capacity = capacity_table(table, rankings, int(out["mql"].sum()))
        capacity = capacity.rename(
            columns={"handed to sales": "accounts handed to sales", "leads": "accounts"}
        ).drop(columns="revenue")

    scorer = evaluated
    if config.refit:
        step("account model: refit on every matured snapshot")
        scorer = _refit(
            df, x, y, split, evaluated, config, features, categorical, categories, params
        )
    step("account model: most engaged open accounts")
    engaged = most_engaged(dataset, scorer, lead_scorer, settings.top_accounts)
    return AccountResult(
        scorer=scorer,
        stats=stats,
        split=split.describe(df),
        metrics=metrics,
        test=out,
        capacity=capacity,
        engaged=engaged,
        warnings=warnings,
    )


def _refit(df, x, y, split, evaluated, config, features, categorical, categories, params):
    """The account model that ships: a booster on every matured snapshot (rounds scaled to
    the rows), calibrated on the last validation period scored by a booster trained on what
    had matured a horizon before it (out of time); the evaluated one attached."""
    as_of = df["as_of"]
    best = int(evaluated.info["best_iteration"])
    trained = int(split.train.sum())
    width = pd.Timedelta(days=config.validation_days)
    purge = pd.Timedelta(days=evaluated.spec.lead.horizon_days)
    start = as_of.max() - width
    window = (as_of > start).to_numpy()
    before = (as_of + purge <= start).to_numpy()
    fitted, how = None, "the evaluated model's (validation rows)"
    if window.any() and len(np.unique(y[before])) == 2 and len(np.unique(y[window])) == 2:
        rounds = scaled_rounds(best, int(before.sum()), trained, config.lightgbm.max_rounds)
        early, _ = _booster(x[before], y[before], features, categorical, params, rounds)
        fitted = fit_calibration(
            early.predict(x[window], raw_score=True), y[window],
            config.model_copy(update={"segments": None}),
        )  # fmt: skip
        how = f"a booster trained before {start.date()} on the rows after it"
    rounds = scaled_rounds(best, len(df), trained, config.lightgbm.max_rounds)
    booster, _ = _booster(x, y, features, categorical, params, rounds)
    info = {
        **evaluated.info,
        "shipped": {
            "rows": int(len(df)),
            "positives": int(y.sum()),
            "first_as_of": as_of.min().isoformat(),
            "last_as_of": as_of.max().isoformat(),
            "rounds": rounds,
            "calibrated_by": how,
        },
    }
    scorer = AccountScorer(
        evaluated.spec, booster, features, categories,
        fitted.calibrator if fitted else evaluated.calibrator,
        fitted.interval if fitted else evaluated.interval, evaluated.grades, info,
    )  # fmt: skip
    scorer.evaluated = evaluated
    return scorer


def most_engaged(
    dataset: Dataset, scorer: AccountScorer, lead_scorer: LeadScorer, top: int
) -> pd.DataFrame:
    """The `top` open accounts at the data's end with the most active contacts in the
    shortest window (then the most activities, then the id): who is engaged now, scored."""
    scored, _ = open_account_scores(dataset, scorer, dataset.data_end)
    w = scorer.spec.lead.windows_days[0]
    if scored.empty:
        return scored
    scored["positive"] = [
        "; ".join(r["text"] for r in item["positive"]) for item in scored.pop("reasons")
    ]
    return (
        scored.sort_values(
            [f"active_contacts_{w}d", "contacts", "account_id"], ascending=[False, False, True]
        )
        .head(top)
        .reset_index(drop=True)
    )


def account_metric_names(result: AccountResult) -> dict[str, float]:
    """The MLflow metrics of the account model: test figures per scorer."""
    out = {}
    for name, m in result.metrics.items():
        for key in ("roc_auc", "pr_auc", "brier", "ece"):
            out[f"account_test_{key}_{slug(name)}"] = float(m[key])
    out["account_snapshots"] = float(result.stats["snapshots"])
    out["account_positives"] = float(result.stats["positives"])
    return out


def account_tables(result: AccountResult) -> dict[str, pd.DataFrame]:
    """The report's account tables: `accounts` (per scorer on the test accounts),
    `account_capacity` and `account_engaged`."""
    y = result.test["label"].to_numpy()
    head = []
    for name, m in result.metrics.items():
        low, high = m["roc_auc_ci"]
        head.append(
            {
                "scorer": ACCOUNT_SCORERS.get(name, name),
                "ROC AUC [95% CI]": f"{m['roc_auc']:.3f} [{low:.3f}, {high:.3f}]",
                "PR AUC": round(m["pr_auc"], 3),
                "Brier": round(m["brier"], 4),
                "ECE": round(m["ece"], 4),
                "mean probability": float(result.test[f"p_{name}"].mean()),
                "win rate": float(y.mean()),
            }
        )
    engaged = result.engaged
    if len(engaged):
        w = [c for c in engaged.columns if c.startswith("active_contacts_")]
        engaged = engaged[
            ["account_id", "contacts", *w, "probability", "p_low", "p_high", "grade", "positive"]
        ].rename(columns={"positive": "why"})
    return {
        "accounts": pd.DataFrame(head),
        "account_capacity": result.capacity,
        "account_engaged": engaged,
    }
