"""`TrainConfig`: splits, model and calibration settings (conf/train.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from leadscore.crm.contract import load_yaml_model
from leadscore.scoring.grades import Grades
from leadscore.scoring.model_ref import DEFAULT_MODEL_NAME


class LightGBMParams(BaseModel):
    """LightGBM's settings (under 200 positives in train, smaller trees and more L2 are used
    instead: see `small_data_positives`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    learning_rate: float = Field(0.05, gt=0, le=1, description="shrinkage per round")
    num_leaves: int = Field(31, ge=2, description="leaves per tree, at most")
    min_child_samples: int = Field(50, ge=1, description="snapshots per leaf, at least")
    feature_fraction: float = Field(0.8, gt=0, le=1, description="features sampled per tree")
    bagging_fraction: float = Field(0.8, gt=0, le=1, description="rows sampled per tree")
    lambda_l2: float = Field(1.0, ge=0, description="L2 regularisation of the leaf values")
    # Capped: TreeSHAP reasons cost grows with depth squared; on the simulator depth 6 keeps
    # the AUC (0.8405 vs 0.8403 unlimited) and serves reasons a third faster.
    max_depth: int = Field(
        6, ge=-1, description="tree depth, at most (-1: no limit; reasons cost grows with it)"
    )
    max_rounds: int = Field(2000, ge=1, description="boosting rounds, at most")
    early_stopping_rounds: int = Field(
        100, ge=1, description="stop when the validation log loss has not improved for this many"
    )
    num_threads: int = Field(0, ge=0, description="threads (0: LightGBM's default, all cores)")


class SegmentsConfig(BaseModel):
    """Segments of the business (product lines, regions, business units) that share one model
    but may convert differently: evaluated and calibrated each, shrunk toward the whole."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str = Field(
        min_length=1,
        description="the text profile column naming each lead's segment (e.g. product_line); "
        "the source column works too",
    )
    champions: bool = Field(
        False,
        description="also fit one model per segment; a segment is served by its own model "
        "only when that model is surely better than the shared one on the segment's test "
        "rows (the gate per segment), else by the shared one",
    )
    champion_min_wins: int = Field(
        50, ge=5, description="won leads a segment needs in its train rows for a model of its own"
    )


class AccountsConfig(BaseModel):
    """The account model (B2B buying groups), trained when the leads have an account_id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    every_days: float = Field(
        14.0, gt=0, le=365, description="days between two account snapshots (a calendar grid)"
    )
    role_column: str | None = Field(
        None,
        description="the text profile column of each contact's role (e.g. job_role): active "
        "contacts are counted per role, and reasons name the role of the most active contact",
    )
    top_accounts: int = Field(
        25, ge=1, le=1000, description="most engaged open accounts the report lists"
    )


class TrainConfig(BaseModel):
    """Everything `leadscore train` needs besides the data and the feature config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    test_days: float = Field(
        60.0, gt=0, description="most recent as_of period held out for the test"
    )
    validation_days: float = Field(
        60.0, gt=0, description="as_of period before the test, for early stopping and calibration"
    )
    lightgbm: LightGBMParams = Field(default_factory=LightGBMParams)
    logistic_c: float = Field(1.0, gt=0, description="inverse L2 strength of the logistic baseline")
    calibration: Literal["auto", "isotonic", "platt"] = Field(
        "auto",
        description="auto: isotonic or Platt, whichever has the lower cross-fitted log loss "
        "on the validation rows",
    )
    segments: SegmentsConfig | None = Field(
        None,
        description="per-segment calibration (shrunk toward the global one by each segment's "
        "evidence) and a per-segment evaluation and verdict in the report (null: none)",
    )
    accounts: AccountsConfig | None = Field(
        default_factory=AccountsConfig,
        description="account scores, learned at account level, when the leads have an "
        "account_id (null: never)",
    )
    interval_review_width: float | None = Field(
        0.25,
        gt=0,
        le=1,
        description="a lead whose Venn-Abers interval (p_high - p_low) is wider than this is "
        "flagged for review instead of handed off automatically (null: never)",
    )
    grade_cutoffs: Grades = Field(
        default_factory=Grades, description="probability cut-offs of grades A, B and C"
    )
    strong_auc: float = Field(
        0.80,
        gt=0.5,
        le=1.0,
        description="a feature reaching this AUC alone (below leakage_auc) is listed, not "
        "excluded: check it is known before the outcome",
    )
    leakage_auc: float = Field(
        0.95, gt=0.5, le=1.0, description="a feature reaching this AUC alone on train is excluded"
    )
    # A text feature with one value this many log-odds above the base rate and another this
    # many below (odds x12 and /12 at 2.5) settles the outcome both ways: flagged as leaky.
    leakage_log_odds: float = Field(
        2.5,
        gt=0,
        description="a text value this many log-odds from the base rate both ways is leaky",
    )
    # A profile column whose missing (or present) rows are this many log-odds from the base
    # rate (odds /33 or x33 at 3.5) is filled because of the outcome: flagged as leaky.
    leakage_missing_log_odds: float = Field(
        3.5,
        gt=0,
        description="a column whose blanks are this many log-odds from the base rate is leaky",
    )
    split: Literal["time", "random"] = Field(
        "time",
        description="random: leads assigned at random in the time split's proportions, only to "
        "measure how optimistic a random split is; a model to deploy is tested out of time",
    )
    bootstrap: int = Field(200, ge=0, description="resamples of leads for the 95 % intervals")
    # The baseline and the leakage audit see at most this many train rows (a seeded random
    # sample): a linear model and a single-feature AUC are saturated long before.
    max_rows_baseline_and_audit: int = Field(
        200_000, ge=1_000, description="train rows the baseline and the leakage audit see, at most"
    )
    # Past this many rows a booster learns from a sample by lead (leadscore.training.sampling): every
    # lead with a win, a share of the others weighted back; what is held out stays whole.
    max_fit_rows: int | None = Field(
        4_000_000,
        ge=1_000,
        description="rows a booster learns from, at most: past it, leads without a win are "
        "sampled and weighted back (null: never)",
    )
    small_data_positives: int = Field(
        200, ge=1, description="below this many positives in train, regularise harder"
    )
    seed: int = Field(0, description="seed of every random draw (samples, bootstrap, LightGBM)")
    backtest_origins: int = Field(
        4,
        ge=1,
        le=12,
        description="origins of the walk-forward backtest, each test_days before the next "
        "(fewer when the data is short, and it says so); 1: the single test window",
    )
    refit: bool = Field(
        True,
        description="ship a model refit on every matured snapshot after the evaluation "
        "(false: ship the evaluated model, whose newest example is a purge, a validation "
        "and a test period older)",
    )
    model_name: str = Field(DEFAULT_MODEL_NAME, description="the MLflow registered model")
    experiment: str = Field("leadscore", description="the MLflow experiment of training runs")


def load_train_config(path: str | Path | None) -> TrainConfig:
    if path is None:
        return TrainConfig()
    return load_yaml_model(path, TrainConfig, "training config")
