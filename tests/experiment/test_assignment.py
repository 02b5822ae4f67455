"""The arm of a lead: stable, reproducible, balanced, and blind to the lead."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from scipy import stats

from leadscore.experiment.assignment import MODEL, RULES, arm_of, in_model_arm, units

IDS = [f"lead-{i}" for i in range(4000)]


def test_the_same_lead_gets_the_same_arm_in_another_process():
    here = [arm_of("exp-1", i, 0.5) for i in IDS[:50]]
    code = (
        "from leadscore.experiment.assignment import arm_of\n"
        "print(','.join(arm_of('exp-1', f'lead-{i}', 0.5) for i in range(50)))"
    )
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert there.split(",") == here  # no Python hash(), no random state
    assert set(here) == {RULES, MODEL}


def test_the_split_follows_the_share():
    for share in (0.5, 0.2):
        model = in_model_arm("exp-1", IDS, share)
        # binomial: within 4 standard deviations of the share
        assert abs(model.mean() - share) < 4 * np.sqrt(share * (1 - share) / len(IDS))
    u = units("exp-1", IDS)
    assert stats.kstest(u, "uniform").pvalue > 0.001


def test_each_experiment_keys_its_own_hash():
    a, b = in_model_arm("exp-1", IDS, 0.5), in_model_arm("exp-2", IDS, 0.5)
    agree = (a == b).mean()
    assert abs(agree - 0.5) < 4 * 0.5 / np.sqrt(len(IDS))  # independent arms, not the same
    long = "x" * 80
    assert not np.array_equal(in_model_arm(long, IDS, 0.5), in_model_arm(long + "y", IDS, 0.5))


def test_the_arm_is_independent_of_the_lead_s_attributes():
    """Leads sorted by any attribute (here a score and a source made from the id's
    position) land in the model arm at the same rate across the attribute's groups."""
    rng = np.random.default_rng(0)
    score = rng.random(len(IDS))
    source = rng.choice(["web", "partner", "event"], len(IDS))
    model = in_model_arm("exp-1", IDS, 0.5)
    table = [[(model & (source == s)).sum(), (~model & (source == s)).sum()] for s in set(source)]
    assert stats.chi2_contingency(table).pvalue > 0.001
    assert stats.mannwhitneyu(score[model], score[~model]).pvalue > 0.001
    # the arms do not depend on the order the leads come in
    order = rng.permutation(len(IDS))
    assert np.array_equal(in_model_arm("exp-1", [IDS[i] for i in order], 0.5), model[order])
