"""Fit the LightGBM scorer and the logistic baseline on an out-of-time split, and evaluate.

Pure: a training-set frame in, a `TrainResult` out. MLflow logging is `leadscore.training.tracking`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from leadscore.crm.dataset import Dataset
from leadscore.crm.errors import LeadscoreError
from leadscore.crm.times import days_us, to_us
from leadscore.features.batch import LIFE_TABLE
from leadscore.features.definitions import FeatureSpec
from leadscore.rules.config import RulesConfig
from leadscore.rules.scorer import RuleScorer, batch_rule_inputs
from leadscore.scoring.encoding import encode_frame
from leadscore.scoring.scorer import LeadScorer
from leadscore.stats.life_table import fit_age_hazard
from leadscore.stats.metrics import evaluate, point_metrics
from leadscore.training.calibration import fit_calibration, segment_column
from leadscore.training.config import TrainConfig
from leadscore.training.leakage import ALWAYS_EXCLUDED, LeakageReport, audit_training_set
from leadscore.training.sampling import fit_rows
from leadscore.training.splits import Split, split_training_set
from leadscore.training.trust import untrusted_model


@dataclass
class TrainResult:
    scorer: LeadScorer
    baseline: Pipeline
    split: Split
    leakage: LeakageReport
    metrics: dict[str, dict]  # scorer name -> evaluate(...) on the test rows
    by_age: pd.DataFrame  # test AUC per snapshot age, per scorer
    test: pd.DataFrame  # test rows: lead_id, as_of, label, and one probability column per scorer
    calibration: dict
    params: dict
    warnings: list[str] = field(default_factory=list)
    untrusted: list[str] = field(default_factory=list)  # banners: do not trust this model
    # The calibrated model on its own training and validation rows ("train", "validation"
    # -> roc_auc, pr_auc, brier, log_loss, ece), next to `metrics` (test): a gap shows
    # overfitting. The validation rows also fitted the calibrator, so they flatter it.
    fit_metrics: dict[str, dict] = field(default_factory=dict)
    # LightGBM's learning curve, one value per boosting round (also past the best round,
    # up to where early stopping ended): {"train"|"validation": {"binary_logloss"|"auc": [...]}}
    learning_curve: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    # What the shipped model learned from (`leadscore.training.refit.Shipped.to_dict`), when `scorer`
    # is the refit on every matured snapshot; None: `scorer` is the evaluated model itself.
    shipped: dict | None = None
    # The walk-forward backtest (`leadscore.training.backtest.Backtest`), when one was run.
    backtest: object | None = None
    # The account model (`leadscore.training.accounts.AccountResult`), when the leads have accounts.
    accounts: object | None = None
    # The per-segment gate (`leadscore.training.segment_champions.SegmentChampions`), when configured.
    segment_champions: object | None = None


def _text_categories(x: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as plain text with an explicit 'missing' level, for one-hot encoding."""
    return x.astype("object").where(x.notna(), "(missing)")


def fit_baseline(
    train: pd.DataFrame,
    categorical: list[str],
    numeric: list[str],
    c: float,
    seed: int,
    weights: np.ndarray | None = None,
) -> Pipeline:
    """Logistic regression on one-hot categoricals and scaled, imputed numerics (`weights`:
    the rows' weights when they are a sample by lead, `leadscore.training.sampling`)."""
    pre = ColumnTransformer(
        [
            (
                "cat",
                make_pipeline(
                    FunctionTransformer(_text_categories),
                    OneHotEncoder(handle_unknown="ignore", min_frequency=5),
                ),
                categorical,
            ),
            (
                "num",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                    StandardScaler(),
                ),
                numeric,
            ),
        ]
    )
    model = Pipeline(
        [("pre", pre), ("lr", LogisticRegression(C=c, max_iter=2000, random_state=seed))]
    )
    fit = {} if weights is None else {"lr__sample_weight": weights}
    return model.fit(train[categorical + numeric], train["label"].to_numpy(), **fit)


def lightgbm_params(config: TrainConfig, train_positives: int) -> tuple[dict, bool]:
    """LightGBM parameters; heavier regularisation when the positives are few."""
    p = config.lightgbm
    params = {
        "objective": "binary",
        "learning_rate": p.learning_rate,
        "num_leaves": p.num_leaves,
        "max_depth": p.max_depth,
        "min_child_samples": p.min_child_samples,
        "feature_fraction": p.feature_fraction,
        "bagging_fraction": p.bagging_fraction,
        "bagging_freq": 1,
        "lambda_l2": p.lambda_l2,
        "max_cat_to_onehot": 8,
        "cat_smooth": 20,
        "verbose": -1,
        "seed": config.seed,
        "deterministic": True,
        "num_threads": p.num_threads,
    }
    small = train_positives < config.small_data_positives
    if small:
        params.update(
            num_leaves=min(p.num_leaves, 7),
            min_child_samples=max(p.min_child_samples, 20),
            lambda_l2=max(p.lambda_l2, 10.0),
            feature_fraction=min(p.feature_fraction, 0.7),
            min_data_per_group=50,
        )
    return params, small


def fit_models(
    df: pd.DataFrame,
    spec: FeatureSpec,
    config: TrainConfig,
    *,
    declared_leaky: list[str] = (),
    keep_columns: list[str] = (),
    allow_leaky: bool = False,
    references: dict[str, Callable[[pd.DataFrame], np.ndarray]] | None = None,
    info: dict | None = None,
    on_step: Callable[[str], None] | None = None,
) -> TrainResult:
    """Split, audit, fit, calibrate on validation, evaluate on test.

    Args:
        df: a training set (`leadscore.features.batch.build_training_set`).
        declared_leaky, keep_columns: dataset.yaml's `columns.leaky` and `columns.keep`.
        references: extra scorers evaluated on the same test rows (e.g. the simulator's
            Bayes oracle), each a function of the test frame.
        on_step: told what is being done now (a progress display), e.g. "LightGBM round 40".
    """
    step = on_step or (lambda _: None)
    warnings: list[str] = []
    split = split_training_set(df, spec, config)
    # Past max_fit_rows, the booster learns from a sample by lead (leadscore.training.sampling); the
    # validation and test rows stay whole.
    chosen = fit_rows(
        df["lead_id"], df["label"].to_numpy(), np.flatnonzero(split.train),
        config.max_fit_rows, config.seed,
    )  # fmt: skip
    train = df.iloc[chosen.rows]
    val, test = df[split.validation], df[split.test]
    if chosen.sampled:
        warnings.append(chosen.note(int(split.train.sum())))

    cap = config.max_rows_baseline_and_audit
    sample = train if len(train) <= cap else train.sample(cap, random_state=config.seed)
    step("leakage audit")
    leakage = audit_training_set(
        train, spec, config, declared=declared_leaky, keep=keep_columns, allow_leaky=allow_leaky
    )
    warnings += [
        w
        + (
            ""
            if allow_leaky or w.endswith(ALWAYS_EXCLUDED)
            else ": excluded (--allow-leaky keeps it)"
        )
        for w in leakage.warnings()
    ]
    if leakage.strong_notice():
        warnings.append(leakage.strong_notice())
    unsupported = spec.unsupported_features
    if unsupported:
        reasons = sorted(set(unsupported.values()))
        warnings.append(
            f"{'; '.join(reasons)}: {len(unsupported)} behaviour features left out "
            f"({', '.join(list(unsupported)[:4])}{', ...' if len(unsupported) > 4 else ''})"
        )
    features = [f for f in spec.feature_names if f not in leakage.excluded and f not in unsupported]
    if not features:
        raise LeadscoreError(
            "every feature was excluded by the leakage audit; nothing is left to learn from"
        )
    # A segment column that cannot be used is the config's mistake: said before any fitting.
    column = segment_column(config, spec, leakage.excluded)
    categorical = [f for f in features if f in spec.categorical]
    numeric = [f for f in features if f not in spec.categorical]
    categories = {c: sorted(str(v) for v in train[c].dropna().unique()) for c in categorical}

    params, small = lightgbm_params(config, int(train["label"].sum()))
    if small:
        warnings.append(
            f"thin data: {int(train['label'].sum())} positives in train (< {config.small_data_positives}); "
            "the model is regularised harder and its metrics are uncertain (see the intervals)"
        )
    x_train = encode_frame(train, features, categories)
    x_val = encode_frame(val, features, categories)
    cat_idx = [features.index(c) for c in categorical]
    dtrain = lgb.Dataset(
        x_train,
        train["label"].to_numpy(),
        weight=chosen.weights,
        feature_name=features,
        categorical_feature=cat_idx,
        free_raw_data=False,
    )
    dval = lgb.Dataset(x_val, val["label"].to_numpy(), reference=dtrain)
    curve: dict = {}
    booster = lgb.train(
        # Log loss first: early stopping watches it alone on the validation rows (LightGBM
        # never stops on the training rows); AUC is recorded for the learning curve.
        {**params, "metric": ["binary_logloss", "auc"]},
        dtrain,
        num_boost_round=config.lightgbm.max_rounds,
        valid_sets=[dtrain, dval],
        valid_names=["train", "validation"],
        callbacks=[
            lgb.early_stopping(
                config.lightgbm.early_stopping_rounds, first_metric_only=True, verbose=False
            ),
            lgb.record_evaluation(curve),
            lambda env: step(f"LightGBM round {env.iteration + 1}"),
        ],
    )
    best = booster.best_iteration or booster.current_iteration()
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))

    step("calibration")
    y_val = val["label"].to_numpy().astype(int)
    raw_val = booster.predict(x_val, raw_score=True)
    fitted = fit_calibration(raw_val, y_val, config, val[column] if column else None)
    calibrator, losses = fitted.calibrator, fitted.losses
    grades = config.grade_cutoffs
    scorer = LeadScorer(
        spec,
        booster,
        features,
        categories,
        calibrator,
        grades,
        info={
            **(info or {}),
            "best_iteration": int(best),
            "interval_review_width": config.interval_review_width,
            # The periods and settings it was trained with: `compare` on this model splits
            # the data the same way unless told otherwise.
            "train_config": config.model_dump(mode="json", by_alias=True),
            "leakage": leakage.to_dict(),
            # When the model's knowledge ends: monitoring compares today's pipeline with
            # the pipeline at validation_start (the last the training rows describe).
            "validation_start": split.validation_start.isoformat(),
            "test_start": split.test_start.isoformat(),
            "test_end": pd.Timestamp(test["as_of"].max()).isoformat() if len(test) else None,
            # The life table of what it learned from, and the calibration by age against
            # it (leadscore.stats.life_table).
            **age_hazard_info(
                train,
                fitted.probability(
                    booster.predict(x_train, raw_score=True), train[column] if column else None
                ),
                spec,
                chosen.weights,
            ),
        },
        interval=fitted.interval,
        segments=fitted.segments,
    )

    step("logistic baseline")
    sample_weights = None
    if chosen.sampled and train.index.is_unique:  # the booster's weighted sample, weighted
        weight_of = pd.Series(chosen.weights, index=train.index)
        sample_weights = weight_of.loc[sample.index].to_numpy()
    baseline = fit_baseline(
        sample, categorical, numeric, config.logistic_c, config.seed, sample_weights
    )

    y_test = test["label"].to_numpy().astype(int)
    record = scorer.score(scorer.frame_batch(test), reasons=0)
    scores = {
        "model": record.probability,
        "logistic": baseline.predict_proba(test[categorical + numeric])[:, 1],
    }
    if "age_hazard" in scorer.info:
        # Lead age alone (the life table of the train rows): how much of a ranking over
        # snapshots of every age is the age mix, and how much is the model's skill.
        scores["lead_age"] = scorer.age_hazard.rate(test["lead_age_days"].to_numpy(dtype=float))
    for name, fn in (references or {}).items():
        scores[name] = np.asarray(fn(test), dtype=np.float64)
    step(f"test metrics ({config.bootstrap} bootstrap draws)")
    metrics = {
        name: evaluate(
            y_test,
            p,
            bootstrap=config.bootstrap,
            seed=config.seed,
            groups=test["lead_id"].to_numpy(),
        )
        for name, p in scores.items()
    }

    untrusted = untrusted_model(
        int(train.loc[train["label"] == 1, "lead_id"].nunique()),
        booster.num_trees(),
        scores["model"],
    )
    scorer.info["untrusted"] = untrusted
    out = test[["lead_id", "as_of", "label"]].copy()
    for name, p in scores.items():
        out[f"p_{name}"] = p
    # the model's interval on the test rows, for the MLflow run (not a scorer: no p_ prefix)
    if record.p_low is not None:
        out["interval_low_model"], out["interval_high_model"] = record.p_low, record.p_high
        out["review_model"] = record.review
    by_age = _auc_by_age(test, y_test, scores, spec)
    return TrainResult(
        scorer=scorer,
        baseline=baseline,
        split=split,
        leakage=leakage,
        metrics=metrics,
        by_age=by_age,
        test=out.reset_index(drop=True),
        calibration={"method": calibrator.method, "cross_fitted_log_loss": losses},
        params={
            **params,
            "best_iteration": int(best),
            "features_used": len(features),
            "fit_rows": len(chosen.rows),
            "fit_rate_of_leads_without_a_win": chosen.rate,
        },
        warnings=warnings,
        untrusted=untrusted,
        fit_metrics={
            "train": point_metrics(
                train["label"].to_numpy(),
                scorer.score(scorer.frame_batch(train), reasons=0).probability,
            ),
            "validation": point_metrics(
                y_val, scorer.score(scorer.frame_batch(val), reasons=0).probability
            ),
        },
        learning_curve={
            name: {metric: [float(v) for v in values] for metric, values in by_metric.items()}
            for name, by_metric in curve.items()
        },
    )


def age_hazard_info(
    rows: pd.DataFrame,
    probability: np.ndarray,
    spec: FeatureSpec,
    weights: np.ndarray | None = None,
) -> dict:
    """`{"age_hazard": ...}`: the life table of the matured snapshots a model learned from
    (`rows`, weighted when they are a weighted sample) with its calibrated `probability` of
    each (`leadscore.stats.life_table`); nothing for rows without a lead age (a flat export).
    The bands of ages count the training set's own life table (`LIFE_TABLE` of its attrs),
    up to the newest of `rows`: nothing that matured later."""
    if "lead_age_days" not in rows or not len(rows):
        return {}
    dense = None
    stored = rows.attrs.get(LIFE_TABLE)
    counts = pd.DataFrame(json.loads(stored) if stored else {})
    if len(counts):
        # whole days before the newest row's: nothing of a later time
        newest = to_us(pd.Timestamp(rows["as_of"].max())) // days_us(1)
        known = counts[counts["as_of_day"] < newest].groupby("band")[["rows", "wins"]].sum()
        dense = {float(b): (float(r.rows), float(r.wins)) for b, r in known.iterrows()}
    hazard = fit_age_hazard(
        rows["lead_age_days"].to_numpy(dtype=np.float64),
        rows["label"].to_numpy(),
        probability,
        spec.snapshot_ages_days,
        weights,
        dense,
    )
    return {"age_hazard": hazard.to_dict()}


def _auc_by_age(
    test: pd.DataFrame, y: np.ndarray, scores: dict[str, np.ndarray], spec: FeatureSpec
) -> pd.DataFrame:
    if not spec.history:
        return pd.DataFrame()
    age = test["lead_age_days"].to_numpy(dtype=np.float64)
    starts = np.asarray(spec.snapshot_ages_days, dtype=np.float64)
    band = np.searchsorted(starts, age + 1e-6, side="right") - 1  # an age, or a band of ages
    rows = []
    for k, a in enumerate(starts):
        m = band == k
        if m.sum() >= 20 and 0 < y[m].sum() < m.sum():
            rows.append(
                {
                    "age_days": a,
                    "rows": int(m.sum()),
                    **{name: float(roc_auc_score(y[m], p[m])) for name, p in scores.items()},
                }
            )
    return pd.DataFrame(rows)


def fit_rules(rules: RulesConfig, dataset: Dataset, validation: pd.DataFrame) -> RuleScorer:
    """Marketing's points rules with their points -> probability calibration fitted on the
    validation rows (the model's calibration rows), so that rules and model are compared on
    calibration too and the endpoint serves the rules' probability next to the model's."""
    if validation["label"].nunique() < 2:
        raise LeadscoreError(
            "the validation period needs won and not-won leads to calibrate the rules"
        )
    scorer = RuleScorer(rules)
    inputs = batch_rule_inputs(rules, dataset, validation["lead_id"], validation["as_of"])
    return scorer.fit(inputs, validation["label"].to_numpy())
