"""Folded history (`leadscore.features.carried`): a lead's old activities as aggregates give the same
features and rule inputs as the rows themselves, at any as_of past the longest window."""

from __future__ import annotations

import numpy as np
import pytest

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.payloads import lead_payloads
from leadscore.crm.times import US_PER_DAY, to_us
from leadscore.features.carried import Carried


def _split(payload, cut_us, half_lives):
    """The payload with its activities before `cut_us` folded (reference: `cut_us`)."""
    old = [a for a in payload["activities"] if to_us(a["occurred_at"]) < cut_us]
    recent = [a for a in payload["activities"] if to_us(a["occurred_at"]) >= cut_us]
    carried = Carried(cut_us).fold(
        [a["activity_type"] for a in old], [to_us(a["occurred_at"]) for a in old], half_lives
    )
    return {**payload, "activities": recent}, carried, len(old)


@pytest.fixture(scope="module")
def scorer(trained, served_rules):
    s = trained.scorer.with_parts(rules=served_rules)
    return s


def test_folded_activities_score_as_the_rows_do(small_sim, scorer):
    ids = small_sim.leads["lead_id"].head(300).tolist()
    payloads = lead_payloads(small_sim, ids, iso=True)
    as_of = small_sim.data_end
    as_of_us = to_us(as_of)
    longest = max(scorer.spec.windows_days + [scorer.spec.active_days_window])
    half_lives = [scorer.spec.decay_half_life_days, scorer.rules.config.half_life_days]
    # folded at several cuts: the reference as late as allowed, and earlier ones
    for margin_days in (0, 3.5, 200):
        cut = as_of_us - int((longest + margin_days) * US_PER_DAY)
        split = [_split(p, cut, half_lives) for p in payloads]
        folded = sum(n for _, _, n in split)
        assert folded > 100  # the case has old activities to fold
        full = scorer.payload_batch(payloads, as_of)
        part = scorer.payload_batch(
            [p for p, _, _ in split], as_of, carried=[c for _, c, _ in split]
        )
        np.testing.assert_allclose(part.x, full.x, rtol=1e-12, equal_nan=True)
        for name, values in full.rules_x.items():
            if values.dtype == object:
                assert list(part.rules_x[name]) == list(values)
            else:
                np.testing.assert_allclose(part.rules_x[name], values, rtol=1e-12)
        a, b = scorer.score(full, reasons=0), scorer.score(part, reasons=0)
        np.testing.assert_allclose(b.probability, a.probability, rtol=1e-12)
        assert (b.rule_score == a.rule_score).all()


def test_folding_is_order_free_and_moves_forward():
    kinds, times = ["a", "b", "a", "a"], [10 * US_PER_DAY, 3 * US_PER_DAY, 1, 5 * US_PER_DAY]
    one = Carried(20 * US_PER_DAY).fold(kinds, times, [7])
    two = Carried(20 * US_PER_DAY).fold(kinds[::-1], times[::-1], [7])
    assert one.types["a"].n == 3 and one.types["a"].first_us == 1
    assert one.types["a"].last_us == 10 * US_PER_DAY
    np.testing.assert_allclose(
        one.sums_for(["a", "b"], 7, 30 * US_PER_DAY), two.sums_for(["a", "b"], 7, 30 * US_PER_DAY)
    )
    direct = sum(
        2.0 ** ((t - 30 * US_PER_DAY) / (7 * US_PER_DAY))
        for t, k in zip(times, kinds, strict=True)
        if k == "a"
    )
    moved = Carried.from_json(one.to_json()).moved_to(25 * US_PER_DAY)
    assert moved.sums_for(["a"], 7, 30 * US_PER_DAY)[0] == pytest.approx(direct, rel=1e-12)
    with pytest.raises(ValueError, match="forward"):
        moved.moved_to(24 * US_PER_DAY)
    with pytest.raises(ValueError, match="after the reference"):
        Carried(5).fold(["a"], [6], [7])


def test_a_half_life_not_kept_is_refused():
    c = Carried(100 * US_PER_DAY).fold(["a"], [US_PER_DAY], [7])
    with pytest.raises(LeadscoreError, match="half-lives of \\[7.0\\] days, not 14"):
        c.sums_for(["a"], 14, 200 * US_PER_DAY)


def test_a_lone_lead_with_only_folded_activities(small_sim, scorer):
    """One lead, every activity folded: the decayed sum lands in a float (NumPy's bincount
    of no weighted event gives integers, which once truncated it to 0)."""
    as_of = small_sim.data_end
    payloads = lead_payloads(small_sim, small_sim.leads["lead_id"].head(400).tolist(), iso=True)
    engaging = set(scorer.spec.activity_types) - set(scorer.spec.sales_touch_types)
    lead = next(
        p for p in payloads if sum(a["activity_type"] in engaging for a in p["activities"]) >= 3
    )
    newest = max(to_us(a["occurred_at"]) for a in lead["activities"])
    cut = newest + 1
    half_lives = [scorer.spec.decay_half_life_days, scorer.rules.config.half_life_days]
    rest, carried, n = _split(lead, cut, half_lives)
    assert n == len(lead["activities"]) and not rest["activities"]
    when = max(to_us(as_of), cut + int(100 * US_PER_DAY))
    iso = str(np.datetime64(when, "us")) + "Z"
    full = scorer.payload_batch([lead], iso).x
    part = scorer.payload_batch([rest], iso, carried=[carried]).x
    np.testing.assert_allclose(part, full, rtol=1e-12, equal_nan=True)
    assert full[0, scorer.features.index("engagement_decayed")] > 0
