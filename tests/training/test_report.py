"""The marketing report: every section is there, offline, and its numbers are the CSV's."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from leadscore.crm.errors import ConfigError, LeadscoreError
from leadscore.features.batch import build_training_set
from leadscore.rules.config import RulesConfig, load_rules
from leadscore.training.fit import fit_models
from leadscore.training.report import compare
from leadscore.training.report_page import write_report
from tests.training.conftest import FAST

SECTIONS = [
    "headline",
    "summary",
    "grades",
    "gains",
    "capacity",
    "quadrants",
    "calibration",
    "distributions",
    "sources",
    "funnel",
    "speed",
    "learned",
    "export",
]


@pytest.fixture(scope="module")
def comparison(small_sim, small_set, trained):
    return compare(
        small_sim,
        trained.scorer,
        load_rules("conf/rules.yaml"),
        FAST,
        training_set=small_set[0],
        bootstrap=40,
    )


@pytest.fixture(scope="module")
def written(comparison, tmp_path_factory):
    html_path, csv_path = write_report(comparison, tmp_path_factory.mktemp("r") / "compare.html")
    return html_path.read_text(), pd.read_csv(csv_path)


class _Tables(HTMLParser):
    """Tables by their data-section attribute, as lists of text rows."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._current, self._cell = None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._current = self.tables.setdefault(dict(attrs).get("data-section", ""), [])
        elif tag == "tr" and self._current is not None:
            self._current.append([])
        elif tag in ("td", "th") and self._current is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._current[-1].append(self._cell.strip())
            self._cell = None
        elif tag == "table":
            self._current = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _table(html: str, section: str) -> pd.DataFrame:
    parser = _Tables()
    parser.feed(html)
    head, *rows = parser.tables[section]
    return pd.DataFrame(rows, columns=head)


def _num(text: str) -> float:
    text = text.replace(",", "")
    return float(text[:-1]) / 100 if text.endswith("%") else float(text)


def test_every_section_is_there_and_the_page_is_self_contained(written):
    html, _ = written
    assert " a isotonic " not in html and " a auto " not in html  # "an isotonic"
    for section in SECTIONS:
        assert f"id='{section}'" in html, section
    assert html.count("<svg") == 4  # gains, lift, calibration, distributions
    lowered = html.lower()
    for external in ("<script", "<link", "@import", "src=", "url(http", "@font-face"):
        assert external not in lowered, external
    # the only URLs are XML namespaces and the SVG generator's metadata, never fetched
    for url in re.findall(r"https?://[^\s\"'<>)]+", html):
        assert url.startswith(
            (
                "http://www.w3.org/",
                "http://purl.org/",
                "http://creativecommons.org/",
                "https://matplotlib.org",
            )
        ), url


def test_csv_has_the_promised_columns(written, comparison):
    _, rows = written
    for col in (
        "lead_id",
        "as_of",
        "probability",
        "grade",
        "rule_score",
        "rule_grade",
        "mql",
        "label",
    ):
        assert col in rows.columns
    assert len(rows) == comparison.meta["test_rows"]
    assert rows["mql"].equals(rows["rule_score"] >= 75)
    assert set(rows["grade"]) <= set("ABCD") and set(rows["rule_grade"]) <= set("ABCD")


def test_headline_numbers_match_a_direct_computation_on_the_csv(written):
    html, rows = written
    table = _table(html, "headline").set_index("scorer")
    y = rows["label"].to_numpy()
    expected = {
        "Model (LightGBM)": (rows["probability"], rows["probability"]),
        "Points rules": (rows["rule_score"], rows["rule_probability"]),
        "Learned points": (rows["learned_score"], rows["learned_probability"]),
        "Lead age alone": (rows["lead_age_probability"], rows["lead_age_probability"]),
    }
    days = pd.to_datetime(rows["as_of"], utc=True).dt.strftime("%Y-%m-%d").to_numpy()
    for name, (ranking, p) in expected.items():
        cells = table.loc[name]
        auc, low, high = map(float, re.findall(r"[\d.]+", cells["pooled ROC AUC [95% CI]"]))
        assert auc == pytest.approx(roc_auc_score(y, ranking), abs=5e-4)
        assert low <= auc <= high
        # among the leads open on the same day: each day's ROC AUC, weighted by its wins
        same_day, weights = [], []
        for day in np.unique(days):
            on = days == day
            if 0 < y[on].sum() < on.sum():
                same_day.append(roc_auc_score(y[on], np.asarray(ranking)[on]))
                weights.append(y[on].sum())
        auc, low, high = map(float, re.findall(r"[\d.]+", cells["same-day ROC AUC [95% CI]"]))
        assert auc == pytest.approx(np.average(same_day, weights=weights), abs=5e-4)
        assert low <= auc <= high
        pr = float(cells["PR AUC [95% CI]"].split()[0])
        assert pr == pytest.approx(average_precision_score(y, ranking), abs=5e-4)
        brier = float(cells["Brier [95% CI]"].split()[0])
        assert brier == pytest.approx(np.mean((p - y) ** 2), abs=5e-5)
        k = int(np.ceil(len(y) / 10))
        lift = float(cells["lift top 10% [95% CI]"].split()[0])
        assert lift == pytest.approx(_expected_top_wins(y, ranking, k) / k / y.mean(), abs=5e-3)
    model_auc = float(table.loc["Model (LightGBM)", "pooled ROC AUC [95% CI]"].split()[0])
    rules_auc = float(table.loc["Points rules", "pooled ROC AUC [95% CI]"].split()[0])
    assert model_auc > rules_auc  # on the simulator the model must beat a points sheet


def _expected_top_wins(y, score, k: int) -> float:
    """Wins among the top k by score, averaged over every order of the rows tied at the
    cut: rows above it count fully, the tied rows share the places left."""
    score = np.asarray(score, dtype=float)
    cut = np.sort(score)[::-1][k - 1]
    above, tied = score > cut, score == cut
    return float(y[above].sum() + (k - above.sum()) * y[tied].mean())


@pytest.mark.parametrize(
    "suffix, top_column, open_deals",
    [("", "model_top_n", False), ("_all", "model_top_n_all", True)],
)
def test_capacity_matched_and_quadrants_match_the_csv(written, suffix, top_column, open_deals):
    """First on the rows without an open deal (the hand-off decision), then on every row."""
    html, rows = written
    assert rows["open_deal"].any() and not rows["open_deal"].all()
    part = rows if open_deals else rows[~rows["open_deal"]]
    y, revenue = part["label"].to_numpy(), part["revenue"].to_numpy()
    n = int(part["mql"].sum())
    assert n > 0
    top = part[top_column].to_numpy()  # each row's share of the model's top n
    assert top.sum() == pytest.approx(n) and ((top >= 0) & (top <= 1)).all()
    if not open_deals:
        assert (rows.loc[rows["open_deal"], top_column] == 0).all()
    p = part["probability"].to_numpy()
    # the hand-off decision is matched day by day: on each day, the model's top as many
    # leads open that day as the rules' MQLs of that day; every row, pooled over the window
    days = (
        pd.to_datetime(part["as_of"], utc=True).dt.strftime("%Y-%m-%d").to_numpy()
        if not open_deals
        else np.zeros(len(part))
    )
    expected_wins = 0.0
    for day in np.unique(days):
        on = days == day
        k, t, q = int(part["mql"].to_numpy()[on].sum()), top[on], p[on]
        assert t.sum() == pytest.approx(k)
        if k:
            assert (t[q > q[t > 0].min()] == 1).all() and (t[q < q[t > 0].min()] == 0).all()
            expected_wins += _expected_top_wins(y[on], q, k)
    cap = _table(html, "capacity" + suffix).set_index("handed to sales")
    rules_row = cap.loc["rules (score >= threshold)"]
    label = f"model (top {n:,})" if open_deals else f"model (top {n:,}, matched day by day)"
    model_row = cap.loc[label]
    assert _num(rules_row["leads"]) == n == _num(model_row["leads"])
    assert _num(rules_row["wins"]) == y[part["mql"]].sum()
    assert _num(model_row["wins"]) == pytest.approx(expected_wins, abs=0.05)
    assert _num(model_row["revenue"]) == pytest.approx(revenue @ top, abs=1)
    assert _num(model_row["win rate"]) == pytest.approx(y @ top / n, abs=5e-4)
    quads = _table(html, "quadrants" + suffix).set_index("quadrant")
    mql = part["mql"].to_numpy()
    for label, share in {
        "rules MQL and model top-N": mql * top,
        "model top-N only": top * ~mql,
        "rules MQL only": mql * (1 - top),
        "neither": ~mql * (1 - top),
    }.items():
        assert _num(quads.loc[label, "leads"]) == pytest.approx(share.sum(), abs=0.05)
        assert _num(quads.loc[label, "wins"]) == pytest.approx(y @ share, abs=0.05)
    # examples with reasons from both sides
    assert "model, up:" in html and "rules: " in html


def test_per_source_table_matches_the_csv(written):
    html, rows = written
    table = _table(html, "sources").set_index("source")
    g = rows.groupby("source")
    assert set(table.index) == set(g.groups)
    for source, part in g:
        row = table.loc[source]
        assert _num(row["rows"]) == len(part)
        assert _num(row["leads"]) == part["lead_id"].nunique()
        assert _num(row["mqls"]) == part["mql"].sum()
        assert _num(row["opportunities"]) == part["opportunity"].sum()
        assert _num(row["wins"]) == part["label"].sum()
        assert _num(row["revenue"]) == pytest.approx(part["revenue"].sum(), abs=1)
        assert _num(row["mean probability"]) == pytest.approx(part["probability"].mean(), abs=5e-4)
        assert _num(row["mean rule score"]) == pytest.approx(part["rule_score"].mean(), abs=5e-4)


def test_funnel_and_revenue_follow_the_deals(written, small_sim):
    html, rows = written
    funnel = _table(html, "funnel").set_index("source")
    per_lead = rows.groupby("lead_id").agg(mql=("mql", "max"), won=("label", "max"))
    assert _num(funnel.loc["all sources", "leads"]) == len(per_lead)
    assert _num(funnel.loc["all sources", "lead to mql"]) == pytest.approx(
        per_lead["mql"].mean(), abs=5e-4
    )
    assert _num(funnel.loc["all sources", "lead to won"]) == pytest.approx(
        per_lead["won"].mean(), abs=5e-4
    )
    # revenue: exactly the won deals closed in (as_of, as_of + 90 d], from the deals table
    deals = small_sim.deals
    won = deals[deals["status"] == "won"][["lead_id", "closed_at", "amount"]]
    some = rows[rows["label"] == 1].head(30)
    for r in some.itertuples():
        at = pd.Timestamp(r.as_of)
        hit = won[
            (won["lead_id"] == r.lead_id)
            & (won["closed_at"] > at)
            & (won["closed_at"] <= at + pd.Timedelta(days=90))
        ]
        assert r.revenue == pytest.approx(hit["amount"].sum())
    assert (rows.loc[rows["label"] == 0, "revenue"] == 0).all()


def test_thin_data_is_a_warning_in_the_report_not_a_failure(tmp_path, trained):
    from leadscore.crm.loading import load_dataset
    from leadscore.simulation import SimulationConfig, simulate

    simulate(SimulationConfig(n_leads=700, seed=5), tmp_path / "tiny")
    comp = compare(
        load_dataset(tmp_path / "tiny"),
        trained.scorer,
        load_rules("conf/rules.yaml"),
        FAST,
        bootstrap=20,
        learned=False,
    )
    assert comp.meta["test_positives"] < 100
    html_path, _ = write_report(comp, tmp_path / "tiny.html")
    html = html_path.read_text()
    assert "thin data" in html and "class='warn'" in html
    assert "id='learned'" not in html  # asked not to fit learned points


def test_rules_that_do_not_fit_the_data_are_an_error(small_sim, small_set, trained):
    rules = RulesConfig.model_validate({"activities": {"webinar_attended": 5}})
    with pytest.raises(ConfigError, match="webinar_attended: unknown activity type"):
        compare(small_sim, trained.scorer, rules, FAST, training_set=small_set[0], learned=False)


def test_report_path_must_be_html_and_nothing_is_written(comparison, tmp_path):
    with pytest.raises(LeadscoreError, match="ending in .html"):
        write_report(comparison, tmp_path / "report.pdf")
    assert list(tmp_path.iterdir()) == []


def test_every_table_is_the_same_when_the_rows_come_in_another_order(
    small_sim, small_set, trained, comparison
):
    """Shuffled training-set rows: byte-identical tables (ties share credit, the bootstrap
    draws leads by id, examples break ties by lead and time)."""
    from leadscore.training.report_page import render_html

    shuffled = small_set[0].sample(frac=1.0, random_state=5)
    again = compare(
        small_sim,
        trained.scorer,
        load_rules("conf/rules.yaml"),
        FAST,
        training_set=shuffled,
        bootstrap=40,
    )
    parser_a, parser_b = _Tables(), _Tables()
    parser_a.feed(render_html(comparison, "compare.csv"))
    parser_b.feed(render_html(again, "compare.csv"))
    assert parser_a.tables == parser_b.tables
    assert comparison.examples == again.examples


def test_without_rules_the_report_is_model_vs_learned_points_and_says_why(
    small_sim, small_set, trained, tmp_path
):
    comp = compare(
        small_sim,
        trained.scorer,
        None,
        FAST,
        training_set=small_set[0],
        bootstrap=20,
        rules_absent="conf/rules.yaml does not fit this data (profile.job_role: no such column)",
    )
    assert list(comp.headline["scorer"]) == ["model", "learned", "lead_age"]
    assert comp.capacity.empty and comp.rule_scorer is None and not comp.differences
    assert comp.warnings[0].startswith("points rules absent: conf/rules.yaml does not fit")
    html_path, csv_path = write_report(comp, tmp_path / "compare.html")
    page = html_path.read_text()
    assert "No points rules, so no hand-off to match" in page and "rules init" in page
    assert "There are no points rules to compare with" in page
    assert "rule_score" not in pd.read_csv(csv_path).columns
    funnel = _table(page, "funnel")
    assert set(funnel["lead to mql"]) == {"–"}  # no rules: no MQL stage


def test_a_stage_the_data_does_not_have_is_a_dash_with_a_note(small_sim):
    from dataclasses import replace

    from leadscore.training.report_tables import funnel_table as _funnel
    from leadscore.training.report_tables import opportunity_stage_absent

    assert opportunity_stage_absent(small_sim) is None
    only_won = replace(small_sim, deals=small_sim.deals[small_sim.deals["status"] == "won"])
    assert "every deal in the data is won" in opportunity_stage_absent(only_won)
    at_close = small_sim.deals.assign(created_at=small_sim.deals["closed_at"])
    at_close = at_close[at_close["status"] != "open"]
    assert "created when they close" in opportunity_stage_absent(replace(small_sim, deals=at_close))
    rows = pd.DataFrame(
        {"lead_id": ["a", "b"], "source": ["web", "web"], "mql": [True, False],
         "opportunity": [False, False], "label": [1, 0]}
    )  # fmt: skip
    table = _funnel(rows, opportunity_stage_absent(only_won) is None)
    assert table["opportunity_to_won"].isna().all() and table["mql_to_opportunity"].isna().all()
    assert table["lead_to_won"].iloc[0] == 0.5


def test_the_page_opens_with_a_summary_in_words(written, comparison):
    html, _ = written
    assert html.index("id='summary'") < html.index("id='headline'")
    lead = html[html.index("id='summary'") : html.index("</b>")]
    head = comparison.headline.set_index("scorer")
    # the decision, and the numbers behind it (the headline's)
    assert "Use the model" in lead or "Keep the points rules" in lead
    assert f"{head.loc['model', 'roc_auc']:.3f}" in lead
    assert f"{head.loc['rules', 'roc_auc']:.3f}" in lead
    assert "grade A holds" in html
    # What the calibration allows, in words (leadscore.training.report_page.calibration_sentence).
    assert (
        "read as win rates" in html
        or "read the scores as a ranking" in html
        or ("as a ranking more than" in html)
    )


def test_grade_tables_are_the_csvs(written):
    html, rows = written
    for scorer, column in (("model", "grade"), ("rules", "rule_grade")):
        table = _table(html, f"grades_{scorer}").set_index("grade")
        assert list(table.index) == ["A", "B", "C", "D"]
        for grade in "ABCD":
            mine = rows[rows[column] == grade]
            assert table.loc[grade, "rows"] == f"{len(mine):,}"
            assert table.loc[grade, "wins"] == f"{int(mine['label'].sum()):,}"
            share = mine["label"].sum() / rows["label"].sum()
            assert table.loc[grade, "share of all wins"] == f"{share:.1%}"


def _touch_case(small_sim):
    """Five leads, first sales touches after 1 min, 30 min, 3 h, 2 days, and never (a page
    view is no sales touch); A and D won."""

    t0 = pd.Timestamp("2026-01-05 09:00", tz="UTC")
    leads = small_sim.leads.head(5).copy()
    ids = leads["lead_id"].tolist()
    leads["created_at"] = t0
    delays = [pd.Timedelta(minutes=1), pd.Timedelta(minutes=30), pd.Timedelta(hours=3),
              pd.Timedelta(days=2)]  # fmt: skip
    acts = pd.DataFrame(
        {
            "lead_id": ids[:4] + [ids[4]] + [ids[0]],
            "occurred_at": [t0 + d for d in delays] + [t0, t0 + pd.Timedelta(days=9)],
            "activity_type": ["call", "sales_email", "meeting", "call", "page_view", "call"],
        }
    )
    acts["activity_type"] = acts["activity_type"].astype(
        small_sim.activities["activity_type"].dtype
    )
    dataset = small_sim.with_tables(leads=leads, activities=acts)
    rows = pd.DataFrame(
        {"lead_id": ids, "label": [1, 0, 0, 1, 0], "as_of": [t0] * 5,
         "mql": [True, True, False, True, False]}
    )  # fmt: skip
    return dataset, rows


def test_speed_to_lead_buckets_by_first_sales_touch(small_sim):
    from leadscore.training.kpis import NEVER, speed_to_lead

    dataset, rows = _touch_case(small_sim)
    table = speed_to_lead(dataset, rows).set_index("first_sales_touch")
    assert list(table.index) == ["under 5 minutes", "5-60 minutes", "1-24 hours", "later", NEVER]
    assert table["leads"].tolist() == [1, 1, 1, 1, 1]
    assert table["wins"].tolist() == [1, 0, 0, 1, 0]
    assert table.loc["later", "win_rate"] == 1.0 and table.loc[NEVER, "win_rate"] == 0.0


def test_processing_rate_counts_touches_after_becoming_mql(small_sim):
    from leadscore.training.kpis import processing_rate

    dataset, rows = _touch_case(small_sim)
    table = processing_rate(dataset, rows).set_index("touched_by_sales")
    # MQLs: the 1-minute, 30-minute and 2-day leads, all MQL at t0
    assert set(table["mqls"]) == {3}
    assert table["touched"].tolist() == [2, 3, 3, 0]  # within 1, 2 (inclusive), 7 days; never


def test_without_sales_touches_the_kpis_say_why(small_sim):

    from leadscore.training.kpis import no_sales_touch, speed_to_lead

    acts = small_sim.activities[small_sim.activities["activity_type"] == "page_view"]
    dataset = small_sim.with_tables(activities=acts)
    assert speed_to_lead(dataset, pd.DataFrame({"lead_id": [], "label": []})).empty
    assert "no activity of a sales-touch type" in no_sales_touch(dataset)


def test_speed_to_lead_on_messy_touches(small_sim):
    """What real exports do: a touch logged before the lead's creation (an import
    artefact) counts as at once; two touches at the same instant count once; a touch of a
    lead outside the test rows is ignored."""
    from leadscore.training.kpis import NEVER, speed_to_lead

    dataset, rows = _touch_case(small_sim)
    ids = rows["lead_id"].tolist()
    t0 = dataset.leads["created_at"].iloc[0]
    dtype = dataset.activities["activity_type"].dtype
    outside = "NOT-IN-TEST"  # a lead of the export, not of the test rows
    other = dataset.leads.head(1).assign(lead_id=outside)
    messy = pd.DataFrame(
        {
            "lead_id": [ids[4], ids[1], ids[1], outside],
            "occurred_at": [t0 - pd.Timedelta(hours=1), t0 + pd.Timedelta(minutes=30),
                            t0 + pd.Timedelta(minutes=30), t0],
            "activity_type": pd.Series(["call", "call", "meeting", "call"]).astype(dtype),
        }
    )  # fmt: skip

    dataset = dataset.with_tables(
        leads=pd.concat([dataset.leads, other], ignore_index=True),
        activities=pd.concat([dataset.activities, messy]),
    )
    table = speed_to_lead(dataset, rows).set_index("first_sales_touch")
    assert table["leads"].tolist() == [2, 1, 1, 1, 0]
    assert table.loc[NEVER, "leads"] == 0 and table["leads"].sum() == len(rows)


def test_the_calibration_sentence_says_win_rates_only_when_that_holds():
    from leadscore.training.report_page import calibration_sentence

    rows = pd.DataFrame({"probability": [0.2] * 50 + [0.1] * 50, "label": [1] * 15 + [0] * 85})
    assert "can be read as win rates" in calibration_sentence(0.01, rows)
    # The base rate moved: 0.517 predicted on average against 0.446 won (a real export).
    moved = pd.DataFrame({"probability": [0.517] * 1000, "label": [1] * 446 + [0] * 554})
    text = calibration_sentence(0.077, moved)
    assert "can be read as win rates" not in text and "win rate moved" in text
    assert "51.7%" in text and "44.6%" in text
    # The mean is right (30 %), the ranking inverted: wins at 10 % where 50 % was predicted.
    near = pd.DataFrame(
        {
            "probability": [0.5] * 500 + [0.1] * 500,
            "label": [1] * 50 + [0] * 450 + [1] * 250 + [0] * 250,
        }
    )
    assert "as a ranking more than" in calibration_sentence(0.2, near)


def test_a_flat_export_is_described_as_one_row_per_lead(tmp_path):
    from leadscore.training.report_page import render_html
    from tests.conftest import flat_export

    ds = flat_export(tmp_path / "flat", seed=4)
    df, spec, _ = build_training_set(ds)
    comp = compare(
        ds, fit_models(df, spec, FAST).scorer, None, FAST, training_set=df, learned=False
    )
    page = render_html(comp, "x.csv")
    assert "a flat export: one row per lead" in page and "<code>Converted</code>" in page
    assert "a snapshot while" not in page


def test_a_scorer_that_ranks_nothing_is_named_not_shown_as_ordinary():
    from leadscore.training.report import degenerate_scorer

    capped = RulesConfig(base_points=148)
    text = degenerate_scorer("learned", np.full(500, 100.0), capped)
    assert (
        len(text) == 1 and "every test row the same score (100, the cap of 100 points)" in text[0]
    )
    mostly = np.r_[np.full(980, 100.0), np.arange(20.0)]
    assert "barely rank" in degenerate_scorer("rules", mostly, None)[0]
    assert degenerate_scorer("model", np.linspace(0, 1, 500), None) == []


def test_deals_opened_with_their_leads_make_every_row_a_hand_off(small_sim, small_set, trained):
    """The application is the opportunity: every lead has a deal from its creation, won or
    lost later. 'Rows without an open deal' would be none (0 MQLs, win rates of nan): the
    hand-off comparison counts every row instead and says why, and the funnel has no
    opportunity stage."""
    from dataclasses import replace

    from leadscore.training.report_tables import deals_at_creation, opportunity_stage_absent

    assert deals_at_creation(small_sim) is None  # the simulator's deals follow a hand-off
    created = small_sim.leads.set_index("lead_id")["created_at"]
    deals = small_sim.deals.copy()
    deals["created_at"] = created.reindex(deals["lead_id"]).to_numpy()
    without = small_sim.leads.loc[~small_sim.leads["lead_id"].isin(deals["lead_id"])]
    applications = pd.DataFrame(
        {
            "deal_id": "app-" + without["lead_id"].astype(str),
            "lead_id": without["lead_id"].to_numpy(),
            "created_at": without["created_at"].to_numpy(),
            "closed_at": pd.Series(pd.NaT, index=without.index, dtype=deals["closed_at"].dtype),
            "status": "open",
            "amount": np.nan,
        }
    )
    dataset = replace(small_sim, deals=pd.concat([deals, applications], ignore_index=True))
    reason = deals_at_creation(dataset)
    assert reason and "within a day of their creation" in reason
    assert opportunity_stage_absent(dataset) == reason
    comp = compare(dataset, trained.scorer, load_rules("conf/rules.yaml"), FAST, bootstrap=0)
    rows = comp.rows
    assert rows["open_deal"].all() and rows["hand_off"].all()
    n_mql = int(rows["mql"].sum())
    capacity = comp.capacity.set_index("handed to sales")
    assert n_mql > 0 and capacity["leads"].iloc[0] == n_mql
    assert np.isfinite(capacity["win_rate"]).all()
    assert comp.funnel["mql_to_opportunity"].isna().all()
    assert any("the hand-off comparison counts every row" in w for w in comp.warnings)
    from leadscore.training.report_page import render

    page = render(comp, "compare.csv")
    assert "without an open deal" not in page.split("id='capacity'")[1].split("<table")[0]
    assert "MQLs every row counts" in page
    # every row is the decision's: each table once, on the page and on the console
    assert 'data-section="capacity"' in page and 'data-section="capacity_all"' not in page
    assert 'data-section="quadrants"' in page and 'data-section="quadrants_all"' not in page
    assert "Tied scores at the cut share the places left" in page
    from leadscore.commands.compare import print_comparison
    from leadscore.console import out

    with out.capture() as printed:
        print_comparison(comp)
    assert printed.get().count("capacity-matched") == 1


def test_time_to_handoff_buckets_from_the_score_history(small_sim):
    """From each lead's creation to its first score above the hand-off line; won since: a
    won deal closed after the hand-off; a lead the export does not know is left out."""
    from leadscore.training.kpis import handoff_speed

    leads = small_sim.leads.head(4)
    created = pd.to_datetime(leads["created_at"], utc=True).reset_index(drop=True)
    ids = leads["lead_id"].tolist()
    handoffs = pd.DataFrame(
        {
            "lead_id": [*ids, "NOT-IN-EXPORT"],
            "handed_off_at": [
                created[0] + pd.Timedelta(minutes=2),
                created[1] + pd.Timedelta(minutes=20),
                created[2] + pd.Timedelta(hours=5),
                created[3] + pd.Timedelta(days=3),
                created[0],
            ],
        }
    )
    won = pd.DataFrame(
        {"deal_id": ["W1"], "lead_id": [ids[0]], "created_at": [created[0]],
         "closed_at": [created[0] + pd.Timedelta(days=9)], "status": ["won"], "amount": [1.0]}
    )  # fmt: skip
    dataset = small_sim.with_tables(deals=won.astype({"status": small_sim.deals["status"].dtype}))
    table = handoff_speed(dataset, handoffs).set_index("handed_off")
    assert table["leads"].tolist() == [1, 1, 1, 1]
    assert table.loc["under 5 minutes", "won_since"] == 1 and table["won_since"].sum() == 1
    assert table.loc["1-24 hours", "median_minutes"] == 300
    assert handoff_speed(dataset, handoffs.head(0)).empty
