"""Learned points: a points scorecard fitted on a split's train period and tuned on its
validation period (`leadscore.rules.scorecard.suggest_rules`).

One way to learn them, for `compare`, the walk-forward backtest and `rules suggest`: the
same data, model and settings give the same items and the same base points everywhere.
The rows are put in one canonical order (as_of, lead) before the seeded sample, so the
result does not depend on the order the training set came in. The columns are those the
model's leakage audit allowed; the base points are set so that the learned points hand
as many leads to sales as marketing's rules do (their MQL share), else 15 %.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from leadscore.crm.dataset import Dataset
from leadscore.rules.config import RulesConfig
from leadscore.rules.scorecard import Suggestion, suggest_rules
from leadscore.rules.scorer import RuleScorer, batch_rule_inputs
from leadscore.training.config import TrainConfig

# The share of leads at the MQL threshold when no rules say otherwise.
DEFAULT_MQL_SHARE = 0.15
# Never tune the base points to fewer MQLs than this share (a rules file that hands over
# almost nobody would give a scorecard with no MQL at all).
MIN_MQL_SHARE = 0.01


def learned_columns(dataset: Dataset, allowed: Iterable[str]) -> list[str]:
    """The profile columns (and `source`) learned points may use: those in `allowed` (the
    model's features, or what a leakage audit let through), in the dataset's order."""
    allowed = set(allowed)
    return [c for c in ("source", *dataset.profile_columns) if c in allowed]


def rules_mql_share(rules: RulesConfig | None, dataset: Dataset, rows: pd.DataFrame) -> float:
    """The share of `rows` (lead_id, as_of) at or above the rules' MQL threshold (at least
    `MIN_MQL_SHARE`); `DEFAULT_MQL_SHARE` without rules or rows."""
    if rules is None or not len(rows):
        return DEFAULT_MQL_SHARE
    scorer = RuleScorer(rules)
    x = batch_rule_inputs(rules, dataset, rows["lead_id"], rows["as_of"])
    return mql_share_of(scorer.mql(scorer.rule_scores(x)))


def mql_share_of(mql: np.ndarray) -> float:
    """The share of MQL flags that are set, at least `MIN_MQL_SHARE`."""
    return max(float(np.mean(mql)), MIN_MQL_SHARE) if len(mql) else DEFAULT_MQL_SHARE


def canonical(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows in one order, (as_of, lead), whatever order they came in."""
    return rows.sort_values(["as_of", "lead_id"], kind="stable")


def learn_points(
    dataset: Dataset,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    columns: list[str],
    config: TrainConfig,
    *,
    mql_share: float = DEFAULT_MQL_SHARE,
    max_rules: int = 30,
) -> Suggestion:
    """The learned points of a split (`train`, `validation`: rows with lead_id, as_of and
    label): at most `config.max_rows_baseline_and_audit` train rows, a seeded sample of
    them in canonical order, as the baseline and the audit see them."""
    train, validation = canonical(train), canonical(validation)
    cap = config.max_rows_baseline_and_audit
    if len(train) > cap:
        train = train.sample(cap, random_state=config.seed)
    return suggest_rules(
        dataset,
        train,
        validation,
        columns=columns,
        max_rules=max_rules,
        mql_share=mql_share,
        seed=config.seed,
    )
