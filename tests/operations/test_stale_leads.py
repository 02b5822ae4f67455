"""Old open leads are scored from what the history says of their age: the open pipeline's
expected wins agree with an age-only life table of the same history, in total and by age
band, on a CRM whose open pipeline is years old and on one younger than the age grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.crm.loading import load_dataset
from leadscore.crm.times import US_PER_DAY
from leadscore.features.batch import build_training_set
from leadscore.features.labels import Timeline, open_rows, snapshot_rows
from leadscore.operations.pipeline import past_trained_ages, score_pipeline
from leadscore.scoring.model_ref import ModelRef
from leadscore.training.fit import fit_models
from leadscore.training.refit import ship
from tests.training.conftest import FAST

BANDS = [0, 30, 90, 180, 365, 730, 1460, np.inf]


def stale_crm(folder: Path, *, n: int, years: float, seed: int) -> Path:
    """A CRM of `years` where most leads stay open for good and the win rate keeps falling
    with age for years: a lead wins at a log-normal time after its creation (median 200
    days, a tail of years) or never, some are lost early. Each lead has a form fill at its
    creation and a few visits; its source shifts its chance of ever winning."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2015-01-01", tz="UTC")
    end = years * 365.0
    created = np.sort(rng.uniform(0, end, n))
    source = rng.choice(["web", "partner", "event"], n, p=[0.5, 0.3, 0.2])
    wins = rng.random(n) < np.select([source == "web", source == "partner"], [0.3, 0.45], 0.6)
    win_at = created + np.exp(rng.normal(np.log(200.0), 2.0, n))
    lost = ~wins & (rng.random(n) < 0.3)
    lost_at = created + rng.exponential(60.0, n)

    def day(t):
        return start + pd.to_timedelta(np.asarray(t), unit="D")

    # A deal opens 5 days before it closes; at the export's end, a deal not closed yet is
    # open (no close date).
    closes_at = np.where(wins, win_at, np.where(lost, lost_at, np.inf))
    opened_at = np.maximum(created, closes_at - 5)
    has = np.flatnonzero(opened_at <= end)
    closed = closes_at[has] <= end
    deals = pd.DataFrame(
        {
            "deal_id": [f"D{i}" for i in has],
            "lead_id": [f"L{i}" for i in has],
            "created_at": day(opened_at[has]),
            "closed_at": pd.Series(day(np.where(closed, closes_at[has], 0))).where(closed),
            "status": np.where(closed, np.where(wins[has], "won", "lost"), "open"),
            "amount": 1000.0,
        }
    )
    visits = rng.poisson(2 + 2 * wins)
    lead = np.repeat(np.arange(n), visits)
    at = created[lead] + rng.exponential(20.0, len(lead))
    lead, at = (
        np.concatenate([np.arange(n), lead[at <= end]]),
        np.concatenate([created, at[at <= end]]),
    )
    activities = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in lead],
            "occurred_at": day(at),
            "activity_type": np.where(np.arange(len(lead)) < n, "form_fill", "page_view"),
        }
    )
    folder.mkdir(parents=True)
    pd.DataFrame(
        {"lead_id": [f"L{i}" for i in range(n)], "created_at": day(created), "source": source}
    ).to_csv(folder / "leads.csv", index=False)
    activities.to_csv(folder / "activities.csv", index=False)
    deals.to_csv(folder / "deals.csv", index=False)
    return folder


def life_table(dataset, ages_open: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per open lead, the win rate within 90 days of the history's leads of its age band,
    open at that age: a snapshot every 3 days of age for the first 90 days, then every 30,
    matured. And per open lead whether its band has such snapshots (a band the history never
    matured takes the oldest band's rate)."""
    timeline = Timeline.of_dataset(dataset)
    ages = list(np.arange(0.0, 90.0, 3.0)) + list(np.arange(90.0, 20 * 365.0, 30.0))
    snaps, _ = snapshot_rows(timeline, ages_days=ages, horizon_days=90, data_end=dataset.data_end)
    age = (snaps["as_of_us"] - snaps["created_us"]).to_numpy() / US_PER_DAY
    band = np.digitize(age, BANDS) - 1
    rate = pd.Series(snaps["label"].to_numpy(dtype=float)).groupby(band).mean()
    wanted = np.digitize(ages_open, BANDS) - 1
    covered = np.isin(wanted, rate.index)
    return rate.reindex(np.minimum(wanted, rate.index.max())).to_numpy(), covered


@pytest.mark.parametrize(
    ("years", "seed"),
    [(10.0, 1), (1.1, 3)],
    ids=["open-leads-years-old", "history-younger-than-the-age-grid"],
)
def test_expected_wins_of_old_open_leads_agree_with_the_life_table(years, seed, tmp_path):
    dataset = load_dataset(stale_crm(tmp_path / "crm", n=8_000, years=years, seed=seed))
    df, spec, _ = build_training_set(dataset)
    result = ship(fit_models(df, spec, FAST), df, FAST)
    scores = score_pipeline(dataset, result.scorer, ModelRef("m", "1"), reasons=False).frame

    rows = open_rows(Timeline.of_dataset(dataset), pd.Timestamp(dataset.data_end))
    age = (rows["as_of_us"] - rows["created_us"]).to_numpy() / US_PER_DAY
    p = scores["probability"].to_numpy()
    expected, covered = life_table(dataset, age)
    assert len(p) == len(age) > 1_000
    ratio = p.sum() / expected.sum()
    assert 0.8 <= ratio <= 1.25, ratio
    band = np.digitize(age, BANDS) - 1
    checked = []
    for b in np.unique(band[covered]):
        m = (band == b) & covered
        if expected[m].sum() >= 2:  # a band the history matured, with a couple of wins
            checked.append(BANDS[b])
            assert 0.67 <= p[m].sum() / expected[m].sum() <= 1.5, (
                BANDS[b],
                p[m].sum(),
                expected[m].sum(),
            )
    beyond = scores["beyond_trained_age"].to_numpy(dtype=bool)
    note = past_trained_ages(result.scorer, beyond, p)
    if years > 5:
        # the snapshot ages followed the open pipeline past the configured 730 days, and
        # the band of leads years old is held to the life table
        assert max(spec.snapshot_ages_days) > 730 and spec.spread_from_days is not None
        assert 1460 in checked and (age > 1460).sum() > 1_000
    else:
        # the history never matured the grid's oldest ages: the leads past the oldest age
        # the model learned from are flagged, and the run says so
        assert result.scorer.oldest_trained_age_days < 365
        assert beyond.sum() > 100
        assert f"{beyond.sum():,} open leads" in note and "expected wins" in note


def test_the_life_table_a_model_learns_from_ends_with_its_newest_row(tmp_path):
    """What matured after the rows a model learned from never reaches its calibration by
    age: the evaluated model's life table is the same whatever the later counts say."""
    from leadscore.features.batch import LIFE_TABLE

    dataset = load_dataset(stale_crm(tmp_path / "crm", n=3_000, years=6.0, seed=4))
    df, spec, _ = build_training_set(dataset)
    counts = json.loads(df.attrs[LIFE_TABLE])
    assert spec.spread_from_days is not None and sum(counts["rows"]) > 0
    first = fit_models(df, spec, FAST)
    newest = pd.Timestamp(df.loc[first.split.train, "as_of"].max())
    cut = (newest - pd.Timestamp(0, tz="UTC")).days  # the day of the newest row
    later = [i for i, day in enumerate(counts["as_of_day"]) if day >= cut]
    assert later  # the life table holds later days
    forged = {k: list(v) for k, v in counts.items()}
    for i in later:
        forged["wins"][i] = forged["rows"][i]  # every later snapshot "won"
    df.attrs[LIFE_TABLE] = json.dumps(forged)
    again = fit_models(df, spec, FAST)
    assert again.scorer.info["age_hazard"] == first.scorer.info["age_hazard"]
