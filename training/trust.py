"""When a model should not be trusted, say so first: the CLI, the report's headline and
the MLflow run's description all open with these lines.

Three signs that the data could not support a model, each with its number:
- fewer than `MIN_WON_LEADS` won leads in the train period;
- a near-empty booster (at most `MIN_TREES` trees: early stopping found nothing to learn);
- fewer than `MIN_DISTINCT_SCORES` distinct probabilities on the test rows (a coarse model
  cannot rank leads, and every lead lands in one or two grades).

And one sign that it is not worth deploying: its ROC AUC does not beat the rules' (the
paired difference's interval reaches 0 or below), in which case the rules should stay.
"""

from __future__ import annotations

import numpy as np

MIN_WON_LEADS = 100
MIN_TREES = 3
MIN_DISTINCT_SCORES = 20


def untrusted_model(
    train_won_leads: int,
    trees: int,
    test_probabilities: np.ndarray,
    *,
    learned_from: str = "the train period",
) -> list[str]:
    """Banner lines (empty when none applies); `learned_from` names the rows the counted
    won leads come from (the shipped model's: every matured snapshot)."""
    out = []
    if train_won_leads < MIN_WON_LEADS:
        out.append(
            f"too few wins to learn from: {train_won_leads} won leads in {learned_from} "
            f"(< {MIN_WON_LEADS}); treat the model's scores as rough"
        )
    if trees <= MIN_TREES:
        out.append(
            f"the model is nearly empty: {trees} tree{'s' if trees != 1 else ''} "
            "(training stopped at once: the features carry little the model could use)"
        )
    distinct = int(np.unique(np.round(np.asarray(test_probabilities, dtype=float), 6)).size)
    if distinct < MIN_DISTINCT_SCORES:
        out.append(
            f"the model barely ranks leads: {distinct} distinct probabilities on the test "
            f"rows (< {MIN_DISTINCT_SCORES})"
        )
    return out


def does_not_beat_rules(
    auc_difference: list[float], where: str = "here", metric: str = "ROC AUC"
) -> str | None:
    """The verdict line when the model's ROC AUC is not surely above the rules'
    (`auc_difference`: model minus rules, [estimate, low, high]; `where`: on which rows;
    `metric`: which ROC AUC, pooled or same-day)."""
    estimate, low, high = auc_difference
    if not np.isfinite(low) or low > 0:
        return None
    return (
        f"the model does not beat the points rules {where}: {metric} difference "
        f"{estimate:+.3f} [{low:+.3f}, {high:+.3f}] reaches 0; keep the rules"
    )
